"""oraclerl: reinforcement learning with language models through the base model.

The learner sees a pre-trained model only through a sampling oracle and a reward oracle, and every query
is counted (Foster, Mhammedi & Rohatgi 2025). Sub-packages: ``oracles``, ``models``, ``problems``,
``inference``, ``explore``, ``posttrain``, ``diagnostics``, ``experiments``, ``runtime``.
"""

__version__ = "0.1.0"

from . import diagnostics, explore, inference, models, oracles, posttrain, problems  # noqa: E402

__all__ = ["oracles", "models", "problems", "inference", "explore", "posttrain", "diagnostics", "__version__"]
