"""Exploration through the sampling oracles (Foster, Mhammedi & Rohatgi 2025): SpannerSampling (Alg. 3), MTSS
(Algs. 4–6), and the proper baselines OnlineDPO and XPO, plus best-of-n and the base policy."""

from .baselines import BestOfNPolicy, ReferencePolicy
from .evaluation import first_reach, proper_curve, spanner_curve
from .linear_regression import InverseGram, constrained_least_squares
from .mtss import MTSS, MTSSConfig, MTSSResult
from .online_dpo import OnlineDPO, OnlineDPOConfig
from .proper import LinearSoftmaxPolicy, ProperResult
from .spanner_sampling import (
    SpannerSampling,
    SpannerSamplingConfig,
    SpannerSamplingPolicy,
    SpannerSamplingResult,
    theory_schedule,
)
from .xpo import XPO, XPOConfig, exact_partition

__all__ = [
    "SpannerSampling",
    "SpannerSamplingConfig",
    "SpannerSamplingResult",
    "SpannerSamplingPolicy",
    "theory_schedule",
    "MTSS",
    "MTSSConfig",
    "MTSSResult",
    "OnlineDPO",
    "OnlineDPOConfig",
    "XPO",
    "XPOConfig",
    "exact_partition",
    "LinearSoftmaxPolicy",
    "ProperResult",
    "ReferencePolicy",
    "BestOfNPolicy",
    "InverseGram",
    "constrained_least_squares",
    "proper_curve",
    "spanner_curve",
    "first_reach",
]
