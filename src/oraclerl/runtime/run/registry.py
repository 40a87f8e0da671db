"""The experiment registry: every paper claim or figure is an :class:`Experiment` registered by a module in
:mod:`oraclerl.experiments`. The CLI, the report and sweeps read it."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError

PAPERS = {
    "foster": "Foster, Mhammedi & Rohatgi (COLT 2025): Is a Good Foundation Necessary for Efficient RL? "
              "The Computational Role of the Base Model in Exploration",
    "yang_bon": "Yang et al. (ISIT 2024): Asymptotics of Language Model Alignment; Beirami et al. (ICML "
                "2025): Theoretical guarantees on the best-of-n alignment policy",
    "mousavi": "Mousavi-Hosseini & Erdogdu (ICML 2026): Post-Training with Policy Gradients: Optimality and "
               "the Base Model Barrier",
    "lm": "Real language models (transformers backend)",
}


IDENTITY = "identity"
"""Claim kind: an exact equality, or a theorem's inequality, checked on exact numbers (no sampling noise, no
rate read off a finite range); it holds at any scale or the code is wrong."""
EMPIRICAL = "empirical"
"""Claim kind: a rate, a comparison or a plateau read off measurements at a finite scale. Its verdict must
not be satisfied by construction, and a negative control in ``tests/test_claims_*.py`` (a wrong variant, or
the alternative's counterfactual measurements fed to the same verdict code) must make it come out "does not
hold"."""
CLAIM_KINDS = (IDENTITY, EMPIRICAL)

SCALES = ("toy", "quick", "paper")
"""The scales every experiment declares: "toy" (seconds; what the tests run), "quick" (the report's default)
and "paper" (the papers' configuration)."""


@dataclass
class Claim:
    """One checkable statement and what a run measured for it (see docs/experiments/ for each experiment's
    verdict windows and why they are what they are).

    ``kind`` is keyword-only and optional: it defaults to :data:`EMPIRICAL`, the kind that needs a negative
    control, so an unclassified claim is never shown as an exact identity; pass ``kind=IDENTITY`` for identity
    checks. ``informative=False`` marks an empirical claim whose verdict does not separate the prediction from
    its alternative at this scale (e.g. the measured interval straddles the midpoint between the two, or no
    wrong variant flips it): it is then reported "not informative at this scale" whatever ``holds`` says."""

    claim: str
    """The statement, e.g. "KL(BoN) ≤ log n − (n−1)/n on every instance tried"."""
    source: str
    """Where it comes from: paper, section, equation or theorem."""
    measured: str
    """The measured value(s), human readable (mean ± 95% interval over seeds where relevant)."""
    holds: bool | None
    """Whether the measurement supports the claim (None: reported, not judged)."""
    detail: str = ""
    """Anything the reader must know to interpret the verdict."""
    kind: str = field(default=EMPIRICAL, kw_only=True)
    """IDENTITY (exact equality / theorem inequality on exact numbers) or EMPIRICAL (rate, comparison,
    plateau)."""
    informative: bool = field(default=True, kw_only=True)
    """False: the measurement cannot tell the prediction from the alternative at this scale."""

    def __post_init__(self):
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"Claim.kind must be one of {CLAIM_KINDS}, got {self.kind!r}")
        if self.holds not in (True, False, None):
            raise ValueError(f"Claim.holds must be True, False or None, got {self.holds!r}")
        self.holds = None if self.holds is None else bool(self.holds)

    @property
    def verdict(self) -> str:
        """"holds" | "does not hold" | "not informative at this scale" | "n/a" (reported, not judged)."""
        if not self.informative:
            return "not informative at this scale"
        if self.holds is None:
            return "n/a"
        return "holds" if self.holds else "does not hold"

    def as_dict(self) -> dict:
        return {
            "claim": self.claim,
            "source": self.source,
            "measured": self.measured,
            "holds": self.holds,
            "detail": self.detail,
            "kind": self.kind,
            "informative": self.informative,
            "verdict": self.verdict,
        }


@dataclass
class Experiment:
    """A registered experiment: config dataclass + run + claims + plot."""

    name: str
    """CLI name, e.g. ``coverage-lower-bound``."""
    title: str
    """One-line title shown in the report."""
    paper: str
    """Key of :data:`PAPERS`."""
    config: type
    """Config dataclass (fields declared with :func:`oraclerl.common.config.param`)."""
    run: Callable[[Any, Any], dict]
    """``run(config, ctx) -> result`` for one seed; the result is plain JSON data."""
    claims: Callable[[list[dict], Any], list[Claim]]
    """``claims(results_over_seeds, config) -> [Claim]``."""
    plot: Callable[[list[dict], Any, Path], list[Path]]
    """``plot(results_over_seeds, config, outdir) -> [figure paths]``."""
    scales: dict[str, dict[str, Any]] = field(default_factory=lambda: {"quick": {}, "paper": {}})
    """Config overrides per scale (:data:`SCALES`): "toy" runs in seconds (the tests use it), "quick" is the
    report default (the config's defaults, so usually ``{}``), "paper" the papers' configuration: each paper
    value is stated once, there."""
    seeds: int = 3
    """How many seeds the report runs by default."""
    description: str = ""
    """A paragraph for the report: what is measured and how to read the figure. Left empty, it is derived from
    the docstring of the module that defines ``run`` (everything after its first paragraph, on one line)."""
    summary: Callable[[dict], dict] | None = None
    """Optional ``summary(result) -> {metric: number}`` for sweep tables; by default the numeric leaves of
    the result, flattened with "/" (see :func:`oraclerl.runtime.reporting.sweep_tables.flatten_metrics`)."""
    memory: Callable[[Any], int] | None = None
    """Optional ``memory(config) -> bytes``: an estimate of one run's peak memory, checked against the memory
    this machine has available before any run starts (see :func:`oraclerl.common.validation.check_memory`)."""

    def __post_init__(self):
        if not self.description:
            doc = getattr(sys.modules.get(getattr(self.run, "__module__", "")), "__doc__", None) or ""
            parts = doc.split("\n\n", 1)
            self.description = parts[1].replace("\n", " ") if len(parts) > 1 else ""

    @classmethod
    def from_modules(cls, experiment, analysis, **fields) -> Experiment:
        """The experiment of a package ``experiments/<name>/`` (docs/architecture.md): ``run`` and ``SCALES``
        from its ``experiment`` module, ``claims`` and ``plot`` from its ``analysis`` module; ``fields`` are
        the rest (name, title, paper, config, seeds, memory, ...)."""
        return cls(run=experiment.run, scales=experiment.SCALES, claims=analysis.claims, plot=analysis.plot,
                   **fields)

    def make_config(self, scale: str = "quick", overrides: dict[str, Any] | None = None):
        from ...common.config import apply_overrides, validate

        if scale not in self.scales:
            raise ConfigError(
                "--scale", f"must be one of {sorted(self.scales)} for {self.name}, got {scale!r}"
            )
        cfg = apply_overrides(self.config(), self.scales[scale], parse=False)
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        cfg = validate(cfg)
        if self.memory is not None:
            from ...common.validation import check_memory

            check_memory(self.name, int(self.memory(cfg)))
        return cfg


_REGISTRY: dict[str, Experiment] = {}
_LOADED = False
_LOAD_ERRORS: dict[str, str] = {}


def register(exp: Experiment) -> Experiment:
    if exp.paper not in PAPERS:
        raise ConfigError("paper", f"must be one of {sorted(PAPERS)}, got {exp.paper!r}")
    # Remember which module registered it: sweep workers import that module to find the experiment.
    caller = sys._getframe(1).f_globals.get("__name__")
    exp._registered_by = caller if caller not in (None, __name__) else getattr(exp.run, "__module__", None)
    _REGISTRY[exp.name] = exp
    return exp


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    from ... import experiments

    for mod in sorted(pkgutil.iter_modules(experiments.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            # One broken experiment module must not take the others (and the report) down with it.
            try:
                importlib.import_module(f"{experiments.__name__}.{mod.name}")
            except Exception as exc:  # noqa: BLE001 - reported by load_errors(), the CLI and the report
                _LOAD_ERRORS[mod.name] = f"{type(exc).__name__}: {exc}"
    _LOADED = True


def load_errors() -> dict[str, str]:
    """Experiment modules that failed to import: {module name: error line}."""
    _load()
    return dict(_LOAD_ERRORS)


def all_experiments() -> list[Experiment]:
    _load()
    order = list(PAPERS)
    return sorted(_REGISTRY.values(), key=lambda e: (order.index(e.paper), e.name))


def get_experiment(name: str) -> Experiment:
    _load()
    if name not in _REGISTRY:
        raise ConfigError(
            "experiment", f"unknown experiment {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]
