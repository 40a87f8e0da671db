"""Issue 12 item 5: every size field is bounded before any work. For every experiment, every integer field
(scalar or list) set to 10**12 is rejected through the CLI entry point in-process with exit 2 and one line
naming the field (or, for a field only a ``memory(config)`` estimate covers, the estimate), before any run
directory exists; and every experiment's quick and paper scales still validate."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from oraclerl.cli import main
from oraclerl.runtime.run.registry import all_experiments

EXPERIMENTS = [e.name for e in all_experiments()]


def _int_fields(exp) -> list[str]:
    hints = typing.get_type_hints(exp.config)
    return [f.name for f in dataclasses.fields(exp.config)
            if hints[f.name] is int or typing.get_args(hints[f.name]) == (int,)]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_huge_integer_is_rejected_in_one_line_before_any_run_directory(name, capsys, tmp_path):
    exp = next(e for e in all_experiments() if e.name == name)
    fields = _int_fields(exp)
    assert fields, name
    runs = tmp_path / "runs"
    for key in fields:
        for extra in (["--dry-run"], []):  # the real command only once the dry run has rejected the value
            rc = main(["run", name, f"--set={key}={10**12}", "--out", str(runs), *extra])
            err = capsys.readouterr().err.strip()
            assert rc == 2 and len(err.splitlines()) == 1, (name, key, extra, err)
            assert err.startswith(f"oraclerl: error: {key}: ") or "of memory" in err, (name, key, err)
            assert not runs.exists(), (name, key, extra)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_integer_field_is_bounded_above_its_paper_scale(name):
    """An upper bound on every integer field (or a memory estimate), well above what the paper uses."""
    exp = next(e for e in all_experiments() if e.name == name)
    meta = {f.name: f for f in dataclasses.fields(exp.config)}
    for key in _int_fields(exp):
        f = meta[key]
        high = f.metadata.get("high")
        assert high is not None, f"{name}.{key} has no upper bound"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        used = [exp.scales[s].get(key, default) for s in exp.scales]
        biggest = max(x for v in used for x in (v if isinstance(v, list) else [v]))
        assert high >= 2 * biggest or high >= biggest + 2, (name, key, high, biggest)


@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_every_experiment_validates_at_quick_and_paper_scale(scale, capsys, tmp_path):
    for name in EXPERIMENTS:
        rc = main(["run", name, "--scale", scale, "--dry-run", "--out", str(tmp_path / "runs")])
        cap = capsys.readouterr()
        assert rc == 0 and "valid" in cap.out, (name, scale, cap.err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("name", "sets"),
    [
        (
            "transformer-barrier",
            ["n_layer=24", "n_embd=1024", "n_head=32", "pretrain_batch=4096", "length=256"],
        ),
        ("pg-figure1", ["N=4096", "k=1024", "test_size=262144", "pg_batch=16384"]),
    ],
)
def test_sizes_each_within_bounds_but_too_big_together_are_stopped_by_the_memory_estimate(
    capsys, tmp_path, name, sets
):
    """The upper bound of every size field at once: the experiment's memory(config) estimate (calibrated in
    its docstring) rejects it in one line with the estimate, before any run directory."""
    argv = ["run", name, *[f"--set={s}" for s in sets], "--out", str(tmp_path / "runs")]
    for extra in (["--dry-run"], []):  # the real command only once the dry run has rejected it
        rc = main([*argv, *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert err.startswith(f"oraclerl: error: {name}: one run needs about ") and " GiB of memory" in err
        assert not (tmp_path / "runs").exists()
