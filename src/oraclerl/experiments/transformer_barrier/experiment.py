"""The base-model barrier on a transformer (Mousavi-Hosseini & Erdogdu 2026, Cor. 3.4-3.6 vs Thm 4.1).

A tiny GPT-2 is pre-trained from scratch (teacher forcing, cross-entropy) on the teacher-sequence task:
context c ↦ the greedy bigram-plus-context walk y⋆(c) of length N over k letters. A ``rare_fraction`` of the
contexts carries only ``rare_mass`` of the pre-training distribution, so the base model q₀ puts little mass on
their correct responses. The base model is then post-trained with on-policy policy gradient on prompts drawn
uniformly over all contexts, once with outcome rewards (±1 for the whole sequence, batch-mean baseline, as the
paper's ORM experiment) and once with process rewards (±1 per prefix, no baseline, as its PRM experiment). A
context is *off-support* when its expected number of correct samples during post-training, Q_x·q₀(y⋆|x), is
below 1 (Q_x = post-training samples of x). The theory predicts that outcome rewards cannot lift off-support
contexts (the query count scales with 1/LQ, up to k^N) while process rewards can (per-token exploration, N·k).
We track the exact likelihood q(y⋆|x) of every context (teacher-forced) and the test error 1 − E_x q(y⋆|x) (x
uniform).

What we saw at the quick scale, and why the barrier is softer on a transformer than in Figure 1:
docs/experiments/transformer-barrier.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...common.config import param
from ...common.threads import torch_threads
from ...diagnostics.sequence_error import expected_sequence_error
from ...models.hf.tiny import tiny_causal_lm
from ...oracles import Ledger, PromptSource, RewardOracle
from ...posttrain.lm_pg import LMPGConfig, LMPolicyGradient
from ...posttrain.lm_pretrain import pretrain_lm
from ...problems.lm_tasks import teacher_sequence_task


@dataclass
class TransformerBarrierConfig:
    num_contexts: int = param(32, "number of contexts C (one-hot contexts, prompt 'cc:')", low=2, high=100)
    length: int = param(8, "response length N", low=1, high=256)
    vocab: int = param(6, "response alphabet size k", low=2, high=26)
    rare_fraction: float = param(
        0.25, "fraction of contexts that are rare in pre-training", low=0.0, high=1.0, high_open=True
    )
    rare_mass: float = param(
        0.001, "total pre-training mass of the rare contexts", low=0.0, high=1.0, high_open=True
    )
    n_layer: int = param(2, "transformer layers", low=1, high=24)
    n_embd: int = param(32, "hidden size (= feature dimension d)", low=2, high=2 ** 10)
    n_head: int = param(2, "attention heads", low=1, high=32)
    pretrain_steps: int = param(
        300, "supervised pre-training steps (Adam, teacher forcing)", low=0, high=10**6
    )
    pretrain_batch: int = param(64, "labelled sequences per pre-training step", low=1, high=4096)
    pretrain_lr: float = param(3e-3, "pre-training learning rate", low=0.0, low_open=True)
    pg_steps: int = param(100, "policy-gradient updates per method", low=1, high=10 ** 6)
    batch_prompts: int = param(16, "prompts per PG update", low=1, high=2 ** 12)
    group_size: int = param(4, "responses per prompt", low=1, high=256)
    pg_lr: float = param(
        1e-3, "PG learning rate (Adam; 3e-3 destabilises the pre-trained model)", low=0.0, low_open=True
    )
    methods: list[str] = param(
        ["outcome", "process"], "reward types compared", choices=("outcome", "process")
    )
    outcome_advantage: str = param("batch_mean", "advantage for outcome rewards",
                                   choices=("none", "batch_mean", "leave_one_out", "group_normalised"))
    process_advantage: str = param("none", "advantage for process rewards (±1 rewards)",
                                   choices=("none", "batch_mean", "leave_one_out", "group_normalised"))
    eval_every: int = param(20, "exact evaluation every this many PG updates", low=1, high=10 ** 6)

    def check(self):
        from ...common.validation import require_hf_extra
        from ...errors import ConfigError

        require_hf_extra("transformer-barrier")
        for name in ("outcome_advantage", "process_advantage"):
            if getattr(self, name) in ("leave_one_out", "group_normalised") and self.group_size < 2:
                raise ConfigError(
                    "group_size", f"must be >= 2 with {name}={getattr(self, name)!r}, got {self.group_size}"
                )
        if self.n_embd % self.n_head:
            raise ConfigError("n_embd", f"must be a multiple of n_head={self.n_head}, got {self.n_embd}")


def _log_likelihoods(policy, targets: torch.Tensor) -> torch.Tensor:
    """Exact log q(y⋆|x) for every context (teacher-forced, raw model = sampling law at temperature 1)."""
    x = torch.arange(targets.shape[0])
    return policy.log_prob(x, targets[:, None], processed=False)[:, 0]


def _token_min(policy, targets: torch.Tensor) -> torch.Tensor:
    """min_i q(y⋆_i | x, y⋆_{<i}) per context (the token-level LQ statistic)."""
    x = torch.arange(targets.shape[0])
    return policy.token_log_probs(x, targets[:, None], processed=False)[:, 0].exp().amin(-1)


def run(cfg: TransformerBarrierConfig, ctx) -> dict:
    # A tiny model gains nothing from intra-op threads, and on a shared CPU they cost up to 30x (spin-waits).
    with torch_threads(1):
        return _run(cfg, ctx)


def _run(cfg: TransformerBarrierConfig, ctx) -> dict:
    task = teacher_sequence_task(cfg.num_contexts, cfg.length, cfg.vocab, cfg.rare_fraction, cfg.rare_mass,
                                 seed=ctx.seeds.int("task") % 2**31)
    init = tiny_causal_lm(
        task.alphabet,
        task.prompts,
        seed=ctx.seeds.int("init") % 2**31,
        n_layer=cfg.n_layer,
        n_embd=cfg.n_embd,
        n_head=cfg.n_head,
        max_new_tokens=cfg.length,
        device="cpu",
        dtype=torch.float32,
    )
    targets = task.target_tokens(init)
    base = pretrain_lm(init, task.weights, targets, cfg.pretrain_steps, cfg.pretrain_batch, cfg.pretrain_lr,
                       ctx.generator("pretrain"))
    ctx.progress(0.2, "pre-trained")
    q0 = _log_likelihoods(base, targets).exp()
    tok0 = _token_min(base, targets)
    C = cfg.num_contexts
    q_per_context = cfg.pg_steps * cfg.batch_prompts * cfg.group_size / C  # Q_x under uniform post-training
    off = q0 * q_per_context < 1.0
    rare = task.meta["rare"]
    out = {
        "num_contexts": C,
        "num_actions": init.num_actions,
        "uniform_floor": float((1.0 / init.num_actions) ** cfg.length),
        "queries_per_context": q_per_context,
        "base_likelihood": q0.tolist(),
        "base_token_min": tok0.tolist(),
        "rare": rare.tolist(),
        "off_support": off.tolist(),
        "methods": {},
    }

    def evaluate(policy):
        log_q = _log_likelihoods(policy, targets)
        q = log_q.exp()
        return {
            "test_error": expected_sequence_error(log_q),
            "off_support_likelihood": float(q[off].mean()) if off.any() else math.nan,
            "off_support_log10": float(q[off].clamp_min(1e-300).log10().mean()) if off.any() else math.nan,
            "on_support_likelihood": float(q[~off].mean()) if (~off).any() else math.nan,
            "rare_likelihood": float(q[rare].mean()) if rare.any() else math.nan,
            "likelihood": q.tolist(),
        }

    for i, method in enumerate(cfg.methods):
        ledger = Ledger()
        reward = RewardOracle(task.token_reward(base, values=(-1.0, 1.0)), ledger)
        prompts = PromptSource(C, ledger)  # post-training prompts: uniform over all contexts
        pg = LMPolicyGradient(LMPGConfig(
            steps=cfg.pg_steps, batch_size=cfg.batch_prompts, group_size=cfg.group_size, reward=method,
            advantage=cfg.outcome_advantage if method == "outcome" else cfg.process_advantage,
            lr=cfg.pg_lr, max_grad_norm=0.0, eval_every=cfg.eval_every))  # the paper: no clipping
        res = pg.run(base, reward, prompts, ctx.generator(f"pg/{method}"), evaluate,
                     log=lambda t, m=method, **kw: ctx.log(t, **{f"{m}/{k}": v for k, v in kw.items()}))
        out["methods"][method] = {"history": res.history, "ledger": res.ledger}
        ctx.progress(0.2 + 0.8 * (i + 1) / len(cfg.methods), method)
    return out


def memory(cfg: TransformerBarrierConfig) -> int:
    """Estimated peak bytes of one run: 320 MiB for the process's start plus 1.25 × 4 bytes × (12 floats per
    parameter, P = 12·n_layer·n_embd² + (T+64)·n_embd: the pre-trained model, the policies, their gradients
    and Adam moments; 40 floats per token, layer and hidden unit of a batch of B = max(pretrain_batch,
    batch_prompts·group_size) sequences of T = length + 8 tokens; 2 per attention score, B·n_head·T²·n_layer).
    Measured (ru_maxrss of ``run_one`` above the start, pretrain_steps=2, pg_steps=1, eval_every=1): the
    quick scale 318 MiB; (n_layer, n_embd, n_head, pretrain_batch, length) = (2, 256, 4, 256, 64) 1677 MiB,
    (4, 512, 8, 64, 16) 1157 MiB, (2, 32, 8, 64, 256) 615 MiB, (8, 1024, 8, 8, 8) 4602 MiB; the estimate is
    1.05-1.97× each. Checked before any run by ``Experiment.make_config``."""
    T = cfg.length + 8
    B = max(cfg.pretrain_batch, cfg.batch_prompts * cfg.group_size)
    params = 12 * cfg.n_layer * cfg.n_embd ** 2 + (T + 64) * cfg.n_embd
    floats = 12 * params + 40 * B * T * cfg.n_embd * cfg.n_layer + 2 * B * cfg.n_head * T * T * cfg.n_layer
    return int(1.25 * 4 * floats) + 320 * 2 ** 20


SCALES = {
    "toy": {
        "num_contexts": 8,
        "length": 3,
        "vocab": 3,
        "pretrain_steps": 20,
        "pretrain_batch": 16,
        "pg_steps": 4,
        "batch_prompts": 4,
        "group_size": 2,
        "eval_every": 2,
        "n_embd": 16,
    },
    "quick": {},
    "paper": {
        "num_contexts": 64,
        "length": 16,
        "vocab": 16,
        "pretrain_steps": 2000,
        "pretrain_batch": 256,
        "pg_steps": 2000,
        "batch_prompts": 64,
        "n_layer": 4,
        "n_embd": 128,
        "n_head": 4,
        "eval_every": 50,
    },
}
