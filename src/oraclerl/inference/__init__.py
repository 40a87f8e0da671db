"""Inference-time alignment: exact tilted optimum, best-of-N, soft BoN, rejection sampling."""
