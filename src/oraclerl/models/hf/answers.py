"""Answer extraction for ``oraclerl diagnose``: how a completion is compared with a problem's answer.

``--match`` takes one of (the answer is always ``str(answer).strip()``):

* ``exact``: the whole completion, stripped, equals the answer;
* ``contains``: the answer is a substring of the completion;
* ``first-line``: the completion's first line (up to the first newline), stripped, equals the answer
  (base models continue past the answer: ``"5\\nQ: ..."`` counts as ``5``);
* ``last-number`` (alias ``number``): the last number in the completion equals the answer's last number
  numerically (``"so it is 3.0"`` matches ``3``);
* ``regex:PATTERN``: the first match of ``PATTERN`` (Python ``re.search``) in the completion, its group 1 if
  the pattern has a group, else the whole match, stripped, equals the answer (no match = wrong);
* ``module:function``: ``function(completion, answer) -> bool | float`` (≥ 0.5 = correct) from the module you
  name, imported by name with ``importlib`` from the installed packages and ``PYTHONPATH`` only. The working
  directory is **not** searched (the implicit ``''`` entry of ``python -m`` is left out during the import):
  nothing from the folder you run in is imported unless you put it on ``PYTHONPATH`` yourself.

:func:`make_matcher` validates the choice (and imports the callable) before any model is loaded.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable

from ...errors import ConfigError

KINDS = ("exact", "contains", "first-line", "last-number", "number", "regex:PATTERN", "module:function")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def last_number(text: str) -> float | None:
    """The last number in ``text`` (thousands separators ``1,000`` are joined), or None."""
    found = _NUMBER.findall(text.replace(",", ""))
    if not found:
        return None
    try:
        return float(found[-1])
    except ValueError:  # pragma: no cover - the pattern only matches floats
        return None


def _import_callable(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    if not name.isidentifier() or not all(part.isidentifier() for part in module.split(".")):
        raise ConfigError("--match", f"{spec!r}: a callable is module:function with a dotted module name")
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p != ""]  # never the implicit working-directory entry
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            "--match",
            f"cannot import module {module!r} ({exc}); it is imported by name from the "
            "installed packages and PYTHONPATH, never from the working directory",
        ) from None
    finally:
        sys.path[:] = saved
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise ConfigError("--match", f"module {module!r} has no callable {name!r}")
    return fn


def make_matcher(kind: str) -> Callable[[str, str], bool]:
    """``match(completion, answer) -> bool`` for a ``--match`` value (see the module docstring)."""
    if kind == "exact":
        return lambda c, a: c.strip() == str(a).strip()
    if kind == "contains":
        return lambda c, a: str(a).strip() in c
    if kind == "first-line":
        return lambda c, a: c.split("\n", 1)[0].strip() == str(a).strip()
    if kind in ("last-number", "number"):
        def num(c, a):
            v, want = last_number(c), last_number(str(a))
            return v is not None and want is not None and abs(v - want) <= 1e-9 * max(1.0, abs(want))
        return num
    if kind.startswith("regex:"):
        try:
            pat = re.compile(kind[len("regex:"):])
        except re.error as exc:
            raise ConfigError("--match", f"invalid regular expression {kind[6:]!r}: {exc}") from None

        def rx(c, a):
            m = pat.search(c)
            if m is None:
                return False
            return (m.group(1) if pat.groups else m.group(0)).strip() == str(a).strip()
        return rx
    if ":" in kind:
        fn = _import_callable(kind)

        def call(c, a):
            v = fn(c, a)
            try:
                return float(v) >= 0.5
            except (TypeError, ValueError):
                raise ConfigError(
                    "--match", f"{kind} returned {v!r}; it must return a bool or a number"
                ) from None
        return call
    raise ConfigError("--match", f"must be one of {list(KINDS)}, got {kind!r}")
