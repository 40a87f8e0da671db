"""Attributes read through a held object, in one place: ``horizon = forwarded("model")`` instead of a
hand-written property per attribute (adapters and instances expose their model's β, H, |A|, device, ...)."""

from __future__ import annotations

from typing import Any


class forwarded:  # noqa: N801 - used like ``property``
    """A read-only attribute whose value is ``obj.<via>.<name>`` (``name``: the attribute's own name unless
    given), read on every access so that it follows the held object."""

    def __init__(self, via: str, name: str | None = None):
        self.via, self.name = via, name

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr
        if self.name is None:
            self.name = attr

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.via), self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{type(obj).__name__}.{self.attr} is read from .{self.via}; set it there")
