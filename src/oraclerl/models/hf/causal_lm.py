"""A ``transformers`` causal LM as a base model behind the oracles (Foster et al. 2025, Def. 1.1 and 2.1, §5).

:class:`CausalLM` implements the model protocols of :mod:`oraclerl.oracles.samplers`, so ``WeakSampler``,
``StrongSampler`` and ``AutoregressiveSampler`` (and every algorithm written against them) run on it unchanged.

Conventions
-----------
* **Prompts** are integer ids into the model's prompt list ``prompts: list[str]`` (tokenised once, left-padded).
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
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ...errors import ConfigError
from ...validation import check_choice, check_int, check_positive, check_range
from .protocols import _OUT_DTYPE, LinearSoftmaxProtocolMixin
from .sampling import _uniform, auto_device, auto_dtype, inverse_cdf, process_logits

__all__ = ["CausalLM", "auto_device", "auto_dtype", "inverse_cdf", "process_logits"]


class CausalLM(LinearSoftmaxProtocolMixin):
    """A ``transformers`` causal LM + tokenizer as a base model π_ref with features (see the module docstring).

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
        Default: CUDA with bfloat16 when available, else CPU with float32 (the passed model is moved in
        place, as ``nn.Module.to`` does; pass ``dtype=torch.float32`` to fine-tune on a GPU).
    forward_batch_size:
        Rows per teacher-forced forward pass (memory knob; results do not depend on it).
    max_enumerate, max_rejection_rounds:
        Limits for the exact log Z_θ (enumeration) and the rejection sampler of π_θ.
    """

    def __init__(self, model, tokenizer, prompts: list[str], *, beta: float = 1.0, max_new_tokens: int = 16,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, stop_strings=(),
                 pool: str = "mean", pad_token: str | None = None, device=None, dtype=None,
                 forward_batch_size: int = 256, max_enumerate: int = 4096, max_rejection_rounds: int = 10_000):
        self.beta = check_positive("beta", beta)
        self.max_new_tokens = check_int("max_new_tokens", max_new_tokens, low=1)
        self.temperature = check_positive("temperature", temperature)
        self.top_k = check_int("top_k", top_k, low=0)
        self.top_p = check_range("top_p", top_p, 0.0, 1.0, low_open=True)
        self.pool = check_choice("pool", pool, ("mean", "last"))
        self.forward_batch_size = check_int("forward_batch_size", forward_batch_size, low=1)
        self.max_enumerate = check_int("max_enumerate", max_enumerate, low=1)
        self.max_rejection_rounds = check_int("max_rejection_rounds", max_rejection_rounds, low=1)
        if isinstance(stop_strings, str):
            stop_strings = (stop_strings,)
        self.stop_strings = tuple(stop_strings)
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise ConfigError("stop_strings", f"must be non-empty strings, got {self.stop_strings!r}")
        if tokenizer.eos_token_id is None:
            raise ConfigError("tokenizer", "has no EOS token (eos_token_id is None); responses need a terminal token")
        if tokenizer.pad_token_id is None:
            if pad_token != "eos":
                raise ConfigError("tokenizer", "has no pad token; set tokenizer.pad_token, or pass pad_token='eos' "
                                  "to pad responses with EOS (unambiguous: a response ends at its first EOS)")
            pad_id = tokenizer.eos_token_id
        elif pad_token not in (None, "eos"):
            raise ConfigError("pad_token", f"must be None or 'eos', got {pad_token!r}")
        else:
            pad_id = tokenizer.eos_token_id if pad_token == "eos" else tokenizer.pad_token_id
        if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise ConfigError("prompts", "must be a non-empty list of strings")
        self.pad_token_id = int(pad_id)
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.terminal_ids = torch.tensor(sorted({self.pad_token_id, self.eos_token_id}))
        self.tokenizer = tokenizer
        self.device = auto_device(device)
        self.dtype = auto_dtype(self.device, dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.prompts = list(prompts)
        enc = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in self.prompts]
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
        n_pos = getattr(self.model.config, "n_positions", None) or getattr(self.model.config, "max_position_embeddings", None)
        if n_pos is not None and width + self.max_new_tokens > n_pos:
            raise ConfigError("max_new_tokens", f"prompt length {width} + max_new_tokens must be <= {n_pos} positions")
        self._stop_window = max((len(s) for s in self.stop_strings), default=0)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, prompts: list[str], **kwargs) -> CausalLM:
        """Load model and tokenizer from a local directory (never downloads); a missing path is a ConfigError."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = Path(path)
        if not p.is_dir():
            raise ConfigError("model", f"directory {str(p)!r} does not exist (nothing is downloaded: pass a local path)")
        if not (p / "config.json").is_file():
            raise ConfigError("model", f"{str(p)!r} has no config.json: not a saved transformers model")
        tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(p, local_files_only=True)
        return cls(model, tok, prompts, **kwargs)

    def with_model(self, model) -> CausalLM:
        """A shallow copy that uses another network (e.g. a policy being fine-tuned) with the same settings."""
        out = copy.copy(self)
        out.model = model.to(device=self.device, dtype=self.dtype)
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
        """(lengths, ended) for tokens [..., L]: the number of tokens in each response and whether it ended by a
        terminal token or stop string (False = still running / truncated)."""
        flat = responses.reshape(-1, responses.shape[-1]).to(self.device)
        L = flat.shape[1]
        end = torch.isin(flat, self.terminal_ids)
        if self.stop_strings:
            for t in range(L):  # one batched decode per position
                end[:, t] |= self._stops(flat[:, : t + 1])
        ended = end.any(-1)
        lengths = torch.where(ended, end.to(torch.int8).argmax(-1) + 1, torch.full_like(ended, L, dtype=torch.long))
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
        texts = self.tokenizer.batch_decode([r[m].tolist() for r, m in zip(rows, mask)], skip_special_tokens=True)
        return [texts[b * n:(b + 1) * n] for b in range(B)]

    # -- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts, n: int = 1, generator: torch.Generator | None = None, logits_bias=None):
        """Batched KV-cache sampling from π_ref: returns (tokens [B, n, L], processed token log-probs [B, n, L],
        raw token log-probs [B, n, L]); log-probs are 0 after the end of each response.

        Finished rows are dropped from the batch and the cache as they end, so a batch costs as many forward
        steps as its longest response. ``logits_bias`` is for internal use (none by default).
        """
        n = check_int("n", n, low=1)
        ids, mask = self._prompt_batch(prompts)
        B, L = ids.shape[0], self.max_new_tokens
        N = B * n
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
        next_pos = mask.sum(-1)
        if n > 1:
            past.batch_repeat_interleave(n)
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
            lp_raw[active, t] = torch.log_softmax(logits.float(), -1).gather(-1, tok[:, None])[:, 0]
            if t == L - 1:
                break
            done = torch.isin(tok, self.terminal_ids) | self._stops(tokens[active, : t + 1])
            if done.any():
                keep = (~done).nonzero()[:, 0]
                if keep.numel() == 0:
                    break
                past.batch_select_indices(keep)
                active, tok, mask, next_pos = active[keep], tok[keep], mask[keep], next_pos[keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
            out = self.model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                             past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
            next_pos = next_pos + 1
        shape = (B, n, L)
        return tokens.reshape(shape), lp_proc.reshape(shape), lp_raw.reshape(shape)

    def sample(self, prompts, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """y ~ π_ref(·|x): padded tokens [B, n, L]."""
        return self.generate(prompts, n, generator)[0]

    # -- teacher-forced scoring ----------------------------------------------------------------------
    def _forward_responses(self, prompts, responses, want_logits=True, want_hidden=False, grad=False):
        """Teacher-forced pass over prompt + response: logits predicting each response token [N, L, V] and
        last-layer hidden states at each response token [N, L, d] (chunks of ``forward_batch_size`` rows)."""
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.device)
        B, n, L = responses.shape
        ids, mask = self._prompt_batch(prompts)
        P = ids.shape[1]
        ids = torch.cat([ids.repeat_interleave(n, 0), responses.reshape(B * n, L).to(self.device)], 1)
        mask = torch.cat([mask.repeat_interleave(n, 0), mask.new_ones(B * n, L)], 1)
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        logits, hidden = [], []
        with torch.set_grad_enabled(grad):
            for s in range(0, B * n, self.forward_batch_size):
                sl = slice(s, s + self.forward_batch_size)
                out = self.model(input_ids=ids[sl], attention_mask=mask[sl], position_ids=pos[sl],
                                 output_hidden_states=want_hidden, use_cache=False)
                if want_logits:
                    logits.append(out.logits[:, P - 1: P + L - 1])
                if want_hidden:
                    hidden.append(out.hidden_states[-1][:, P:P + L])
        return (torch.cat(logits) if want_logits else None), (torch.cat(hidden) if want_hidden else None)

    def token_log_probs(self, prompts, responses: torch.Tensor, processed: bool = True, grad: bool = False) -> torch.Tensor:
        """Per-token log-probabilities [B, n, L] by a teacher-forced pass; 0 after the end of each response.

        ``processed=True``: under the sampling law π_ref (temperature/top-k/top-p); ``False``: under the raw
        model at temperature 1. ``grad=True`` keeps the graph (float32) for policy-gradient training.
        """
        B, n, L = responses.shape
        logits, _ = self._forward_responses(prompts, responses, grad=grad)
        lp = self._processed(logits.reshape(B * n * L, -1)) if processed else torch.log_softmax(logits.float(), -1)
        tok = responses.reshape(B * n * L, 1).to(self.device)
        out = lp.reshape(B * n * L, -1).gather(-1, tok).reshape(B, n, L)
        mask = self.response_mask(responses)
        return torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device))

    def log_prob(self, prompts, responses: torch.Tensor, processed: bool = True) -> torch.Tensor:
        """Sequence log-probability [B, n] (float64): under π_ref (``processed=True``) or the raw model."""
        return self.token_log_probs(prompts, responses, processed).to(_OUT_DTYPE).sum(-1)

    def ref_log_prob(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """log π_ref(y|x) [B, n]: the exact log-probability of the law :meth:`sample` draws from."""
        return self.log_prob(prompts, responses, processed=True)

    def _project(self, h: torch.Tensor) -> torch.Tensor:
        h = h.to(_OUT_DTYPE)
        return h / h.norm(dim=-1, keepdim=True).clamp_min(1.0)

    @torch.no_grad()
    def features(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """ϕ(x, y) [B, n, d] (float64, ‖ϕ‖ ≤ 1): pooled last-layer hidden states of the frozen network."""
        B, n, L = responses.shape
        _, hidden = self._forward_responses(prompts, responses, want_logits=False, want_hidden=True)
        lengths, _ = self.response_lengths(responses)
        lengths = lengths.reshape(B * n)
        hidden = hidden.to(_OUT_DTYPE)
        if self.pool == "mean":
            mask = (torch.arange(L, device=self.device) < lengths[:, None]).to(hidden.dtype)
            pooled = (hidden * mask[..., None]).sum(1) / lengths[:, None].to(hidden.dtype)
        else:
            pooled = hidden[torch.arange(B * n, device=self.device), lengths - 1]
        return self._project(pooled).reshape(B, n, -1)
