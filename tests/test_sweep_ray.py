"""The Ray executor: the same sweep gives identical results on Ray (started in-process with 2 CPUs) and
on local worker processes; the CLI's ``--executor ray`` drives the same code path; every socket the Ray
instance listens on is on loopback and refuses a client without the instance's token."""

from __future__ import annotations

import json

import pytest

import test_runtime_fakes as fakes
from oraclerl.cli import main
from oraclerl.runtime.execution.executors import LocalExecutor, RayExecutor, start_local_ray
from oraclerl.runtime.execution.sweep import plan_sweep
from oraclerl.runtime.reporting.sweep_tables import run_sweep
from oraclerl.runtime.run.store import RunStore

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def ray_2cpus():
    """One private Ray instance for the module, started the way ``--executor ray`` starts one, in an
    environment that turns Ray's own default authentication off (as older Ray versions have it)."""
    import os

    fakes.install()
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        with start_local_ray(num_cpus=2):
            yield
    finally:
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
        fakes.uninstall()


def _results(summary) -> list[dict]:
    return [{k: v for k, v in r.result.items() if k != "elapsed_s"} for r in summary.records]


def test_ray_and_local_give_identical_results(tmp_path):
    plan = plan_sweep(fakes.FAKES[2], ["trials=10,20"], [0, 1])  # the real coverage-lower-bound code, tiny
    local = run_sweep(plan, RunStore(tmp_path / "local"), LocalExecutor(2), tmp_path / "out-local")
    events: list[str] = []
    remote = run_sweep(plan, RunStore(tmp_path / "ray"), RayExecutor(), tmp_path / "out-ray",
                       on_event=lambda ev, rec: events.append(ev.kind))
    assert local.ok and remote.ok and len(remote.summary.ran) == 4
    assert events.count("done") == 4 and events.count("start") == 4
    assert _results(local.summary) == _results(remote.summary)
    for name in ("runs.csv", "summary.csv", "claims.csv"):
        assert (tmp_path / "out-local" / name).read_text() == (tmp_path / "out-ray" / name).read_text()
    # The run directories were written by the Ray workers themselves: same layout, same metrics.
    for a, b in zip(local.summary.records, remote.summary.records):
        assert a.run_dir.path.name == b.run_dir.path.name and b.run_dir.state()[0] == "done"
        assert (a.run_dir.path / "metrics.jsonl").read_text() == (
            b.run_dir.path / "metrics.jsonl"
        ).read_text()
        assert json.loads((b.run_dir.path / "config.json").read_text())["seed"] == b.spec.seed


def test_cli_sweep_on_ray_resumes(tmp_path, capsys):
    argv = ["sweep", "fake-counter", "--seeds", "0-3", "--set", "steps=3,5", "--executor", "ray",
            "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "-q"]
    assert main(argv) == 0
    assert "8 ran, 0 re-used, 0 failed" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 ran, 8 re-used, 0 failed" in capsys.readouterr().out
    ref = run_sweep(plan_sweep(fakes.FAKES[0], ["steps=3,5"], [0, 1, 2, 3]), RunStore(tmp_path / "ref"),
                    LocalExecutor(0), tmp_path / "ref-out")
    assert (
        ref.ok
        and (tmp_path / "ref-out" / "runs.csv").read_text() == (tmp_path / "out" / "runs.csv").read_text()
    )


# One method of each Ray gRPC service that listens (GCS, raylet node manager and object manager, core worker).
_RAY_METHODS = ["/ray.rpc.NodeInfoGcsService/GetClusterId", "/ray.rpc.NodeManagerService/GetNodeStats",
                "/ray.rpc.ObjectManagerService/Pull", "/ray.rpc.CoreWorkerService/NumPendingTasks"]


def _unauthenticated_answers(ip: str, port: int, http: bool) -> list[str]:
    """What a client without the token gets from each service at ``ip:port`` (gRPC status names, or HTTP
    codes)."""
    host = "127.0.0.1" if ip in ("::", "0.0.0.0") else f"[{ip}]" if ":" in ip else ip
    if http:
        import urllib.error
        import urllib.request

        try:
            return [str(urllib.request.urlopen(f"http://{host}:{port}/", timeout=5).status)]
        except urllib.error.HTTPError as exc:
            return [str(exc.code)]
    grpc = pytest.importorskip("grpc")
    out = []
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        for method in _RAY_METHODS:
            try:
                channel.unary_unary(method)(b"", timeout=5)
                out.append("OK")
            except grpc.RpcError as exc:
                out.append(exc.code().name)
    return out


def test_ray_listens_only_on_loopback_and_behind_its_token():
    """Every listening socket of the Ray instance (driver and every process it started) is on loopback, and
    refuses a client without the instance's random token (gRPC UNAUTHENTICATED, HTTP 401) and serves none.
    Only loopback addresses are ever contacted."""
    import ipaddress

    psutil = pytest.importorskip("psutil")
    ray.get(ray.remote(lambda: 1).remote())  # a worker is up too
    me = psutil.Process()
    procs = {p.pid: p for p in [me, *me.children(recursive=True)]}
    listening = [
        c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in procs
    ]
    assert len(listening) >= 3  # the GCS, the raylet, the workers
    for c in listening:
        ip = ipaddress.ip_address(c.laddr.ip)
        ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 is 127.0.0.1
        assert ip.is_loopback, (procs[c.pid].name(), c.laddr)
        answers = _unauthenticated_answers(str(ip), c.laddr.port, http="RuntimeEnv" in procs[c.pid].name())
        assert "OK" not in answers and "200" not in answers, (procs[c.pid].name(), c.laddr, answers)
        assert "UNAUTHENTICATED" in answers or "401" in answers, (procs[c.pid].name(), c.laddr, answers)
