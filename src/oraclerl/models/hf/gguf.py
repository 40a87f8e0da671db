"""GGUF files as transformers models: load one directly, or convert it once into a plain transformers
directory.

``transformers`` (≥ 5) reads a GGUF file with the ``gguf`` package and de-quantises every tensor to float
(``from_pretrained(dir, gguf_file=name)``; it also needs ``accelerate``). Such a model keeps a GGUF
``quantization_config`` and ``save_pretrained`` refuses it, so :func:`convert_gguf` rebuilds a plain model
from the configuration (without the quantisation entry) on the meta device, assigns the de-quantised state
dict, checks that both networks give the same logits on a short input, and saves model, generation config
and tokenizer as a normal directory (safetensors). Loading that directory takes seconds; loading the GGUF
file takes about a minute for Gemma-3-270M (tokenizer conversion + de-quantisation), so convert once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ...errors import ConfigError

#: Written last into a converted directory: its presence (with the source hash) makes conversion idempotent.
STAMP = "oraclerl-gguf.json"


def is_converted(out_dir, source: str | None = None, sha256: str | None = None) -> bool:
    """Whether ``out_dir`` is a finished conversion (stamp present) of the given source name / sha256."""
    out = Path(out_dir)
    try:
        stamp = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (isinstance(stamp, dict) and (out / "config.json").is_file()
            and (source is None or stamp.get("source") == source)
            and (sha256 is None or stamp.get("sha256") == sha256))


def _check_gguf_path(path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("model", f"GGUF file {str(p)!r} does not exist")
    with p.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ConfigError("model", f"{str(p)!r} is not a GGUF file (its first bytes are not 'GGUF')")
    return p


def _need_gguf_packages() -> None:
    import importlib.util

    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError("model", f"loading a GGUF file needs the packages {missing} "
                          "(pip install 'oraclerl[hf]' installs them)")


def load_gguf(path, *, dtype=None, device_map=None, attn_implementation=None):
    """(model, tokenizer) from a ``.gguf`` file, de-quantised to ``dtype`` (default float32) by
    transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = _check_gguf_path(path)
    _need_gguf_packages()
    kw = {"gguf_file": p.name}
    try:
        tok = AutoTokenizer.from_pretrained(p.parent, **kw)
        model = AutoModelForCausalLM.from_pretrained(
            p.parent, dtype=dtype or torch.float32, device_map=device_map,
            attn_implementation=attn_implementation, **kw)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise ConfigError("model", f"transformers could not load the GGUF file {str(p)!r}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return model.eval(), tok


def plain_copy(model):
    """A plain (non-quantised) model of the same architecture holding the same tensors (no weight copy)."""
    import torch
    from transformers import AutoModelForCausalLM

    cfg_dict = model.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    cfg = type(model.config).from_dict(cfg_dict)
    # Built on the source model's device, not on "meta": non-persistent buffers (Gemma-3's embed_scale, rotary
    # inverse frequencies) are not in the state dict and must be real tensors of the new model.
    with torch.device(model.device):
        plain = AutoModelForCausalLM.from_config(cfg, dtype=model.dtype)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False, assign=True)
    tied = set(getattr(plain, "_tied_weights_keys", None) or ())  # a list or a {tied: source} dict
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ConfigError("model", f"GGUF state dict does not match the architecture: missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}")
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain.eval()


def _same_logits(a, b, tok) -> bool:
    import torch

    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    with torch.no_grad():
        return bool(torch.equal(a(input_ids=ids).logits, b(input_ids=ids).logits))


def convert_gguf(gguf_path, out_dir, *, sha256: str | None = None) -> Path:
    """Convert a GGUF file into a transformers directory ``out_dir`` (float32 safetensors + tokenizer).

    Idempotent: a directory whose stamp records the same source file (name and ``sha256`` when given) is
    left as it is. The directory is written under a temporary name next to ``out_dir`` and renamed when
    complete, so an interrupted conversion never leaves a half-written model behind.
    """
    src = _check_gguf_path(gguf_path)
    out = Path(out_dir)
    stamp = {"source": src.name, "sha256": sha256}
    if is_converted(out, src.name, sha256):
        return out
    model, tok = load_gguf(src)
    try:
        plain = plain_copy(model)
        same = _same_logits(model, plain, tok)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError("model", f"could not convert {str(src)!r}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not same:
        raise ConfigError(
            "model", "the converted model's logits differ from the GGUF model's (conversion bug)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
