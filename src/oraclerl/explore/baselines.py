"""Reference points for the exploration algorithms: the base policy π_ref and best-of-n on the reward.

Both run through the same oracles as SpannerSampling, OnlineDPO and XPO, and both are *inference-time*
policies: the base policy needs no reward query; best-of-n draws n responses from π_ref and queries n rewards
**per prompt at inference** (so its reward cost grows with the number of prompts served, unlike a trained
policy). Exact laws on finite instances come from :func:`oraclerl.inference.best_of_n.best_of_n_law`
(uniform tie-breaking), so ``oraclerl.diagnostics.regret`` applies to both.
"""

from __future__ import annotations

import torch

from ..common.validation import check_int
from ..inference.best_of_n import best_of_n_law
from ..inference.sample_based import BestOfN, BestOfNConfig
from ..oracles.samplers import Samples


class ReferencePolicy:
    """π_ref itself (the learner that does nothing): sampled through the weak oracle."""

    def __init__(self, weak=None):
        self.weak = weak

    def log_prob_table(self, instance) -> torch.Tensor:
        return instance.base.log_ref

    def sample(self, prompts, n: int = 1, generator: torch.Generator | None = None) -> Samples:
        return self.weak.sample(prompts, n, generator)


class BestOfNPolicy:
    """Best-of-n on the (noisy) reward oracle: n weak samples and n reward queries per response served.

    The exact law (:meth:`log_prob_table`) is that of best-of-n on the mean reward r⋆ (noise-free oracle).
    """

    def __init__(self, n: int, weak=None, reward=None):
        self.n = check_int("n", n, low=1)
        self.weak, self.reward = weak, reward

    def log_prob_table(self, instance) -> torch.Tensor:
        return best_of_n_law(log_p=instance.base.log_ref, r=instance.reward.table, n=self.n).log_probs

    def sample(self, prompts, n: int = 1, generator: torch.Generator | None = None):
        """``n`` best-of-``self.n`` selections per prompt (responses [B, n, ...]) through the oracles."""
        return BestOfN(BestOfNConfig(n=self.n, num_samples=n)).run(self.weak, self.reward, prompts, generator)
