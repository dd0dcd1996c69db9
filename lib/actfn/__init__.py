"""actfn: the code behind the book *Learning Activation Functions via Correlation Objectives*."""
from .theory.correlation import (MixtureCorrelation, batch_classwise_correlations, correlation_objective,
                          correlations_from_class_moments, max_signed_objective, signed_objective)
from .theory.fitting import fit_relu, fit_shapes, fit_sigmoid, fit_swish, swish
from .theory.gaussian import (class_means, gaussian_segment_moments, pwl_class_moments, pwl_segment_coefficients,
                       segment_edges)
from . import kernels
from .pwl import PiecewiseLinearActivation, piecewise_linear, piecewise_linear_reference
from .unit.trainer import UnitConfig, UnitRun, train_unit

__all__ = [
    "MixtureCorrelation", "batch_classwise_correlations", "correlation_objective",
    "correlations_from_class_moments", "max_signed_objective", "signed_objective", "fit_relu", "fit_shapes", "fit_sigmoid",
    "fit_swish", "swish", "class_means", "gaussian_segment_moments", "pwl_class_moments",
    "pwl_segment_coefficients", "segment_edges", "PiecewiseLinearActivation", "piecewise_linear",
    "piecewise_linear_reference", "UnitConfig", "UnitRun", "train_unit",
]
