"""The theory of seed 000: the correlation objective on a Gaussian mixture and what optimises it.

``gaussian``     closed-form Gaussian integrals of a piecewise-linear f, per class
``correlation``  the class-wise correlation objective, closed-form and sampled
``derivations``  the same integrals derived symbolically (sympy), for the theory chapter
``fitting``      Swish, ReLU and sigmoid fits to a learned f, with standard errors
``optimum``      the optimal f as a mixture of class posteriors, and its profile
"""
