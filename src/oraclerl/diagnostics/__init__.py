"""Diagnostics: coverage, regret, KL, likelihood quantiles, pass@k, large deviations."""

from .coverage import coverage_coefficient, log_coverage_coefficient
from .divergences import entropy, expected, kl_divergence, kl_regularised_objective
from .regret import J_beta, policy_log_table, regret

__all__ = [
    "coverage_coefficient", "log_coverage_coefficient", "kl_divergence", "entropy", "expected",
    "kl_regularised_objective", "J_beta", "regret", "policy_log_table",
]
