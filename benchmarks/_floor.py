"""Hardware floors for the benchmarks (docs/benchmarks.md, "Floors"): this machine's rates, measured on one
core.

``rates()`` measures, with one torch thread: memory bandwidth (copy of 256 MiB: bytes read + written per
second), float32 and float64 matmul throughput (512³, flop/s: the core's peak arithmetic rate, an optimistic
bound for compares and scalar loops), and the dispatch cost of one small torch op (``a + b`` on 1024 floats).
``floor(...)`` turns a kernel's bytes, flops and op count into the time no implementation on this core can
beat: max(bytes / bandwidth, flops / throughput) + ops × dispatch (the ops of an unavoidable Python-level
sequence).
"""

from __future__ import annotations

import time

import torch


def _best(fn, reps: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def rates() -> dict[str, float]:
    """{"bandwidth": B/s, "flops32": flop/s, "flops64": flop/s, "dispatch": s per small op} (best of 5)."""
    src = torch.ones(1 << 26)                # 256 MiB of float32
    dst = torch.empty_like(src)
    out = {"bandwidth": 2 * src.numel() * 4 / _best(lambda: dst.copy_(src))}
    src = dst = None
    for name, dt in (("flops32", torch.float32), ("flops64", torch.float64)):
        m = torch.randn(512, 512, dtype=dt)
        out[name] = 2 * 512 ** 3 / _best(lambda m=m: m @ m)
    s = torch.ones(1024)
    out["dispatch"] = _best(lambda: [s + s for _ in range(1000)]) / 1000
    return out


def floor(r: dict[str, float], bytes_moved: float = 0.0, flops: float = 0.0, ops: int = 0,
          flop_kind: str = "flops32") -> float:
    """Seconds: max(bytes / bandwidth, flops / throughput) + ops × dispatch."""
    return max(bytes_moved / r["bandwidth"], flops / r[flop_kind]) + ops * r["dispatch"]


def describe(r: dict[str, float]) -> str:
    return (
        f"memory bandwidth {r['bandwidth'] / 1e9:.1f} GB/s, matmul {r['flops32'] / 1e9:.1f} GFLOP/s "
        f"(float32) / {r['flops64'] / 1e9:.1f} (float64), dispatch {r['dispatch'] * 1e6:.1f} µs per small op"
    )
