"""Problem instances with known ground truth."""

from .dnf import max_k_dnf
from .instance import LinearSoftmaxInstance
from .linear_softmax import coverage_lower_bound, linear_softmax, needle_instance
from .teacher import TeacherContexts, TeacherReward, TeacherTask, teacher_task
from .token_mdp import TokenMDPInstance, coverage_gap_family, random_token_mdp

__all__ = [
    "LinearSoftmaxInstance", "linear_softmax", "coverage_lower_bound", "needle_instance", "max_k_dnf",
    "TokenMDPInstance", "coverage_gap_family", "random_token_mdp",
    "teacher_task", "TeacherTask", "TeacherContexts", "TeacherReward",
]
