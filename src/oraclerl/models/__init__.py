"""Base models behind the oracles: exact models (linear softmax, memoryless, autoregressive) and, with the
``[hf]`` extra, real causal LMs (:mod:`oraclerl.models.hf`)."""

from .linear_softmax import LinearSoftmaxModel, sample_from_log_probs
from .rewards import LinearReward, TableReward

__all__ = ["LinearSoftmaxModel", "sample_from_log_probs", "TableReward", "LinearReward"]
