"""Inference-time alignment (Yang et al. 2024; Beirami et al. 2024; Foster et al. 2025, Algorithms 1–2).

Exact laws on plain tensors (``tilt``, ``best_of_n_law`` and friends) and sample-based algorithms that reach
the base model only through a ``WeakSampler`` and a ``RewardOracle`` (``oraclerl.inference.sample_based``:
``BestOfN``, ``SoftBestOfN``, ``RejectionSampling``, ``BestOfPoisson``, each ``X(XConfig).run(weak, reward,
prompts, generator) -> XResult``) — those run unchanged on exact models and on real causal LMs.
"""

from .best_of_n import (
    SelectionLaw,
    best_of_n_expected_estimate,
    best_of_n_expected_reward,
    best_of_n_kl,
    best_of_n_kl_estimate,
    best_of_n_kl_formula,
    best_of_n_law,
    best_of_n_win_rate,
    best_of_poisson_law,
    calibrated_reward,
    rewind_and_repeat_law,
    sample_best_of_n,
)
from .sample_based import (
    BestOfN,
    BestOfNConfig,
    BestOfNResult,
    BestOfPoisson,
    BestOfPoissonConfig,
    BestOfPoissonResult,
    RejectionSampling,
    RejectionSamplingConfig,
    RejectionSamplingResult,
    SelectionResult,
    SoftBestOfN,
    SoftBestOfNConfig,
    SoftBestOfNResult,
)
from .softmax_sampler import (
    SoftmaxSample,
    SoftmaxSampler,
    SoftmaxSamplerConfig,
    SoftmaxSamplerDensity,
    autoregressive_draw,
    softmax_sampler,
    weak_draw,
)
from .tilt import Frontier, TiltResult, kl_reward_frontier, tilt

__all__ = [
    "tilt", "TiltResult", "kl_reward_frontier", "Frontier",
    "best_of_n_law", "SelectionLaw", "best_of_n_kl", "best_of_n_win_rate", "best_of_n_expected_reward",
    "best_of_n_kl_formula", "best_of_n_kl_estimate", "best_of_n_expected_estimate", "sample_best_of_n",
    "best_of_poisson_law", "rewind_and_repeat_law", "calibrated_reward",
    "SelectionResult", "BestOfN", "BestOfNConfig", "BestOfNResult", "SoftBestOfN", "SoftBestOfNConfig",
    "SoftBestOfNResult", "RejectionSampling", "RejectionSamplingConfig", "RejectionSamplingResult",
    "BestOfPoisson", "BestOfPoissonConfig", "BestOfPoissonResult",
    "SoftmaxSample", "SoftmaxSamplerConfig", "SoftmaxSampler", "SoftmaxSamplerDensity", "softmax_sampler",
    "weak_draw", "autoregressive_draw",
]
