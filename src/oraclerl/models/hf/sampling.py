"""Sampling primitives of the transformers backend: device/dtype choice, the processed (temperature, top-k,
top-p) distribution, and inverse-CDF sampling from explicit generators."""

from __future__ import annotations

import torch


def auto_dtype(device: torch.device, dtype=None) -> torch.dtype:
    """``dtype`` if given, else bfloat16 on a CUDA device that supports it, else float32."""
    if dtype is not None:
        return dtype
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def process_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Log-probabilities [N, V] of the processed sampling distribution (temperature, then top-k, then top-p).

    Matches ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` and ``TopPLogitsWarper`` of ``transformers``
    (top-p keeps the smallest set of most likely tokens whose mass exceeds ``top_p``; ties at the top-k
    threshold are kept). Removed tokens get ``-inf``.
    """
    scores = logits.float()
    if temperature != 1.0:
        scores = scores / temperature
    if 0 < top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, idx = torch.sort(scores, descending=False)
        cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1 - top_p)
        remove[..., -1:] = False
        scores = scores.masked_fill(remove.scatter(-1, idx, remove), float("-inf"))
    return torch.log_softmax(scores, dim=-1)


def inverse_cdf(log_probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One index per row of ``log_probs`` [N, V] from uniforms ``u`` [N] (or [N, n] for n draws per row)."""
    p = torch.exp(log_probs.double() - log_probs.double().amax(-1, keepdim=True))
    cdf = p.cumsum(-1)
    target = (u.reshape(log_probs.shape[0], -1).to(cdf.device, torch.float64)) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, target, right=True).clamp_(max=log_probs.shape[-1] - 1)
    return idx.reshape(u.shape)


def _uniform(shape, generator) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=dev)
