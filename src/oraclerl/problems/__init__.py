"""Problem instances with known ground truth."""

from .instance import LinearSoftmaxInstance
from .linear_softmax import coverage_lower_bound, linear_softmax

__all__ = ["LinearSoftmaxInstance", "linear_softmax", "coverage_lower_bound"]
