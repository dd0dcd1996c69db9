"""Learned activations in deep networks (seed 000, section 3.2 and 4.2).

``models``       VGG from a configuration table, pre-activation ResNet from blocks
``trainer``      training by backprop or by the local correlation objective; summaries and checkpoints
``gaussianity``  are the per-class pre-activations Gaussian, per spatial position, with the test's power
``claims``       the outline's deep-network claims, each with its verdict
``report``       the chapter's tables, and the recorded run's replay
"""
