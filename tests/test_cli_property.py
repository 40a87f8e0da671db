"""Property test of the command line (issue 12): random strings and numbers for every experiment's ``--set``
fields, through the CLI entry point in-process. Every call exits 0 (valid; ``--dry-run`` stops before the
run) or 2 with exactly one line, never a traceback; a rejected config never leaves a run directory, even
without ``--dry-run``."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oraclerl.cli import main
from oraclerl.runtime.run.registry import all_experiments, get_experiment

FIELDS = [(e.name, f.name) for e in all_experiments() for f in dataclasses.fields(e.config)]

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=24)
_number = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.one_of(
    _text,
    _number.map(str),
    st.lists(_number, min_size=0, max_size=4).map(lambda xs: ",".join(map(str, xs))),
    st.lists(_number, min_size=0, max_size=3).map(lambda xs: "[" + ", ".join(map(str, xs)) + "]"),
    st.sampled_from(
        [
            "inf",
            "-inf",
            "nan",
            "1e400",
            "-0",
            "",
            " ",
            "[",
            "[1, [2]]",
            "true",
            "null",
            "none",
            "{}",
            "0x10",
            "1_000",
            "1e3",
            "2.5",
            "-1",
            "10000000000",
            ";",
            "1;2",
            "a=b",
        ]
    ),
)


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(field=st.sampled_from(FIELDS), value=VALUES, command=st.sampled_from(["run", "sweep"]))
def test_random_set_values_exit_0_or_one_line_2(tmp_path_factory, capsys, field, value, command):
    name, key = field
    runs = tmp_path_factory.mktemp("runs") / "store"
    argv = [command, name, f"--set={key}={value}", "--dry-run"]
    argv += ["--out", str(runs)] if command == "run" else ["--runs", str(runs), "-q"]
    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    assert rc in (0, 2), (argv, cap.err)
    assert not runs.exists()
    if rc == 0:
        assert "valid" in cap.out and not cap.err
        # what was accepted is finite (inf and nan are rejected, like every out-of-range value)
        if command == "run":
            cfg = get_experiment(name).make_config("quick", {key: value})
            leaves = [
                x for v in dataclasses.asdict(cfg).values() for x in (v if isinstance(v, list) else [v])
            ]
            assert all(math.isfinite(x) for x in leaves if isinstance(x, float)), (argv, cfg)
        return
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oraclerl: error: "), (argv, cap.err)
    # Rejected: the same call without --dry-run is rejected the same way, before any run directory exists.
    assert main([a for a in argv if a != "--dry-run"]) == 2
    assert capsys.readouterr().err == cap.err and not runs.exists()


def _is_float_field(exp, key: str) -> bool:
    import typing

    tp = typing.get_type_hints(exp.config)[key]
    return tp is float or typing.get_args(tp) == (float,)


def test_every_float_field_rejects_inf_and_nan(capsys, tmp_path):
    """Item 5: a non-finite number never passes validation, whatever the field's declared range."""
    checked = 0
    for e in all_experiments():
        for f in dataclasses.fields(e.config):
            if not _is_float_field(e, f.name):
                continue
            for value in ("inf", "-inf", "nan", "1e400"):
                rc = main(
                    ["run", e.name, f"--set={f.name}={value}", "--dry-run", "--out", str(tmp_path / "runs")]
                )
                err = capsys.readouterr().err.strip()
                assert (
                    rc == 2 and err.startswith(f"oraclerl: error: {f.name}: ") and len(err.splitlines()) == 1
                ), err
                checked += 1
    assert checked >= 40 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("value", ["", "abc", "1e30", "-1"])
def test_every_field_of_every_experiment_survives_nasty_values(capsys, tmp_path, value):
    """Each field at least once (the random test samples them): exit 0 or 2 with one line, no run
    directory."""
    for name, key in FIELDS:
        rc = main(["run", name, f"--set={key}={value}", "--dry-run", "--out", str(tmp_path / "runs")])
        cap = capsys.readouterr()
        assert rc in (0, 2) and "Traceback" not in cap.err, (name, key, cap.err)
        assert rc == 0 or (len(cap.err.strip().splitlines()) == 1 and cap.err.startswith("oraclerl: error: "))
    assert not (tmp_path / "runs").exists()
