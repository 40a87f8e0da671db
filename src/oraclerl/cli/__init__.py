"""The command line, one module per entry point: ``main`` (``oraclerl list | run | report``, and the parser
that adds the others), ``sweep`` (``oraclerl sweep``) and ``diagnose`` (``oraclerl diagnose``, extra
``[hf]``)."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
