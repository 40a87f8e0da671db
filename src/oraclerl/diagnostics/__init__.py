"""Diagnostics: coverage (sequence and token level), regret and KL, likelihood quantiles, pass@k, large
deviations."""

from .coverage import clipping_envelope, coverage_coefficient, log_coverage_coefficient
from .divergences import entropy, expected, kl_divergence, kl_regularised_objective
from .large_deviations import (
    legendre_transform,
    log_mgf,
    rate_function,
    renyi_cross_entropy,
    scgf,
    scgf_renyi,
)
from .likelihood_quantile import (
    alpha_tail,
    empirical_likelihood_quantile,
    likelihood_cdf,
    likelihood_quantile,
    log_likelihood_quantile,
    log_token_level_quantile,
)
from .pass_at_k import pass_at_k_exact, pass_at_k_from_samples, pass_at_k_unbiased
from .regret import J_beta, policy_log_table, regret
from .token_coverage import conditional_coverage, sequence_coverage

__all__ = [
    "coverage_coefficient",
    "log_coverage_coefficient",
    "clipping_envelope",
    "conditional_coverage",
    "sequence_coverage",
    "kl_divergence",
    "entropy",
    "expected",
    "kl_regularised_objective",
    "J_beta",
    "regret",
    "policy_log_table",
    "likelihood_quantile",
    "log_likelihood_quantile",
    "log_token_level_quantile",
    "likelihood_cdf",
    "alpha_tail",
    "empirical_likelihood_quantile",
    "pass_at_k_exact",
    "pass_at_k_unbiased",
    "pass_at_k_from_samples",
    "log_mgf",
    "scgf",
    "rate_function",
    "legendre_transform",
    "renyi_cross_entropy",
    "scgf_renyi",
]
