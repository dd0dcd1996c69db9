"""The learned piecewise-linear activation (seed 000, section 3.2).

``reference``   the specification in plain PyTorch (gather + autograd)
``torch_path``  the same in eager tensor ops with the backward pass written out (no compiled kernel)
``op``          the operator ``torch.ops.actfn.pwl`` and :func:`piecewise_linear`, which picks it
``module``      :class:`PiecewiseLinearActivation`, the layer
"""
from .reference import piecewise_linear_reference
from .torch_path import PiecewiseLinearFunction, segment_histogram
from .op import piecewise_linear
from .module import INITS, PiecewiseLinearActivation, initial_knot_values
