"""Executing many runs: the engine (resumable, shared by the report and sweeps), the executors (inline, local
worker processes, Ray), the worker side, sweep plans and live progress."""
