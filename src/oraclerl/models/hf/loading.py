"""Loading a local model (transformers directory or ``.gguf`` file) with one clear error line per bad file.

Nothing is downloaded (``local_files_only=True``) and no code from the model directory runs
(``trust_remote_code`` stays off). Every failure is a :class:`~oraclerl.errors.ConfigError` naming the file
and the problem: a missing directory, a ``config.json`` that is not valid JSON/UTF-8, missing weights,
truncated or wrong-shape weights (transformers reports size mismatches; we turn them into errors instead
of silently re-initialising), an unreadable tokenizer.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from ...errors import ConfigError

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def check_model_dir(path) -> Path:
    """The directory, if it looks loadable: config.json is valid UTF-8 JSON and weights exist."""
    p = Path(path)
    if not p.exists():
        raise ConfigError("--model", f"{str(p)!r} does not exist (nothing is downloaded: pass a local path)")
    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return p
        raise ConfigError("--model", f"{str(p)!r} is a file: pass a transformers directory or a .gguf file")
    cfg = p / "config.json"
    if not cfg.is_file():
        raise ConfigError("--model", f"{str(p)!r} has no config.json: not a saved transformers model")
    try:
        obj = json.loads(cfg.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("--model", f"{cfg} is not UTF-8 text (corrupt config.json)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError("--model", f"{cfg} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except OSError as exc:
        raise ConfigError("--model", f"{cfg} cannot be read ({exc.strerror})") from None
    if not isinstance(obj, dict) or "model_type" not in obj:
        raise ConfigError("--model", f"{cfg} has no 'model_type' field (corrupt config.json)")
    if not any((p / w).is_file() for w in _WEIGHT_FILES):
        raise ConfigError(
            "--model", f"{str(p)!r} has no weights (expected one of {', '.join(_WEIGHT_FILES)})"
        )
    return p


@contextmanager
def _quiet_progress():
    """transformers' per-tensor progress bars off (they would break the one-line error contract on stderr)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_pretrained(path, *, dtype=None, attn_implementation=None, device_map=None):
    """(model, tokenizer) from a local directory or ``.gguf`` file; see the module docstring for errors.

    ``dtype=None`` loads the checkpoint's own dtype (``"auto"``): nothing is cast to float32 unasked.
    """
    with _quiet_progress():
        return _load(path, dtype=dtype, attn_implementation=attn_implementation, device_map=device_map)


def _load(path, *, dtype, attn_implementation, device_map):
    p = check_model_dir(path)
    if p.is_file():
        from .gguf import load_gguf

        return load_gguf(p, dtype=dtype, device_map=device_map, attn_implementation=attn_implementation)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any tokenizer failure is one line naming the directory
        raise ConfigError("--model", f"cannot load the tokenizer of {str(p)!r}: {_first_line(exc)}") from None
    kw = {"local_files_only": True, "dtype": dtype if dtype is not None else "auto"}
    if attn_implementation is not None:
        kw["attn_implementation"] = attn_implementation
    if device_map is not None:
        kw["device_map"] = device_map
    try:
        model, info = AutoModelForCausalLM.from_pretrained(p, output_loading_info=True, **kw)
    except Exception as exc:  # noqa: BLE001 - corrupt / truncated weights, bad config values, ...
        if "mismatched" in str(exc):
            raise ConfigError("--model", f"weights in {str(p)!r} have the wrong shape for its config.json "
                              "(a tensor's size differs from what the config declares)") from None
        raise ConfigError("--model", f"cannot load the weights of {str(p)!r}: {_first_line(exc)}") from None
    bad = list(info.get("mismatched_keys") or [])
    missing = [k for k in info.get("missing_keys") or [] if k not in _tied_keys(model)]
    if bad:
        raise ConfigError("--model", f"weights in {str(p)!r} have the wrong shape for its config.json "
                          f"(e.g. {_describe(bad[0])}; {len(bad)} tensors)")
    if missing:
        raise ConfigError("--model", f"weights in {str(p)!r} lack {len(missing)} tensors of the architecture "
                          f"(e.g. {missing[0]}): truncated or for another model")
    return model.eval(), tok


def _tied_keys(model) -> set[str]:
    return set(getattr(model, "_tied_weights_keys", None) or ())


def _describe(entry) -> str:
    if isinstance(entry, (tuple, list)) and len(entry) == 3:
        key, have, want = entry
        return f"{key}: checkpoint {tuple(have)}, model {tuple(want)}"
    return str(entry)
