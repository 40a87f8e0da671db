"""Exceptions raised by oraclerl.

Every error names the offending field and what is allowed, so a user can fix the input without reading
the source. They derive from the standard exception types a caller would expect (``ValueError`` for bad
input, ``RuntimeError`` for exhausted budgets).
"""

from __future__ import annotations


class OracleRLError(Exception):
    """Base class for all oraclerl errors."""


class ConfigError(OracleRLError, ValueError):
    """A configuration field or function argument is out of its allowed range."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class BudgetExceeded(OracleRLError, RuntimeError):
    """An oracle budget (T_comp, T_data, prompts, ...) would be exceeded by the next query."""

    def __init__(self, budget: str, limit: int, used: int, requested: int):
        self.budget, self.limit, self.used, self.requested = budget, limit, used, requested
        super().__init__(
            f"budget '{budget}' exceeded: {used} used + {requested} requested > limit {limit}"
        )


class RevealError(OracleRLError, PermissionError):
    """An algorithm asked an oracle for information that the oracle type does not reveal."""
