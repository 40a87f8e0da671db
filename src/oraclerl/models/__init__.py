"""Base models behind the oracles: exact models (linear softmax, memoryless, autoregressive linear softmax,
linear autoregressive) and, with the ``[hf]`` extra, real causal LMs (:mod:`oraclerl.models.hf`)."""

from .autoregressive_softmax import AutoregressiveSoftmaxModel, soft_bellman
from .linear_ar import ContextBigramFeatures, FeatureMap, LinearARModel, PromptBoundPolicy
from .linear_softmax import LinearSoftmaxModel, sample_from_log_probs
from .memoryless import (
    AdditiveReward,
    MemorylessModel,
    memoryless_alignment,
    reward_distribution,
    sample_bon_sequences,
    sample_tilted_sequences,
)
from .rewards import LinearReward, TableReward

__all__ = [
    "LinearSoftmaxModel",
    "sample_from_log_probs",
    "TableReward",
    "LinearReward",
    "MemorylessModel",
    "AdditiveReward",
    "reward_distribution",
    "memoryless_alignment",
    "sample_bon_sequences",
    "sample_tilted_sequences",
    "AutoregressiveSoftmaxModel",
    "soft_bellman",
    "LinearARModel",
    "FeatureMap",
    "ContextBigramFeatures",
    "PromptBoundPolicy",
]
