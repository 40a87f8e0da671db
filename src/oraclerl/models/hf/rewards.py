"""TRL-style reward functions behind the reward-function protocol of :class:`~oraclerl.oracles.RewardOracle`.

A TRL reward function has the signature ``f(prompts, completions, **kwargs) -> list[float | None]`` (one value
per completion; ``None`` = "this function does not apply to this sample"). :class:`TRLReward` decodes the
padded response tensors of a :class:`~oraclerl.models.hf.causal_lm.CausalLM` into strings, calls the functions
unchanged and returns ``mean(prompts, responses) -> [B, n]`` (outcome rewards) and, with a ``process_func``,
``process_mean(prompts, responses) -> [B, n, L]`` (process rewards, Mousavi-Hosseini & Erdogdu 2026, Eq. 4:
one verifier call per prefix y_{1:i}).

Combination rule (as TRL's ``GRPOTrainer``): r = Σ_f w_f·f(...) over the functions that apply (not ``None``);
a sample to which no function applies gets ``none_value`` (0.0, TRL's ``nansum``), or an error with
``none_value="error"``. A function returning the wrong number of values, a NaN, or a non-number is a
:class:`~oraclerl.errors.ConfigError` naming the function.

Keyword arguments passed to every call: ``completion_ids`` (token ids of each completion, as TRL) and every
column of ``dataset_columns`` (a dict ``name -> list`` with one entry per prompt id), repeated per completion.
A process function also gets ``prefix_ended`` (True when the prefix contains the end of the response: its
terminal token or completed stop string), so it can tell "correct so far" from "finished and correct".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ...errors import ConfigError


def _name(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


class TRLReward:
    """Reward function (``mean`` / ``process_mean`` / ``r_max``) built from TRL-signature callables.

    Parameters
    ----------
    lm:
        The :class:`CausalLM` whose prompts and tokenizer define the strings the functions see.
    reward_funcs:
        One callable or a list of them (outcome rewards).
    weights:
        One weight per function (default 1.0 each).
    process_func:
        (:class:`TRLProcessReward` only) TRL-signature callable evaluated on every prefix y_{1:i} (i = 1..L;
        prefixes past the end of a response equal the full response) for process rewards.
    dataset_columns:
        Extra per-prompt columns passed as keyword arguments (e.g. ``{"answer": [...]}``).
    r_max:
        Upper bound on the reward (used by Bernoulli reward noise), if known.
    none_value:
        Reward for a sample no function applies to: a number, or ``"error"``.
    """

    def __init__(
        self,
        lm,
        reward_funcs: Callable | Sequence[Callable],
        weights: Sequence[float] | None = None,
        process_func: Callable | None = None,
        dataset_columns: dict[str, list] | None = None,
        r_max: float | None = None,
        none_value: float | str = 0.0,
    ):
        funcs = [reward_funcs] if callable(reward_funcs) else list(reward_funcs)
        if not funcs or not all(callable(f) for f in funcs):
            raise ConfigError("reward_funcs", "must be a callable or a non-empty list of callables")
        w = [1.0] * len(funcs) if weights is None else [float(x) for x in weights]
        if len(w) != len(funcs) or not all(math.isfinite(x) for x in w):
            raise ConfigError(
                "weights", f"must be {len(funcs)} finite numbers (one per reward function), got {weights!r}"
            )
        if process_func is not None and not callable(process_func):
            raise ConfigError("process_func", "must be callable")
        cols = dict(dataset_columns or {})
        for k, v in cols.items():
            if len(v) != lm.num_prompts:
                raise ConfigError(
                    f"dataset_columns.{k}", f"must have one entry per prompt ({lm.num_prompts}), got {len(v)}"
                )
        if not (none_value == "error" or isinstance(none_value, (int, float))):
            raise ConfigError("none_value", f"must be a number or 'error', got {none_value!r}")
        self.lm, self.funcs, self.weights, self.process_func = (
            lm,
            funcs,
            torch.tensor(w, dtype=torch.float64),
            process_func,
        )
        self.columns, self.r_max, self.none_value = cols, r_max, none_value

    # -- calling the functions ----------------------------------------------------------------------
    def _kwargs(self, prompt_ids: list[int], completion_ids: list[list[int]]) -> dict:
        kw = {k: [v[i] for i in prompt_ids] for k, v in self.columns.items()}
        kw["completion_ids"] = completion_ids
        return kw

    def _call(self, f, prompts: list[str], completions: list[str], kwargs: dict) -> torch.Tensor:
        """Values [N] (float64; NaN marks ``None``) with the output checks of the module docstring."""
        out = f(prompts=prompts, completions=completions, **kwargs)
        if isinstance(out, torch.Tensor):
            out = out.tolist()
        try:
            values = list(out)
        except TypeError:
            raise ConfigError(
                "reward", f"reward function {_name(f)} must return a list, got {type(out).__name__}"
            ) from None
        if len(values) != len(completions):
            raise ConfigError("reward", f"reward function {_name(f)} returned {len(values)} values for "
                              f"{len(completions)} completions (must return one per completion)")
        res = torch.empty(len(values), dtype=torch.float64)
        for i, v in enumerate(values):  # validating a Python list: one check per returned value
            if v is None:
                res[i] = float("nan")
                continue
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                and not (isinstance(v, torch.Tensor) and v.numel() == 1)
            ):
                raise ConfigError(
                    "reward",
                    f"reward function {_name(f)} returned {v!r} at index {i}; must be a number or None",
                )
            v = float(v)
            if math.isnan(v):
                raise ConfigError(
                    "reward",
                    f"reward function {_name(f)} returned NaN at index {i} (use None for 'not applicable')",
                )
            res[i] = v
        return res

    def _combine(self, table: torch.Tensor) -> torch.Tensor:
        """Σ_f w_f r_f over applicable functions; ``none_value`` where none applies. ``table`` is [N, F]."""
        applies = ~torch.isnan(table)
        total = torch.where(applies, table * self.weights, torch.zeros((), dtype=table.dtype)).sum(-1)
        none = ~applies.any(-1)
        if none.any():
            if self.none_value == "error":
                raise ConfigError(
                    "reward",
                    f"no reward function applies to completion {int(none.nonzero()[0, 0])} "
                    "(all returned None) and none_value='error'",
                )
            total = torch.where(none, torch.full_like(total, float(self.none_value)), total)
        return total

    def _texts(self, prompts: torch.Tensor, responses: torch.Tensor):
        B, n, L = responses.shape
        pids = [int(p) for p in torch.as_tensor(prompts).reshape(-1).tolist() for _ in range(n)]
        return pids, [self.lm.prompts[i] for i in pids]

    # -- the reward-function protocol ----------------------------------------------------------------
    def mean(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """Outcome rewards [B, n] (float64)."""
        B, n, L = responses.shape
        pids, ptxt = self._texts(prompts, responses)
        completions = [c for row in self.lm.decode(responses) for c in row]
        mask = self.lm.response_mask(responses).reshape(B * n, L).cpu()
        ids = [r[m].tolist() for r, m in zip(responses.reshape(B * n, L).cpu(), mask)]
        kw = self._kwargs(pids, ids)
        table = torch.stack([self._call(f, ptxt, completions, kw) for f in self.funcs], -1)
        return self._combine(table).reshape(B, n).to(self.lm.device)



class TRLProcessReward(TRLReward):
    """:class:`TRLReward` with process rewards: ``process_func`` (required) is called on every prefix."""

    def __init__(self, lm, reward_funcs, process_func: Callable, **kwargs):
        if process_func is None:
            raise ConfigError("process_func", "is required for process rewards")
        super().__init__(lm, reward_funcs, process_func=process_func, **kwargs)

    def process_mean(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """Process rewards [B, n, L] (float64): ``process_func`` on every prefix y_{1:i}."""
        B, n, L = responses.shape
        pids, ptxt = self._texts(prompts, responses)
        lengths, ended = (t.reshape(B * n).cpu() for t in self.lm.response_lengths(responses))
        rows = responses.reshape(B * n, L).cpu()
        ids = [rows[r, : min(i + 1, int(lengths[r]))].tolist() for r in range(B * n) for i in range(L)]
        texts = self.lm.tokenizer.batch_decode(ids, skip_special_tokens=True)
        kw = self._kwargs([p for p in pids for _ in range(L)], ids)
        kw["prefix_ended"] = [
            bool(ended[r]) and i + 1 >= int(lengths[r]) for r in range(B * n) for i in range(L)
        ]
        vals = self._call(self.process_func, [p for p in ptxt for _ in range(L)], texts, kw)
        return self._combine(vals[:, None]).reshape(B, n, L).to(self.lm.device)


def trl_reward(lm, reward_funcs, process_func: Callable | None = None, **kwargs) -> TRLReward:
    """:class:`TRLProcessReward` when ``process_func`` is given, else :class:`TRLReward` (outcome only)."""
    if process_func is not None:
        return TRLProcessReward(lm, reward_funcs, process_func, **kwargs)
    return TRLReward(lm, reward_funcs, **kwargs)


def answer_match(kind: str = "exact") -> Callable:
    """A TRL reward function ``f(prompts, completions, answer, **kw)`` checking completions against the
    ``answer`` column with a ``--match`` kind of :mod:`oraclerl.models.hf.answers` (``"exact"``,
    ``"contains"``, ``"first-line"``, ``"last-number"``/``"number"``, ``"regex:PATTERN"``,
    ``"module:function"``)."""
    from .answers import make_matcher

    match = make_matcher(kind)

    def check(prompts, completions, answer, **kwargs):
        return [float(match(c, a)) for c, a in zip(completions, answer)]

    check.__name__ = f"answer_{kind}"
    return check
