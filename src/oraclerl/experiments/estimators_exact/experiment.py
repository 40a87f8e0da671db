"""The exact estimator lab: KL value estimators, KL gradient placements and group advantage estimators,
their bias and variance computed exactly on enumerable models (:mod:`oraclerl.diagnostics.estimators`).

(a) k1, k2, k3 (and their importance-corrected variants) on finite laws q_t ∝ p·exp(t·z) whose divergence
    grows with t: exact bias and standard deviation against the true KL, and a Monte Carlo check through a
    weak sampler.
(b) The twelve KL placements (reward / loss × sequence / token × k1, k2, k3) on a linear autoregressive policy
and reference at growing distance: cosine and relative bias of each expected gradient against ∇KL(q‖p) and
∇KL(p‖q), and the per-sample variance; and the Monte Carlo gradient of the LM trainer's own step
(``LMPolicyGradient.step``, per-token penalty in the loss) run unchanged on the exact model.
(c) Group advantage estimators (REINFORCE, batch mean, RLOO, GRPO, Dr. GRPO, pass@k) on a linear-softmax
instance whose prompts have base success probabilities from almost 0 to almost 1, by enumerating every group
of n: cosine, bias and variance against ∇J, and the per-prompt weight c(p, n) (E[ĝ|x] = c·∇p_x); process
rewards in the ±1 and {0,1} per-prefix forms. Only the Monte Carlo parts depend on the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...common.config import param
from ...diagnostics.estimators.groups import (
    group_gradient_moments,
    max_of_k_gradient,
    policy_gradient_exact,
    two_point_gain,
)
from ...diagnostics.estimators.instances import linear_ar_pair, success_instance, tilted_laws
from ...diagnostics.estimators.kl_gradients import VARIANTS, cosine, kl_gradient_moments
from ...diagnostics.estimators.kl_values import VALUE_ESTIMATORS, kl_estimator_moments, kl_value_estimates
from ...diagnostics.estimators.lm_path import (
    ExactLMPolicy,
    SequenceTableReward,
    exact_step_gradient,
    exact_table,
    step_gradients,
)
from ...diagnostics.estimators.score_tables import linear_ar_table, linear_softmax_table
from ...models.linear_softmax import LinearSoftmaxModel
from ...oracles import Ledger, PromptSource, RewardOracle, WeakSampler
from ...posttrain.advantages import ALL_ESTIMATORS
from ...posttrain.lm_pg import LMPGConfig, LMPolicyGradient

F64 = torch.float64


@dataclass
class EstimatorsExactConfig:
    """Sizes of the three parts of the lab (quick scale: under a minute on one core)."""

    kl_responses: int = param(50, "responses Y of the KL value instances", low=2, high=10 ** 5)
    kl_prompts: int = param(8, "prompts of the KL value instances", low=1, high=2 ** 12)
    kl_scales: list[float] = param(
        [0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0],
        "t of q_t ∝ p·exp(t·z): the divergence grows with t",
        low=0.0,
        low_open=True,
    )
    kl_mc_samples: int = param(
        4000, "Monte Carlo samples per prompt of the oracle check of (a)", low=10, high=10**6
    )
    ar_actions: int = param(3, "tokens k of the linear AR instances", low=2, high=64)
    ar_horizon: int = param(
        3, "horizon H of the linear AR instances (k^H sequences are enumerated)", low=2, high=16
    )
    ar_context_dim: int = param(2, "context dimension d of the linear AR instances", low=1, high=2 ** 10)
    ar_prompts: int = param(4, "prompts of the linear AR instances", low=1, high=2 ** 10)
    ar_scales: list[float] = param([0.25, 0.5, 1.0, 1.5], "scale of the policy and reference weights (b)",
                                   low=0.0, low_open=True)
    lm_batch: int = param(
        512, "prompts per LMPolicyGradient.step in the Monte Carlo check of (b)", low=1, high=2**16
    )
    lm_steps: int = param(24, "independent steps averaged in that check", low=2, high=10 ** 4)
    adv_responses: int = param(
        6, "responses Y of the advantage instance (|Y|^n groups are enumerated)", low=2, high=10**3
    )
    adv_features: int = param(4, "feature dimension of the advantage instance", low=1, high=2 ** 10)
    success_probs: list[float] = param([0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99],
                                       "base success probability of each prompt of (c)", low=0.0, high=1.0,
                                       low_open=True, high_open=True)
    group_sizes: list[int] = param([2, 3, 4, 6], "group sizes n enumerated in (c)", low=2, high=64)
    pass_k: int = param(2, "k of the pass@k advantage (min(k, n) is used)", low=1, high=2 ** 10)
    gain_sizes: list[int] = param(
        [2, 4, 8, 16], "n of the two-point weight curves c(p, n)", low=2, high=2**12
    )
    prm_group: int = param(
        3, "group size of the process-reward part ((k^H)^n groups are enumerated)", low=2, high=64
    )

    def check(self) -> None:
        """Refuse, before any work, sizes whose group enumeration exceeds 10^6 groups per prompt."""
        from ...common.validation import power_exceeds
        from ...errors import ConfigError

        if power_exceeds(self.adv_responses, max(self.group_sizes), 10 ** 6):
            raise ConfigError("group_sizes", f"adv_responses^max(group_sizes) = {self.adv_responses}^"
                                             f"{max(self.group_sizes)} exceeds 10^6 groups")
        if power_exceeds(self.ar_actions, self.ar_horizon * self.prm_group, 10 ** 6):
            raise ConfigError("prm_group", f"(ar_actions^ar_horizon)^prm_group = ({self.ar_actions}^"
                                           f"{self.ar_horizon})^{self.prm_group} exceeds 10^6 groups")


# ----------------------------------------------------------------------------------------------- (a) values
def _kl_values(cfg, ctx) -> dict:
    X, Y = cfg.kl_prompts, cfg.kl_responses
    lq, lp = tilted_laws(X, Y, cfg.kl_scales, ctx.generator("kl/instance"))          # [T, X, Y], [X, Y]
    mom = kl_estimator_moments(lq, lp.expand_as(lq))                                  # one batched call
    rows = []
    for i, s in enumerate(cfg.kl_scales):
        row = {"t": s, "kl_qp": float(mom.kl_qp[i].mean()), "kl_pq": float(mom.kl_pq[i].mean())}
        for k in VALUE_ESTIMATORS:
            row[f"{k}/bias"] = float(mom.bias(k)[i].mean())
            row[f"{k}/sd"] = float(mom.var[k][i].sqrt().mean())
            row[f"{k}/max_abs_bias"] = float(mom.bias(k)[i].abs().max())
        row["k2_identity_err"] = float(
            (mom.mean["k2"][i] - 0.5 * (mom.var["k1"][i] + mom.kl_qp[i] ** 2)).abs().max()
        )
        rows.append(row)
    # Monte Carlo through a weak sampler revealing log q (middle scale)
    mid = len(cfg.kl_scales) // 2
    weak = WeakSampler(LinearSoftmaxModel(lq[mid], torch.zeros(X, Y, 1, dtype=F64), 1.0), Ledger(),
                       reveal={"log_probs"})
    M = cfg.kl_mc_samples
    smp = weak.sample(torch.arange(X), M, ctx.generator("kl/mc"))
    y = smp.responses
    lp_s = lp[torch.arange(X)[:, None], y]
    mc = {}
    for k in VALUE_ESTIMATORS:
        est = kl_value_estimates(smp.log_probs, lp_s, k)
        mc[k] = {
            "mean": est.mean(1).tolist(),
            "exact": mom.mean[k][mid].tolist(),
            "var": mom.var[k][mid].tolist(),
        }
    mc["kl_qp"] = mom.kl_qp[mid].tolist()
    return {"rows": rows, "mc": mc, "mc_samples": M, "mc_t": cfg.kl_scales[mid]}


# ------------------------------------------------------------------------------------------- (b) placements
def _ar_pair(cfg, scale, gen):
    return linear_ar_pair(cfg.ar_context_dim, cfg.ar_actions, cfg.ar_horizon, cfg.ar_prompts, scale, gen)


def _placements(cfg, ctx) -> dict:
    rows = []
    for s in cfg.ar_scales:
        pol, ref, x = _ar_pair(cfg, s, ctx.generator("ar/instance"))  # same directions at every scale
        t = linear_ar_table(pol, ref, x)
        m = kl_gradient_moments(t)
        kl_qp = float(
            torch.where(t.seq_log_q > -math.inf, t.seq_log_q.exp() * (t.seq_log_q - t.seq_log_p), 0)
            .sum(1)
            .mean()
        )
        for v in VARIANTS:
            rows.append({"scale": s, "kl_qp": kl_qp, "variant": v, "cos_qp": m.cosine(v, "kl_qp"),
                         "cos_pq": m.cosine(v, "kl_pq"), "bias_qp": m.relative_bias(v, "kl_qp"),
                         "bias_pq": m.relative_bias(v, "kl_pq"), "var": m.var[v],
                         "norm_ratio": float(m.mean[v].norm() / m.grad_kl_qp.norm()),
                         "err_qp_minus_pq": float((m.mean[v] - (m.grad_kl_qp - m.grad_kl_pq)).norm()
                                                  / (m.grad_kl_qp - m.grad_kl_pq).norm()),
                         "zero_ratio": float(m.mean[v].norm() / m.grad_kl_qp.norm())})
    return {"rows": rows, "lm": _lm_path(cfg, ctx)}


def _lm_path(cfg, ctx) -> dict:
    """LMPolicyGradient.step (zero rewards: only the per-token k3 penalty moves w) on the exact model."""
    pol_ar, ref_ar, x = _ar_pair(cfg, 1.0, ctx.generator("ar/instance"))
    pol, ref = ExactLMPolicy(pol_ar, x), ExactLMPolicy(ref_ar, x)
    S = cfg.ar_actions ** cfg.ar_horizon
    reward = RewardOracle(SequenceTableReward(torch.zeros(cfg.ar_prompts, S), cfg.ar_actions), Ledger())
    lcfg = LMPGConfig(steps=1, batch_size=cfg.lm_batch, group_size=2, reward="outcome", advantage="none",
                      optimizer="sgd", lr=1.0, max_grad_norm=0.0, kl_coef=1.0, kl_estimator="k3")
    grads = step_gradients(LMPolicyGradient(lcfg), pol, WeakSampler(pol, reward.ledger, reveal=()), reward,
                           PromptSource(cfg.ar_prompts, reward.ledger), cfg.lm_steps, ctx.generator("lm/mc"),
                           reference=ref)
    table = exact_table(pol, ref)
    m = kl_gradient_moments(table)
    H = cfg.ar_horizon
    return {"mc_mean": grads.mean(0).tolist(), "mc_se": (grads.std(0) / math.sqrt(grads.shape[0])).tolist(),
            "exact": exact_step_gradient(table, torch.zeros(cfg.ar_prompts, S, dtype=F64), 2, "none", 1.0,
                                         "k3").tolist(),
            "alt_kl_qp": (m.grad_kl_qp / H).tolist(), "alt_kl_pq": (m.grad_kl_pq / H).tolist(),
            "ledger": reward.ledger.snapshot()}


# ------------------------------------------------------------------------------------------- (c) advantages
def _advantages(cfg, ctx) -> dict:
    model, theta, R = success_instance(cfg.success_probs, cfg.adv_responses, cfg.adv_features,
                                       ctx.generator("adv/instance"))
    t = linear_softmax_table(model, theta)
    lq, sc = t.seq_log_q, t.seq_score
    gJ = policy_gradient_exact(lq, R, sc)
    q = lq.exp()
    p_x = (q * R).sum(1)
    grad_p = torch.einsum("xy,xy,xyd->xd", q, R, sc)
    rows = []
    for n in cfg.group_sizes:
        for est in ALL_ESTIMATORS:
            kw = {"k": min(cfg.pass_k, n)} if est == "pass_at_k" else {}
            mom = group_gradient_moments(lq, R, sc, n, est, **kw)
            c = two_point_gain(est, n, p_x, **kw)
            row = {
                "n": n,
                "estimator": est,
                "cos_J": cosine(mom.mean, gJ),
                "scale": float(mom.mean @ gJ / (gJ @ gJ)),
                "bias": float((mom.mean - gJ).norm() / gJ.norm()),
                "var": mom.var_total / float(gJ @ gJ),
                "var_within": mom.var_within / float(gJ @ gJ),
                "two_point_err": float(
                    (mom.per_prompt - c[:, None] * grad_p).abs().max() / grad_p.abs().max()
                ),
                "groups": mom.groups,
            }
            if est == "pass_at_k":
                gk = max_of_k_gradient(lq, R, sc, kw["k"])
                row["k"] = kw["k"]
                row["bias_pass_k"] = float((mom.mean - gk).norm() / gk.norm())
            rows.append(row)
        ctx.progress(0.6 + 0.3 * (cfg.group_sizes.index(n) + 1) / len(cfg.group_sizes), f"advantages n={n}")
    grid = torch.cat([torch.logspace(-3, math.log10(0.5), 20, dtype=F64),
                      1 - torch.logspace(math.log10(0.5), -3, 20, dtype=F64)[1:]])
    gains = {
        est: {
            str(n): two_point_gain(
                est, n, grid, **({"k": min(cfg.pass_k, n)} if est == "pass_at_k" else {})
            ).tolist()
            for n in cfg.gain_sizes
        }
        for est in ALL_ESTIMATORS
    }
    return {
        "rows": rows,
        "p_x": p_x.tolist(),
        "grid": grid.tolist(),
        "gains": gains,
        "prm": _process(cfg, ctx),
    }


def _process(cfg, ctx) -> dict:
    """PRM per-prefix rewards in the {0,1} and ±1 forms (Mousavi-Hosseini & Erdogdu 2026, §3, §6)."""
    gen = ctx.generator("prm/instance")
    pol, _, x = _ar_pair(cfg, 0.5, gen)
    t = linear_ar_table(pol, pol, x)
    S = t.sequences.shape[0]
    target = t.sequences[torch.randint(S, (cfg.ar_prompts,), generator=gen)]
    ok = torch.cumprod((t.sequences[None] == target[:, None]).to(F64), -1)           # [X, S, H]
    gJ = policy_gradient_exact(t.seq_log_q, ok[..., -1], t.seq_score)               # ∇ P(whole answer right)
    out = {}
    for form, Rp in (("binary", ok), ("signed", 2 * ok - 1)):
        for est in ("none", "batch_mean", "leave_one_out"):
            mom = group_gradient_moments(t.seq_log_q, Rp, t.score, cfg.prm_group, est)
            out[f"{form}/{est}"] = {"mean": mom.mean.tolist(), "var": mom.var_total / float(gJ @ gJ),
                                    "cos_J": cosine(mom.mean, gJ), "scale": float(mom.mean @ gJ / (gJ @ gJ))}
    return out


def run(cfg: EstimatorsExactConfig, ctx) -> dict:
    out = {"values": _kl_values(cfg, ctx)}
    ctx.progress(0.2, "KL values")
    out["placements"] = _placements(cfg, ctx)
    ctx.progress(0.5, "KL placements")
    out["advantages"] = _advantages(cfg, ctx)
    ctx.progress(1.0, "advantages")
    return out


SCALES = {
    "toy": {
        "kl_responses": 20,
        "kl_prompts": 4,
        "kl_scales": [0.05, 0.1, 0.7, 1.5, 3.0],
        "kl_mc_samples": 8000,
        "ar_scales": [0.5, 1.0],
        "lm_batch": 256,
        "lm_steps": 12,
        "adv_responses": 4,
        "group_sizes": [2, 3, 4],
        "gain_sizes": [2, 8, 16],
    },
    "quick": {},
    "paper": {
        "kl_responses": 1000,
        "kl_prompts": 64,
        "kl_mc_samples": 20000,
        "ar_actions": 4,
        "ar_horizon": 4,
        "lm_batch": 2048,
        "lm_steps": 40,
        "adv_responses": 10,
        "group_sizes": [2, 3, 4, 5, 6],
        "prm_group": 2,
    },
}
