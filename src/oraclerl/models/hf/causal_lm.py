"""A ``transformers`` causal LM as a base model behind the oracles (Foster et al. 2025, Def. 1.1 and 2.1, §5).

:class:`CausalLM` implements the model protocols of :mod:`oraclerl.oracles.samplers`, so ``WeakSampler``,
``StrongSampler`` and ``AutoregressiveSampler`` (and every algorithm written against them) run on it
unchanged.

Conventions
-----------
* **Prompts** are integer ids into the model's prompt list ``prompts: list[str]`` (tokenised once,
  left-padded).
* **Responses** are token tensors ``[B, n, L]`` with ``L = max_new_tokens``. A response ends at its first
  *terminal* token (EOS, or the pad token if the model emits it), which is part of the response and of its
  log-probability, or at the token that completes a stop string (included), or after ``L`` tokens
  (truncation). Every position after the end holds ``pad_token_id`` and carries no probability. So π_ref
  is a proper distribution over these padded sequences, and ``response_lengths`` recovers the end from the
  tokens alone.
* **Two distributions.** The *raw* model distribution is ``softmax(logits)`` at temperature 1. The
  *processed* (sampling) distribution is ``softmax`` of the logits divided by ``temperature`` and restricted
  by top-k then top-p (the order and tie rules of ``transformers``' warpers). π_ref **is the processed
  distribution**: it is the law :meth:`sample` draws from, so ``ref_log_prob`` (what a ``WeakSampler`` with
  ``reveal={"log_probs"}`` returns) is the exact log-probability of the sampled law. :meth:`log_prob` with
  ``processed=False`` gives the raw model's sequence log-likelihood (they coincide at temperature 1 with no
  top-k/top-p).
* **Features** ϕ(x, y) ∈ ℝ^d (d = hidden size): the frozen network's last-layer hidden states over the
  response tokens, mean-pooled (``pool="mean"``) or at the last response token (``pool="last"``), then
  projected onto the unit ball (‖ϕ‖ ≤ 1, Foster et al. Assumption 2.1). This is the "only the last layer
  is trained" regime of the linear-softmax class π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β). Step features ϕ_h(x, a_{1:h})
  (§5) are the projected hidden state at token a_h.
* **Strong oracle.** ``sample_tilted`` draws y ~ π_θ exactly by rejection from π_ref: accept a proposal with
  probability exp((⟨θ, ϕ⟩ − ‖θ‖)/β) ≤ 1 (valid because ‖ϕ‖ ≤ 1), so the expected number of proposals is
  at most exp(2‖θ‖/β). ``tilted_log_prob`` needs log Z_θ(x) and is exact by enumeration of the response
  space when it has at most ``max_enumerate`` sequences.
* Randomness comes only from the ``torch.Generator`` passed in: one uniform per row and step, drawn on the
  generator's device, inverse-CDF sampling on the model's device.
* **Terminal tokens** are the pad token, ``tokenizer.eos_token_id`` and every id of
  ``model.generation_config.eos_token_id`` (an int or a list: Gemma-it, Qwen and Llama-3 end turns with a
  token that is not the tokenizer's EOS), plus ``eos_token_ids`` when given.
* **What is computed.** A plain ``WeakSampler(lm)`` reveals nothing but the responses
  (``default_reveal = ∅``: features and log-probabilities each cost a teacher-forced pass, so they are
  computed only when ``reveal`` asks for them). The per-token log-probabilities drawn while sampling are
  kept with the sampled tensor, and :meth:`ref_log_prob` of that same tensor (same prompts, unchanged
  weights) returns them without a second pass.
* **Memory.** A teacher-forced pass keeps logits only at the L positions that predict response tokens
  (``logits_to_keep``; never at the prompt positions) for at most ``forward_batch_size`` rows, and turns
  them into log-probabilities in chunks of at most :data:`LOGPROB_CHUNK` floats, so its extra memory is
  about ``forward_batch_size × (L+1) × V`` logits (float32 on the CPU, the model dtype on a GPU) plus one
  chunk. The default ``forward_batch_size=None`` picks the rows so that this is at most
  :data:`LOGITS_BUDGET` logits (128 MiB in float32): 3 rows for Gemma-3-270M (V = 262,144) at L = 32.
  With ``grad=True`` the log-softmax of every pass is kept for the backward pass (call it on small batches).
* **Cache.** Sampling uses a ``DynamicCache`` created here and passed to the model (the keyword is
  ``cache`` in transformers ≥ 5.2x, ``past_key_values`` before; both are supported), so no deprecated
  ``past_key_values`` tuple is read back from the outputs.
"""

from __future__ import annotations

import copy
import inspect

import torch

from ...common.device import resolve_device
from ...common.validation import check_choice, check_int, check_positive, check_range
from ...errors import ConfigError
from .oracle_methods import _OUT_DTYPE, LinearSoftmaxProtocolMixin
from .sampling import _uniform, auto_dtype, inverse_cdf, process_logits

__all__ = ["CausalLM", "auto_dtype", "inverse_cdf", "process_logits"]

#: Logits per teacher-forced pass when ``forward_batch_size=None`` (2^25 floats = 128 MiB in float32).
LOGITS_BUDGET = 1 << 25
#: Floats per log-softmax chunk of a teacher-forced pass (2^22 = 16 MiB in float32; the processed law makes a
#: few temporaries of this size: sort values and indices, cumulative sums, masks).
LOGPROB_CHUNK = 1 << 22


def _eos_ids(value) -> set[int]:
    """An ``eos_token_id`` field (None, an int or a list of ints) as a set of ids."""
    if value is None:
        return set()
    if isinstance(value, int):
        return {int(value)}
    return {int(v) for v in value}


def _param_version(model) -> int:
    """Sum of the parameters' in-place version counters: changes whenever an optimizer updates a weight."""
    return sum(p._version for p in model.parameters())


class CausalLM(LinearSoftmaxProtocolMixin):
    """A ``transformers`` causal LM + tokenizer as a base model π_ref with features (see the module
    docstring).

    ``default_reveal`` is empty: an oracle over a CausalLM computes features or log-probabilities only when
    its ``reveal`` names them (each costs a teacher-forced pass over the responses).

    Parameters
    ----------
    model, tokenizer:
        Any ``AutoModelForCausalLM``-style model and its tokenizer (objects; see :meth:`from_pretrained`).
    prompts:
        The prompt list; prompt id ``i`` is ``prompts[i]``.
    beta:
        β of the linear-softmax class π_θ ∝ π_ref·exp(⟨θ, ϕ⟩/β) (strong oracle).
    max_new_tokens, temperature, top_k, top_p, stop_strings:
        The sampling law π_ref (``top_k=0`` and ``top_p=1`` disable those filters).
    pool:
        ``"mean"`` or ``"last"``: how ϕ(x, y) pools the last-layer hidden states over the response.
    pad_token:
        ``None`` (a tokenizer without a pad token is an error) or ``"eos"`` (pad with the EOS token).
    device, dtype:
        Default: CUDA when available, else CPU. ``dtype=None`` casts to bfloat16 on a CUDA device that
        supports it and otherwise keeps the model's own dtype (a bfloat16 model stays bfloat16 on the CPU:
        nothing is cast up to float32 unasked). The passed model is moved in place, as ``nn.Module.to``
        does; pass ``dtype=torch.float32`` to fine-tune on a GPU. A model dispatched with ``device_map``
        (``hf_device_map`` set) is not moved: its input-embedding device is used.
    forward_batch_size:
        Rows per teacher-forced forward pass (memory knob; results do not depend on it). ``None`` (default):
        as many rows as keep one pass within :data:`LOGITS_BUDGET` logits, at most 256 (see "Memory").
    eos_token_ids:
        Extra terminal token ids, added to the tokenizer's and the generation config's EOS ids.
    add_special_tokens:
        Whether prompts are tokenised with the tokenizer's special tokens (BOS); ``False`` for prompts that
        already carry them, e.g. the output of ``tokenizer.apply_chat_template``.
    max_enumerate, max_rejection_rounds:
        Limits for the exact log Z_θ (enumeration) and the rejection sampler of π_θ.
    """

    def __init__(self, model, tokenizer, prompts: list[str], *, beta: float = 1.0, max_new_tokens: int = 16,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, stop_strings=(),
                 pool: str = "mean", pad_token: str | None = None, device=None, dtype=None,
                 forward_batch_size: int | None = None, max_enumerate: int = 4096,
                 max_rejection_rounds: int = 10_000, eos_token_ids=(), add_special_tokens: bool = True):
        self.beta = check_positive("beta", beta)
        self.max_new_tokens = check_int("max_new_tokens", max_new_tokens, low=1)
        self.temperature = check_positive("temperature", temperature)
        self.top_k = check_int("top_k", top_k, low=0)
        self.top_p = check_range("top_p", top_p, 0.0, 1.0, low_open=True)
        self.pool = check_choice("pool", pool, ("mean", "last"))
        if forward_batch_size is not None:
            check_int("forward_batch_size", forward_batch_size, low=1)
        self.max_enumerate = check_int("max_enumerate", max_enumerate, low=1)
        self.max_rejection_rounds = check_int("max_rejection_rounds", max_rejection_rounds, low=1)
        if isinstance(stop_strings, str):
            stop_strings = (stop_strings,)
        self.stop_strings = tuple(stop_strings)
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise ConfigError("stop_strings", f"must be non-empty strings, got {self.stop_strings!r}")
        if tokenizer.eos_token_id is None:
            raise ConfigError(
                "tokenizer", "has no EOS token (eos_token_id is None); responses need a terminal token"
            )
        if tokenizer.pad_token_id is None:
            if pad_token != "eos":
                raise ConfigError(
                    "tokenizer",
                    "has no pad token; set tokenizer.pad_token, or pass pad_token='eos' "
                    "to pad responses with EOS (unambiguous: a response ends at its first EOS)",
                )
            pad_id = tokenizer.eos_token_id
        elif pad_token not in (None, "eos"):
            raise ConfigError("pad_token", f"must be None or 'eos', got {pad_token!r}")
        else:
            pad_id = tokenizer.eos_token_id if pad_token == "eos" else tokenizer.pad_token_id
        if (
            not isinstance(prompts, (list, tuple))
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise ConfigError("prompts", "must be a non-empty list of strings")
        self.pad_token_id = int(pad_id)
        self.eos_token_id = int(tokenizer.eos_token_id)
        try:
            extra = _eos_ids(eos_token_ids)
        except (TypeError, ValueError):
            raise ConfigError("eos_token_ids", f"must be token ids (ints), got {eos_token_ids!r}") from None
        gen_cfg = getattr(model, "generation_config", None)
        self.terminal_ids = torch.tensor(sorted({self.pad_token_id, self.eos_token_id} | extra
                                                | _eos_ids(getattr(gen_cfg, "eos_token_id", None))))
        self.tokenizer = tokenizer
        if getattr(model, "hf_device_map", None):  # dispatched by accelerate: leave the placement alone
            self.device = model.get_input_embeddings().weight.device
            self.dtype = model.dtype if dtype is None else dtype
            self.model = (model if dtype is None else model.to(dtype=dtype)).eval()
        else:
            self.device = resolve_device(device)
            self.dtype = auto_dtype(self.device, dtype) if (dtype is not None or self.device.type == "cuda") \
                else next(model.parameters()).dtype
            self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self._cache_kw = (
            "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        )
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        # (responses, prompts, per-token processed log-probs, weight version) of the last sample
        self._sampled = None
        self.prompts = list(prompts)
        enc = [tokenizer(p, add_special_tokens=bool(add_special_tokens))["input_ids"] for p in self.prompts]
        if any(len(e) == 0 for e in enc):
            raise ConfigError("prompts", "every prompt must tokenise to at least one token")
        width = max(len(e) for e in enc)
        ids = torch.full((len(enc), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, e in enumerate(enc):  # once per prompt, at construction
            ids[i, width - len(e):] = torch.tensor(e)
            mask[i, width - len(e):] = 1
        self._prompt_ids, self._prompt_mask = ids.to(self.device), mask.to(self.device)
        self.terminal_ids = self.terminal_ids.to(self.device)
        self.num_actions = int(self.model.get_output_embeddings().weight.shape[0])
        self.feature_dim = int(self.model.config.hidden_size if hasattr(self.model.config, "hidden_size")
                               else self.model.config.n_embd)
        n_pos = getattr(self.model.config, "n_positions", None) or getattr(
            self.model.config, "max_position_embeddings", None
        )
        if n_pos is not None and width + self.max_new_tokens > n_pos:
            raise ConfigError(
                "max_new_tokens", f"prompt length {width} + max_new_tokens must be <= {n_pos} positions"
            )
        self._stop_window = max((len(s) for s in self.stop_strings), default=0)
        self.forward_batch_size = forward_batch_size if forward_batch_size is not None else \
            max(1, min(256, LOGITS_BUDGET // ((self.max_new_tokens + 1) * self.num_actions)))

    default_reveal = frozenset()

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path,
        prompts: list[str],
        *,
        dtype=None,
        attn_implementation=None,
        device_map=None,
        device=None,
        **kwargs,
    ) -> CausalLM:
        """Load model and tokenizer from a local transformers directory or a ``.gguf`` file (never downloads).

        ``dtype`` (default: bfloat16 on CUDA, the checkpoint's own dtype on the CPU), ``attn_implementation``
        (e.g. ``"sdpa"``, ``"eager"``) and ``device_map`` (e.g. ``"auto"``, needs ``accelerate``) are passed
        to ``AutoModelForCausalLM.from_pretrained``; the other keywords go to :class:`CausalLM`. A GGUF file
        is de-quantised by transformers (:func:`~oraclerl.models.hf.gguf.load_gguf`, about a minute for
        Gemma-3-270M); converting it once with :func:`~oraclerl.models.hf.gguf.convert_gguf` loads faster.
        A missing or unreadable model is a :class:`ConfigError` naming the file.
        """
        from .loading import load_pretrained

        dev = resolve_device(device) if device_map is None else None
        if dtype is None and dev is not None and dev.type == "cuda":
            dtype = auto_dtype(dev)
        model, tok = load_pretrained(path, dtype=dtype, attn_implementation=attn_implementation,
                                     device_map=device_map)
        return cls(model, tok, prompts, device=dev, dtype=dtype, **kwargs)

    def with_model(self, model) -> CausalLM:
        """A shallow copy that uses another network (e.g. a policy being fine-tuned) with the same
        settings."""
        out = copy.copy(self)
        out.model = model.to(device=self.device, dtype=self.dtype)
        out._sampled = None
        return out

    def trainable_copy(self) -> CausalLM:
        """A copy with its own parameters (gradients on) for full fine-tuning. It stays in eval mode: dropout
        is off, so the law it samples is the law whose log-probabilities are differentiated (as TRL does)."""
        out = self.with_model(copy.deepcopy(self.model))
        for p in out.model.parameters():
            p.requires_grad_(True)
        return out

    @property
    def num_prompts(self) -> int:
        return len(self.prompts)

    @property
    def horizon(self) -> int:
        return self.max_new_tokens

    # -- helpers -------------------------------------------------------------------------------------
    def _prompt_batch(self, prompts: torch.Tensor):
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        ids, mask = self._prompt_ids[prompts], self._prompt_mask[prompts]
        start = int((mask.sum(0) == 0).sum())  # leading all-pad columns
        return ids[:, start:], mask[:, start:]

    def _processed(self, logits):
        return process_logits(logits, self.temperature, self.top_k, self.top_p)

    def _stops(self, tokens: torch.Tensor) -> torch.Tensor:
        """Whether the last token of each row [N, t] completes a stop string (batched decode of the tail)."""
        if not self.stop_strings or tokens.shape[0] == 0:
            return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
        texts = self.tokenizer.batch_decode(tokens[:, -self._stop_window:].tolist(), skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop_strings) for t in texts], device=tokens.device)

    def response_lengths(self, responses: torch.Tensor):
        """(lengths, ended) for tokens [..., L]: the number of tokens in each response and whether it ended
        by a terminal token or stop string (False = still running / truncated)."""
        flat = responses.reshape(-1, responses.shape[-1]).to(self.device)
        L = flat.shape[1]
        end = torch.isin(flat, self.terminal_ids)
        if self.stop_strings:
            for t in range(L):  # one batched decode per position
                end[:, t] |= self._stops(flat[:, : t + 1])
        ended = end.any(-1)
        lengths = torch.where(
            ended, end.to(torch.int8).argmax(-1) + 1, torch.full_like(ended, L, dtype=torch.long)
        )
        return lengths.reshape(responses.shape[:-1]), ended.reshape(responses.shape[:-1])

    def response_mask(self, responses: torch.Tensor) -> torch.Tensor:
        """Boolean [..., L]: True on the tokens that belong to the response."""
        lengths, _ = self.response_lengths(responses)
        ar = torch.arange(responses.shape[-1], device=self.device)
        return ar < lengths[..., None]

    def _canonical(self, responses: torch.Tensor) -> torch.Tensor:
        """Pad every position after the end (so equal responses are equal tensors)."""
        return responses.masked_fill(~self.response_mask(responses), self.pad_token_id)

    def decode(self, responses: torch.Tensor) -> list[list[str]]:
        """Completion strings [B][n] (special tokens skipped; a completed stop string is kept)."""
        B, n, L = responses.shape
        mask = self.response_mask(responses).reshape(B * n, L).cpu()
        rows = responses.reshape(B * n, L).cpu()
        texts = self.tokenizer.batch_decode(
            [r[m].tolist() for r, m in zip(rows, mask)], skip_special_tokens=True
        )
        return [texts[b * n:(b + 1) * n] for b in range(B)]

    # -- sampling ------------------------------------------------------------------------------------
    def _new_cache(self):
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:  # older signature without config
            return DynamicCache()

    def _run(self, cache=None, **kw):
        """One forward call with the cache under the keyword this transformers version uses."""
        if cache is not None:
            kw[self._cache_kw] = cache
        return self.model(**kw)

    @torch.no_grad()
    def generate(self, prompts, n: int = 1, generator: torch.Generator | None = None, logits_bias=None):
        """Batched KV-cache sampling from π_ref: returns (tokens [B, n, L], processed token log-probs [B, n,
        L], raw token log-probs [B, n, L]); log-probs are 0 after the end of each response.

        Finished rows are dropped from the batch and the cache as they end, so a batch costs as many forward
        steps as its longest response. Only the last position's logits are computed at each step
        (``logits_to_keep=1``). ``logits_bias`` is for internal use (none by default).
        """
        n = check_int("n", n, low=1)
        ids, mask = self._prompt_batch(prompts)
        B, L = ids.shape[0], self.max_new_tokens
        N = B * n
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        keep = {"logits_to_keep": 1} if self._keeps_logits else {}
        cache = self._new_cache()
        logits = self._run(cache, input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                           **keep).logits[:, -1]
        next_pos = mask.sum(-1)
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits, mask, next_pos = (t.repeat_interleave(n, 0) for t in (logits, mask, next_pos))
        tokens = torch.full((N, L), self.pad_token_id, dtype=torch.long, device=self.device)
        lp_proc = torch.zeros((N, L), dtype=torch.float32, device=self.device)
        lp_raw = torch.zeros((N, L), dtype=torch.float32, device=self.device)
        active = torch.arange(N, device=self.device)
        for t in range(L):
            u = _uniform(N, generator)[active.to(generator.device if generator is not None else "cpu")]
            proc = self._processed(logits)
            tok = inverse_cdf(proc, u)
            tokens[active, t] = tok
            lp_proc[active, t] = proc.gather(-1, tok[:, None])[:, 0]
            del proc
            lp_raw[active, t] = torch.log_softmax(logits.float(), -1).gather(-1, tok[:, None])[:, 0]
            if t == L - 1:
                break
            done = torch.isin(tok, self.terminal_ids) | self._stops(tokens[active, : t + 1])
            if done.any():
                rows = (~done).nonzero()[:, 0]
                if rows.numel() == 0:
                    break
                cache.batch_select_indices(rows)
                active, tok, mask, next_pos = active[rows], tok[rows], mask[rows], next_pos[rows]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
            logits = self._run(
                cache,
                input_ids=tok[:, None],
                attention_mask=mask,
                position_ids=next_pos[:, None],
                use_cache=True,
                **keep,
            ).logits[:, -1]
            next_pos = next_pos + 1
        shape = (B, n, L)
        return tokens.reshape(shape), lp_proc.reshape(shape), lp_raw.reshape(shape)

    def sample(self, prompts, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """y ~ π_ref(·|x): padded tokens [B, n, L]. Their processed log-probabilities are kept for
        :meth:`ref_log_prob` of this same tensor (see "What is computed" in the module docstring)."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        y, lp, _ = self.generate(prompts, n, generator)
        self._sampled = (y, prompts.clone(), lp, _param_version(self.model))
        return y

    def _sampled_log_prob(self, prompts, responses):
        """Sequence log-probs [B, n] recorded when ``responses`` was sampled, or None (other tensor, other
        prompts, or the weights changed since)."""
        rec = self._sampled
        if rec is None or rec[0] is not responses:
            return None
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        if (
            prompts.shape != rec[1].shape
            or not torch.equal(prompts, rec[1])
            or rec[3] != _param_version(self.model)
        ):
            return None
        return rec[2].to(_OUT_DTYPE).sum(-1)

    # -- teacher-forced scoring ----------------------------------------------------------------------
    def _tf_inputs(self, prompts, responses):
        """(ids, mask, position ids, prompt width P) of prompt + response rows [B·n, P+L]."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        B, n, L = responses.shape
        ids, mask = self._prompt_batch(prompts)
        P = ids.shape[1]
        ids = torch.cat([ids.repeat_interleave(n, 0), responses.reshape(B * n, L).to(self.device)], 1)
        mask = torch.cat([mask.repeat_interleave(n, 0), mask.new_ones(B * n, L)], 1)
        return ids, mask, (mask.cumsum(-1) - 1).clamp_min(0), P

    def _teacher_forced(self, prompts, responses, grad=False):
        """Teacher-forced passes, ``forward_batch_size`` rows at a time: yields (rows slice, logits [r, L, V]
        predicting each response token). Logits exist only at those L positions (``logits_to_keep``)."""
        L = responses.shape[-1]
        ids, mask, pos, _ = self._tf_inputs(prompts, responses)
        keep = {"logits_to_keep": L + 1} if self._keeps_logits else {}
        with torch.set_grad_enabled(grad):
            for s in range(0, ids.shape[0], self.forward_batch_size):
                sl = slice(s, s + self.forward_batch_size)
                logits = self.model(input_ids=ids[sl], attention_mask=mask[sl], position_ids=pos[sl],
                                    use_cache=False, **keep).logits
                yield sl, logits[:, -(L + 1):-1]  # positions P-1 … P+L-2 predict response tokens 1 … L

    def _gather(self, logits, tokens, processed):
        """log-probs [r, L] of ``tokens`` [r, L] under ``logits`` [r, L, V], at most LOGPROB_CHUNK floats
        at once."""
        r, L, V = logits.shape
        flat, tok = logits.reshape(r * L, V), tokens.reshape(r * L, 1)
        step = max(1, LOGPROB_CHUNK // V)
        parts = []
        for s in range(0, r * L, step):
            chunk = flat[s:s + step]
            lp = self._processed(chunk) if processed else torch.log_softmax(chunk.float(), -1)
            parts.append(lp.gather(-1, tok[s:s + step])[:, 0])
        return torch.cat(parts).reshape(r, L)

    def token_log_probs(
        self, prompts, responses: torch.Tensor, processed: bool = True, grad: bool = False
    ) -> torch.Tensor:
        """Per-token log-probabilities [B, n, L] by a teacher-forced pass; 0 after the end of each response.

        ``processed=True``: under the sampling law π_ref (temperature/top-k/top-p); ``False``: under the raw
        model at temperature 1. ``grad=True`` keeps the graph (float32) for policy-gradient training.
        """
        B, n, L = responses.shape
        tok = responses.reshape(B * n, L).to(self.device)
        parts = [self._gather(logits, tok[sl], processed)
                 for sl, logits in self._teacher_forced(prompts, responses, grad=grad)]
        out = torch.cat(parts).reshape(B, n, L)
        mask = self.response_mask(responses)
        return torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device))

    def log_prob(self, prompts, responses: torch.Tensor, processed: bool = True) -> torch.Tensor:
        """Sequence log-probability [B, n] (float64): under π_ref (``processed=True``) or the raw model."""
        return self.token_log_probs(prompts, responses, processed).to(_OUT_DTYPE).sum(-1)

    def ref_log_prob(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """log π_ref(y|x) [B, n]: the exact log-probability of the law :meth:`sample` draws from. For the
        tensor :meth:`sample` just returned (same prompts, unchanged weights) these are the log-probs drawn
        during sampling (KV-cache pass; equal to the teacher-forced ones up to float rounding)."""
        cached = self._sampled_log_prob(prompts, responses)
        return cached if cached is not None else self.log_prob(prompts, responses, processed=True)

    @torch.no_grad()
    def hidden_states(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """Last-layer (post-norm) hidden states [B·n, L, d] at the response tokens, from the decoder alone (no
        LM head, no logits), ``forward_batch_size`` rows at a time (at least 16: they hold no logits)."""
        L = responses.shape[-1]
        ids, mask, pos, P = self._tf_inputs(prompts, responses)
        decoder, rows = self.model.get_decoder(), max(16, self.forward_batch_size)
        parts = []
        for s in range(0, ids.shape[0], rows):
            sl = slice(s, s + rows)
            out = decoder(input_ids=ids[sl], attention_mask=mask[sl], position_ids=pos[sl], use_cache=False)
            parts.append(out.last_hidden_state[:, P:P + L])
        return torch.cat(parts)

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        h = h.to(_OUT_DTYPE)
        return h / h.norm(dim=-1, keepdim=True).clamp_min(1.0)

    @torch.no_grad()
    def features(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """ϕ(x, y) [B, n, d] (float64, ‖ϕ‖ ≤ 1): pooled last-layer hidden states of the frozen network."""
        B, n, L = responses.shape
        hidden = self.hidden_states(prompts, responses)
        lengths, _ = self.response_lengths(responses)
        lengths = lengths.reshape(B * n)
        hidden = hidden.to(_OUT_DTYPE)
        if self.pool == "mean":
            mask = (torch.arange(L, device=self.device) < lengths[:, None]).to(hidden.dtype)
            pooled = (hidden * mask[..., None]).sum(1) / lengths[:, None].to(hidden.dtype)
        else:
            pooled = hidden[torch.arange(B * n, device=self.device), lengths - 1]
        return self._project(pooled).reshape(B, n, -1)
