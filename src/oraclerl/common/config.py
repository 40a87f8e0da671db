"""Typed configs (experiments and algorithms alike): dataclasses whose fields carry a one-line doc and an
allowed range.

``param(default, doc, low=..., high=..., choices=...)`` declares a field; :func:`validate` checks every
field against its declaration and :func:`apply_overrides` parses ``--set key=value`` strings by the
field's type. All errors are :class:`~oraclerl.errors.ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import field
from typing import Any

from ..errors import ConfigError
from .validation import in_interval, interval


def param(default: Any, doc: str, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, high_open: bool = False, choices: tuple | None = None):
    """A config field with a docstring and an allowed range (applied element-wise to lists)."""
    meta = {
        "doc": doc,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
    }
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def _allowed(meta: dict) -> str:
    if meta.get("choices"):
        return f"one of {list(meta['choices'])}"
    return "in " + interval(meta.get("low"), meta.get("high"), low_open=bool(meta.get("low_open")),
                            high_open=bool(meta.get("high_open")))


def _check_value(name: str, v: Any, meta: dict) -> None:
    if meta.get("choices") is not None:
        if v not in meta["choices"]:
            raise ConfigError(name, f"must be {_allowed(meta)}, got {v!r}")
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(name, f"must be a finite number {_allowed(meta)}, got {v!r}")
    if not in_interval(v, meta.get("low"), meta.get("high"), low_open=bool(meta.get("low_open")),
                       high_open=bool(meta.get("high_open"))):
        raise ConfigError(name, f"must be {_allowed(meta)}, got {v!r}")


def validate(cfg: Any) -> Any:
    """Check every field of a config dataclass against its ``param`` declaration; returns ``cfg``."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        tp = hints.get(f.name)
        _check_type(f.name, v, tp)
        values = v if isinstance(v, (list, tuple)) else [v]
        if isinstance(v, (list, tuple)) and len(v) == 0 and f.metadata.get("low") is not None:
            raise ConfigError(f.name, "must be a non-empty list")
        for x in values:
            _check_value(f.name, x, f.metadata)
    if hasattr(cfg, "check"):
        cfg.check()
    return cfg


def _check_type(name: str, v: Any, tp: Any) -> None:
    origin = typing.get_origin(tp)
    if tp is bool and not isinstance(v, bool):
        raise ConfigError(name, f"must be true or false, got {v!r}")
    if tp is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise ConfigError(name, f"must be an integer, got {v!r}")
    if tp is float and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise ConfigError(name, f"must be a number, got {v!r}")
    if origin in (list, tuple) and not isinstance(v, (list, tuple)):
        raise ConfigError(name, f"must be a list, got {v!r}")


def _parse_scalar(name: str, text: str, tp: Any) -> Any:
    text = text.strip()
    try:
        if tp is bool:
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            f = float(text)
            if not f.is_integer():
                raise ValueError
            return int(f)
        if tp is float:
            return float(text)
        if tp is str:
            return text
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(tp, str(tp))
        raise ConfigError(name, f"must be {kind}, got {text!r}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise ConfigError(name, f"must be a JSON value of type {tp}, got {text!r}") from None


def parse_value(name: str, text: str, tp: Any) -> Any:
    """Parse ``text`` as a value of type ``tp`` (scalars, Optional, list[...] as "1,2,3" or JSON)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        inner = [a for a in args if a is not type(None)]
        if text.strip().lower() in ("none", "null"):
            return None
        return parse_value(name, text, inner[0])
    if origin in (list, tuple):
        elem = args[0] if args else str
        t = text.strip()
        if t.startswith("["):
            try:
                items = json.loads(t)
            except json.JSONDecodeError:
                raise ConfigError(name, f"must be a list like 1,2,3 or [1, 2, 3], got {text!r}") from None
            vals = [parse_value(name, json.dumps(x) if not isinstance(x, str) else x, elem) for x in items]
        else:
            vals = [parse_value(name, x, elem) for x in t.split(",") if x.strip()]
        return vals if origin is list else tuple(vals)
    return _parse_scalar(name, text, tp)


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def apply_overrides(cfg: Any, overrides: dict[str, Any], *, parse: bool = True) -> Any:
    """Return a copy of ``cfg`` with fields replaced; unknown keys raise a :class:`ConfigError`."""
    hints = typing.get_type_hints(type(cfg))
    names = field_names(type(cfg))
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(key, f"unknown key for {type(cfg).__name__}; allowed: {', '.join(names)}")
        changes[key] = parse_value(key, value, hints[key]) if parse and isinstance(value, str) else value
        if isinstance(changes[key], tuple) and typing.get_origin(hints[key]) is list:
            changes[key] = list(changes[key])
    return dataclasses.replace(cfg, **changes)


def parse_set_args(items: list[str] | None) -> dict[str, str]:
    """Parse ``["k=v", ...]`` from the command line into a dict; malformed items raise ConfigError."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError("--set", f"must look like key=value, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        if k in out:
            raise ConfigError(k, f"given twice with --set ({out[k]!r} and {v!r}); give each key once")
        out[k] = v
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(payload: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable payload."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def describe_fields(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, doc + allowed range) for each field: used by ``oraclerl list``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        doc = f.metadata.get("doc", "")
        rng = _allowed(f.metadata) if (f.metadata.get("low") is not None or f.metadata.get("high") is not None
                                       or f.metadata.get("choices")) else ""
        rows.append((f.name, getattr(hints[f.name], "__name__", str(hints[f.name])), default,
                     doc + (f" ({rng})" if rng else "")))
    return rows


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from :func:`to_dict` output (nested config dataclasses included).

    Unknown keys raise a :class:`ConfigError`; missing keys take their defaults. Used by sweep workers,
    which receive configs as plain data.
    """
    hints = typing.get_type_hints(cls)
    names = field_names(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(key, f"unknown key for {cls.__name__}; allowed: {', '.join(names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = from_dict(tp, value)
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
