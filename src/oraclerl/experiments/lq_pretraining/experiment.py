"""Likelihood quantiles of the base model along pre-training (Mousavi-Hosseini & Erdogdu 2026, §4.1; the
authors' ``cdf_quantile`` experiment, docs/papers/mousavi2026_pg_barrier.md §5.6).

A linear autoregressive model (w₀ = 0) is pre-trained with Adagrad (lr 1.0, batch 256) on teacher labels over
Rademacher contexts (d = 32, k = 10, N = 100). At evenly spaced checkpoints (and step 0) we compute, from the
exact likelihoods q(y*(x)|x) of a fixed evaluation sample of fresh contexts, the CDF P[q ≤ α], the likelihood
quantile Q_q(ε), the token-level LQ Q^TL_q(ε) and the α-tail α·P[q > α]. The evaluation sample is drawn once
(the authors redraw it per checkpoint; a fixed sample removes sampling noise between checkpoints). The quick
scale trains for fewer steps on a smaller evaluation sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...common.config import param
from ...common.device import resolve_device
from ...common.threads import torch_threads
from ...diagnostics.likelihood_quantile import (
    alpha_tail,
    likelihood_cdf,
    log_likelihood_quantile,
    log_token_level_quantile,
)
from ...diagnostics.sequence_error import expected_sequence_error
from ...models.linear_ar import ContextBigramFeatures, LinearARModel
from ...oracles.ledger import Ledger
from ...posttrain.pretrain import Pretrain, PretrainConfig
from ...problems.teacher import TeacherContexts, teacher_task

LN10 = math.log(10.0)


@dataclass
class LQPretrainingConfig:
    d: int = param(32, "context dimension (Rademacher contexts)", low=1, high=2 ** 12)
    k: int = param(10, "vocabulary size", low=2, high=2 ** 10)
    N: int = param(100, "response length", low=1, high=10 ** 5)
    steps: int = param(1500, "pre-training steps", low=1, high=10 ** 6)
    checkpoints: int = param(10, "evaluation checkpoints after step 0, evenly spaced", low=1, high=10 ** 3)
    batch_size: int = param(256, "pre-training batch", low=1, high=2 ** 16)
    lr: float = param(1.0, "Adagrad learning rate", low=0.0, low_open=True)
    eval_size: int = param(8192, "fresh contexts for the CDF/LQ curves", low=1, high=2 ** 22)
    device: str = param("auto", "auto (CUDA when present) | cpu | cuda", choices=("auto", "cpu", "cuda"))
    threads: int = param(1, "torch CPU threads during the run (0 = unchanged)", low=0, high=256)


EPS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
ALPHA_LIN = torch.linspace(0.01, 1.0, 100, dtype=torch.float64)


def run(cfg: LQPretrainingConfig, ctx) -> dict:
    dev = resolve_device(cfg.device)
    with torch_threads(cfg.threads if dev.type == "cpu" else 0):
        task = teacher_task(
            cfg.d, cfg.k, cfg.N, "rademacher", generator=ctx.generator("teacher", dev), device=dev
        )
        x = task.sample_contexts(cfg.eval_size, ctx.generator("eval", dev))
        y = task.target(x)
        model = LinearARModel(ContextBigramFeatures(cfg.d, cfg.k), cfg.N, device=dev)
        every = max(1, cfg.steps // cfg.checkpoints)
        floor = -cfg.N * math.log10(cfg.k)
        log_alpha = torch.linspace(floor, 0.0, 201, dtype=torch.float64) * LN10
        rows = []

        def track(t, m):
            if t % every and t != cfg.steps:
                return
            tok = m.token_log_probs(x, y).double().cpu()
            ll = tok.sum(1)
            rows.append(
                {
                    "step": t,
                    "test_error": expected_sequence_error(ll),
                    "lq_log10": (log_likelihood_quantile(ll, torch.tensor(EPS)) / LN10).tolist(),
                    "tl_lq_log10": (log_token_level_quantile(tok, torch.tensor(EPS)) / LN10).tolist(),
                    "cdf": likelihood_cdf(ll, log_alpha).tolist(),
                    "alpha_tail": alpha_tail(ll, log_alpha).tolist(),
                    "alpha_tail_linear": alpha_tail(ll, torch.log(ALPHA_LIN)).tolist(),
                    "sorted_log10": (
                        torch.sort(ll).values[torch.linspace(0, ll.numel() - 1, 256).long()] / LN10
                    ).tolist(),
                }
            )
            ctx.log(
                t,
                **{
                    "lq/median_log10": rows[-1]["lq_log10"][EPS.index(0.5)],
                    "test_error": rows[-1]["test_error"],
                },
            )
            ctx.progress(t / cfg.steps, f"step {t}")

        ledger = Ledger()
        Pretrain(PretrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr)).run(
            model, TeacherContexts(task, ledger), ctx.generator("pretrain", dev), track=track)
    return {"eps": EPS, "log10_alpha": (log_alpha / LN10).tolist(), "floor_log10": floor, "checkpoints": rows,
            "ledger": ledger.snapshot()}


def memory(cfg: LQPretrainingConfig) -> int:
    """Estimated peak bytes of one run: 8 bytes × (eval_size + 4·batch_size) contexts × (3·N + (k+1)·k + d)
    (per context: three float64 [N] rows, the [k+1, k] transition table, the context) + 320 MiB for the
    process's start. Measured (ru_maxrss of ``run_one`` above the start, steps=1, batch_size=16, d=32):
    eval_size 20000/160000 at N=100, k=10: 353/729 MiB; 160000 at N=200: 1096 MiB; at k=20: 936 MiB; the
    estimate is 1.10-1.32× each. Checked before any run by ``Experiment.make_config``."""
    per_context = 3 * cfg.N + (cfg.k + 1) * cfg.k + cfg.d
    return 8 * (cfg.eval_size + 4 * cfg.batch_size) * per_context + 320 * 2**20


SCALES = {
    "toy": {"d": 8, "k": 4, "N": 12, "steps": 60, "checkpoints": 3, "batch_size": 32, "eval_size": 512},
    "quick": {},
    "paper": {"d": 32, "k": 10, "N": 100, "steps": 5000, "checkpoints": 10, "batch_size": 256, "lr": 1.0,
              "eval_size": 16384},
}
