"""The base-model barrier on a real pretrained LM: Gemma-3-270M, few-shot arithmetic, outcome vs process
rewards.

Mousavi-Hosseini & Erdogdu (2026, §6) observe on MATH-500 with Qwen3 that RL with outcome rewards raises
pass@1 but not pass@k at large k: it sharpens the base model's law on answers it already finds (the base-model
barrier: an outcome-reward learner needs ≈ 1/q₀(y⋆|x) samples to see a correct answer once, Cor. 3.4-3.6),
while process rewards need only ≈ N·min(1/LQ_TL, k) (Thm 4.1). Here the base model is Gemma-3-270M (base,
converted by ``make real-model`` into ``models/gemma-3-270m``), the task few-shot addition of a two-digit and
a one-digit number (``oraclerl.problems.lm_tasks.few_shot_task``: three solved examples, then the problem;
exact verifiers: the answer before the newline must equal the sum; the process verifier accepts a prefix that
can still become a correct answer). On held-out problems we measure the base model's per-problem likelihood
q₀(y⋆|x) of the canonical answer (teacher-forced; its quantiles are the likelihood quantile LQ of §4.1) and
its pass@k curve (k up to 64, the unbiased estimator of Chen et al. 2021 from 64 samples per problem),
post-train with ``LMPolicyGradient`` (leave-one-out advantages, Adam, the LM defaults: clipping on, embeddings
frozen) with outcome rewards and, separately, with process rewards on the training problems for a few steps,
and measure again with the same sampling uniforms (common random numbers, so per-problem differences are
paired).

What the quick scale showed, and what a 270M model at this scale can and cannot show:
docs/experiments/lm-barrier-real.md.

When the model directory is absent (no ``make real-model``) the runs are skipped and every claim is n/a
with the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ...common.config import param
from ...diagnostics.likelihood_quantile import log_likelihood_quantile
from ...diagnostics.pass_at_k import doubling_ks, pass_at_k_from_samples

AUTO = "auto"
"""``model="auto"``: the Gemma-3-270M directory ``make real-model`` prepares (``$ORACLERL_REAL_LM``, else
``models/gemma-3-270m`` of the checkout or of the working directory; see ``models.hf.real_model``)."""
TINY = "tiny"
"""``model="tiny"``: a random in-process GPT-2 over characters (exercises the code path; its pass rates are
≈ 0)."""
LQ_LEVELS = (0.1, 0.25, 0.5)


def resolve_model(model: str) -> Path | None:
    """The model directory ``model`` names (``"auto"``: the prepared Gemma-3-270M), None when it is absent."""
    if model == AUTO:
        from ...models.hf.real_model import find_real_model

        return find_real_model()
    p = Path(model)
    return p if (p / "config.json").is_file() else None


def model_fingerprint(model: str) -> str:
    """Identity of a model directory: sha256 of config.json and the weight files' names, sizes and mtimes
    (``"absent"`` when there is none). It enters the run key, so a run made on another model, or skipped
    without one, is not re-used once ``make real-model`` has (re-)made the directory."""
    if model == TINY:
        return TINY
    p = resolve_model(model)
    if p is None:
        return "absent"
    h = hashlib.sha256((p / "config.json").read_bytes())
    for f in sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@dataclass
class LMBarrierRealConfig:
    model: str = param(
        AUTO,
        "base model: auto (Gemma-3-270M from make real-model), a transformers directory, or "
        "tiny (a random in-process GPT-2: code-path tests only)",
    )
    model_fingerprint: str = param(
        "",
        "set by the config check from the model directory (do not set): keys the "
        "run store, so a run on another or an absent model is not re-used",
    )
    task: str = param("add", "few-shot task: add, sub, mul (operands of `size` digits) or reverse (words)",
                      choices=("add", "sub", "mul", "reverse"))
    size: int = param(
        2, "digits of the first operand (arithmetic) or letters per word (reverse)", low=1, high=5
    )
    size_b: int = param(1, "digits of the second operand (0 = size)", low=0, high=3)
    shots: int = param(3, "solved examples in every prompt", low=0, high=16)
    num_train: int = param(32, "training problems (PG prompts, uniform)", low=1, high=2 ** 16)
    num_test: int = param(8, "held-out problems (pass@k and likelihood)", low=1, high=2 ** 16)
    samples: int = param(
        64, "samples per held-out problem n; pass@k for k = 1, 2, 4, ..., n", low=2, high=2**12
    )
    max_new_tokens: int = param(
        5, "response length limit (an answer is a few digits and a newline)", low=1, high=512
    )
    methods: list[str] = param(
        ["outcome", "process"], "reward types compared", choices=("outcome", "process")
    )
    pg_steps: int = param(4, "PG updates per method", low=1, high=10 ** 5)
    batch_prompts: int = param(4, "prompts per PG update", low=1, high=2 ** 10)
    group_size: int = param(4, "responses per prompt", low=2, high=256)
    lr: float = param(1e-6, "Adam learning rate (the library default; 1e-5 costs held-out answers 6 nats per "
                            "step here)", low=0.0, low_open=True)
    max_grad_norm: float = param(1.0, "gradient-norm clipping (0 = none)", low=0.0)
    kl_coef: float = param(0.0, "per-token k3 KL penalty to the base model (0 = none)", low=0.0)
    advantage: str = param("leave_one_out", "advantage estimator, both reward types",
                           choices=("none", "batch_mean", "leave_one_out", "group_normalised"))
    trainable: str = param(
        "no_embeddings",
        "all, or no_embeddings (freeze the 168M-parameter tied embedding)",
        choices=("all", "no_embeddings"),
    )
    sample_rows: int = param(
        64, "responses per sampling call (memory: rows × vocabulary logits per step)", low=1, high=2**16
    )

    def check(self):
        from ...common.validation import require_hf_extra

        require_hf_extra("lm-barrier-real")
        self.model_fingerprint = model_fingerprint(self.model)


def _load(cfg: LMBarrierRealConfig, task, seed: int):
    kw = dict(max_new_tokens=cfg.max_new_tokens, stop_strings=(task.stop,), device="cpu", dtype=torch.float32)
    if cfg.model == TINY:
        from ...models.hf.tiny import tiny_causal_lm

        return tiny_causal_lm(task.alphabet, task.prompts, seed=seed, **kw)
    from ...models.hf.causal_lm import CausalLM

    return CausalLM.from_pretrained(resolve_model(cfg.model), task.prompts, **kw)


def _evaluate(lm, task, targets, ids: torch.Tensor, cfg: LMBarrierRealConfig, gen: torch.Generator) -> dict:
    """Per held-out problem: correct samples c out of n (exact verifier), log q(y⋆|x) of the canonical answer,
    pass@k for k = 1, 2, 4, ..., n, the likelihood quantiles and the fraction of truncated responses."""
    n = cfg.samples
    per_call = min(n, cfg.sample_rows)
    chunk = max(1, cfg.sample_rows // per_call)
    correct = torch.zeros(len(ids), n, dtype=torch.bool)
    truncated, f = 0, task.outcome_fn()
    for s in range(0, len(ids), chunk):
        x = ids[s:s + chunk]
        for j in range(0, n, per_call):
            m = min(per_call, n - j)
            y = lm.sample(x, m, gen)
            truncated += int((~lm.response_lengths(y)[1]).sum())
            for b, comps in enumerate(lm.decode(y)):
                correct[s + b, j : j + m] = (
                    torch.tensor(f(prompts=[task.prompts[int(x[b])]] * m, completions=comps)) > 0
                )
    with torch.no_grad():
        log_q = lm.log_prob(ids, targets[ids][:, None], processed=True)[:, 0]
    ks = doubling_ks(n)
    return {"correct": correct.sum(1).tolist(), "log_q": log_q.tolist(), "ks": ks,
            "pass_at_k": pass_at_k_from_samples(correct, ks).tolist(),
            "lq": log_likelihood_quantile(log_q.clamp_max(0.0), list(LQ_LEVELS)).exp().tolist(),
            "truncated": truncated / (len(ids) * n)}


def run(cfg: LMBarrierRealConfig, ctx) -> dict:
    if cfg.model_fingerprint == "absent":
        where = "models/gemma-3-270m" if cfg.model == AUTO else repr(cfg.model)
        return {"skipped": f"no model in {where} (run `make real-model` to prepare Gemma-3-270M)"}
    import gc

    from ...models.hf.rewards import TRLProcessReward, TRLReward
    from ...oracles import Ledger, PromptSource, RewardOracle
    from ...posttrain.lm_pg import LMPGConfig, LMPolicyGradient
    from ...problems.lm_tasks import few_shot_task

    task = few_shot_task(
        cfg.task,
        cfg.num_train,
        cfg.num_test,
        cfg.shots,
        cfg.size,
        cfg.size_b or None,
        seed=ctx.seeds.int("task") % 2**31,
    )
    lm = _load(cfg, task, ctx.seeds.int("init") % 2**31)
    targets = task.target_tokens(lm)
    test = torch.tensor(task.meta["test_ids"])
    out = {
        "model": cfg.model if cfg.model != AUTO else "gemma-3-270m",
        "prompt_tokens": int(lm._prompt_ids.shape[1]),
        "num_actions": lm.num_actions,
        "example_prompt": task.prompts[int(test[0])],
        "methods": {},
    }
    out["base"] = _evaluate(lm, task, targets, test, cfg, ctx.generator("eval"))
    ctx.progress(0.25, "base model measured")
    for i, method in enumerate(cfg.methods):
        ledger = Ledger()
        fn = (TRLReward(lm, task.outcome_fn()) if method == "outcome"
              else TRLProcessReward(lm, task.outcome_fn(), task.process_fn()))
        pg = LMPolicyGradient(LMPGConfig(
            steps=cfg.pg_steps, batch_size=cfg.batch_prompts, group_size=cfg.group_size, reward=method,
            advantage=cfg.advantage, lr=cfg.lr, max_grad_norm=cfg.max_grad_norm, kl_coef=cfg.kl_coef,
            trainable=cfg.trainable, eval_every=cfg.pg_steps))
        steps = []

        def log(t, m=method, steps=steps, **kw):
            steps.append(kw)
            ctx.log(t, **{f"{m}/{k}": v for k, v in kw.items()})

        res = pg.run(
            lm,
            RewardOracle(fn, ledger),
            PromptSource(task.weights, ledger),
            ctx.generator(f"pg/{method}"),
            log=log,
        )
        out["methods"][method] = {
            "eval": _evaluate(res.policy, task, targets, test, cfg, ctx.generator("eval")),
            "steps": steps,
            "ledger": res.ledger,
        }
        del res
        gc.collect()
        ctx.progress(0.25 + 0.75 * (i + 1) / len(cfg.methods), method)
    K = cfg.samples
    for name, ev in [("base", out["base"])] + [(m, v["eval"]) for m, v in out["methods"].items()]:
        out[f"{name}_pass@1"], out[f"{name}_pass@{K}"] = ev["pass_at_k"][0], ev["pass_at_k"][-1]
    return out


SCALES = {
    "toy": {"num_train": 4, "num_test": 2, "samples": 8, "pg_steps": 1, "batch_prompts": 2, "group_size": 2,
            "shots": 1, "sample_rows": 16},
    "quick": {},
    "paper": {"num_train": 256, "num_test": 64, "pg_steps": 100, "batch_prompts": 16},
}
