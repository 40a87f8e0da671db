"""Oracles: the only door from an algorithm to a base model or a reward (Foster et al. 2025, §2)."""

from .ledger import COUNTERS, Budget, Ledger, ledger_totals
from .rewards import PreferenceOracle, RewardNoise, RewardOracle
from .samplers import AutoregressiveSampler, PromptSource, Samples, StrongSampler, WeakSampler

__all__ = [
    "COUNTERS", "Budget", "Ledger", "ledger_totals", "RewardOracle", "RewardNoise", "PreferenceOracle",
    "WeakSampler", "StrongSampler", "AutoregressiveSampler", "PromptSource", "Samples",
]
