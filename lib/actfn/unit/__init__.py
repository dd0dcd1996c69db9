"""One unit's activation learned on a Gaussian mixture (seed 000, sections 3.1 and 4.1).

``trainer``  the analytic and sampled trainers, grids of runs, the β map
``claims``   the outline's unit-level claims, each with its verdict
"""
