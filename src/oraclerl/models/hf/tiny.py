"""Tiny in-process language models: a character-level tokenizer and a small GPT-2, built without any download.

They are what the tests, the ``transformer-barrier`` experiment and the benchmarks use, and a template for
plugging in any other ``transformers`` causal LM (see :class:`~oraclerl.models.hf.causal_lm.CausalLM`).
"""

from __future__ import annotations

from ...common.validation import check_int
from ...errors import ConfigError

SPECIAL_TOKENS = ("<pad>", "<eos>", "<unk>")


def char_tokenizer(alphabet: str, pad: bool = True):
    """A character-level ``PreTrainedTokenizerFast`` over ``alphabet`` plus ``<pad>``, ``<eos>``, ``<unk>``.

    Token ids: 0 = ``<pad>``, 1 = ``<eos>``, 2 = ``<unk>``, then the characters in the order given.
    ``pad=False`` builds a tokenizer without a pad token (to exercise the missing-pad error path).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if not alphabet or len(set(alphabet)) != len(alphabet):
        raise ConfigError("alphabet", f"must be a non-empty string of distinct characters, got {alphabet!r}")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in alphabet:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()
    kwargs = {"eos_token": "<eos>", "unk_token": "<unk>"}
    if pad:
        kwargs["pad_token"] = "<pad>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    if not pad:
        fast.pad_token = None
    return fast


def tiny_gpt2(vocab_size: int, n_layer: int = 2, n_embd: int = 32, n_head: int = 2, n_positions: int = 64,
              seed: int = 0, pad_token_id: int = 0, eos_token_id: int = 1):
    """A randomly initialised ``GPT2LMHeadModel`` (deterministic given ``seed``), in eval mode."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    check_int("vocab_size", vocab_size, low=2)
    check_int("n_layer", n_layer, low=1)
    check_int("n_head", n_head, low=1)
    if n_embd % n_head:
        raise ConfigError("n_embd", f"must be a multiple of n_head={n_head}, got {n_embd}")
    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_positions=n_positions,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)  # transformers initialises weights from the global RNG; restore it afterwards
        model = GPT2LMHeadModel(cfg)
    finally:
        torch.random.set_rng_state(state)
    return model.eval()


def tiny_causal_lm(alphabet: str, prompts: list[str], seed: int = 0, n_layer: int = 2, n_embd: int = 32,
                   n_head: int = 2, **kwargs):
    """A :class:`~oraclerl.models.hf.causal_lm.CausalLM` over a fresh tiny GPT-2 and a character tokenizer."""
    from .causal_lm import CausalLM

    tok = char_tokenizer(alphabet)
    n_pos = max(len(p) for p in prompts) + kwargs.get("max_new_tokens", 16) + 1
    model = tiny_gpt2(
        len(tok), n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=max(n_pos, 8), seed=seed
    )
    return CausalLM(model, tok, prompts, **kwargs)
