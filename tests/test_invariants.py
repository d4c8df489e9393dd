"""Invariants of docs/invariants.md that no other file guards: energy is the integral of power
at every level (GPU, node, pool, row, fleet), determinism across processes, hash seeds and
entry points, sweeps that survive kill -9 at random moments, pool workers that die with their
parent, and a full disk during a sweep."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simulator.api import simulate
from simulator.errors import FleetsimError
from simulator.scenario.load import scenario_from_dict
from tests.conftest import small

REPO = Path(__file__).resolve().parents[1]


def _integral(t0: np.ndarray, t1: np.ndarray, p: np.ndarray) -> float:
    return float(np.sum(p * (t1 - t0)))


def test_energy_is_the_integral_of_power_per_gpu_node_pool_row_and_fleet():
    """Two pools of different TP, three nodes in two rows with a budget (the controller acts):
    each level's energy, computed from its own power timeline, equals the ledger's."""
    d = small(workload__rate_per_s=40.0)
    d["simulation"] = {"requests": 300, "warmup_requests": 30, "seed": 5}
    d["deployment"] = {"nodes": 1, "tp": 2}
    d["pools"] = [{"name": "a", "deployment": {"nodes": 1}},
                  {"name": "b", "deployment": {"nodes": 2, "tp": 4}}]
    d["power"] = {"rows": [[0, 1], [2]], "row_budget_w": 9000.0, "telemetry_interval_s": 0.5}
    res = simulate(scenario_from_dict(d))
    assert res.summary["capping"]["cap_lowerings"] > 0
    end = res.end_s
    led = res.ledger
    # per GPU: busy intervals at the replica's power / tp, idle power between them
    gpu_j: dict[int, float] = {}
    for r in res.fleet.replicas:
        pool = res.fleet.pools[r.pool]
        t0, t1 = np.asarray(r.rec.t0_s), np.asarray(r.rec.t1_s)
        per_gpu_busy = np.asarray(r.rec.energy_j) / r.tp
        one_gpu = per_gpu_busy.sum() + pool.idle_w * (end - float((t1 - t0).sum()))
        gpu_j[r.node] = gpu_j.get(r.node, 0.0) + r.tp * one_gpu
    for node in range(res.fleet.nodes):
        pool = res.fleet.pool_of_node(node)
        gpu_j[node] = gpu_j.get(node, 0.0) + pool.unused_gpus_per_node * pool.idle_w * end
    # per node: the node timeline's integral has the same GPU energy
    node_it_j = {}
    for node in range(res.fleet.nodes):
        tl = led.node_timeline(node)
        t0, t1 = tl["t_start_s"].to_numpy(), tl["t_end_s"].to_numpy()
        assert _integral(t0, t1, tl["gpu_power_w"].to_numpy()) == pytest.approx(gpu_j[node],
                                                                                rel=1e-9)
        node_it_j[node] = _integral(t0, t1, tl["node_power_w"].to_numpy())
    # per pool: the ledger's window of the pool, and the summary's pool figures
    for pool in res.fleet.pools:
        w = led.window(pool=pool)
        mine = sum(node_it_j[n] for n in pool.node_range)
        assert w.it_j == pytest.approx(mine, rel=1e-9)
        assert res.summary["pools"][pool.name]["energy_it_j"] == pytest.approx(mine, rel=1e-9)
    # per row: the row timeline's integral is its nodes'
    for row in ([0, 1], [2]):
        tl = led.row_timeline(row)
        got = _integral(tl["t_start_s"].to_numpy(), tl["t_end_s"].to_numpy(),
                        tl["power_w"].to_numpy())
        assert got == pytest.approx(sum(node_it_j[n] for n in row), rel=1e-9)
    # the fleet
    assert res.summary["energy_it_j"] == pytest.approx(sum(node_it_j.values()), rel=1e-9)
    assert res.summary["energy_gpu_j"] == pytest.approx(sum(gpu_j.values()), rel=1e-9)


# ------------------------------------------------------------------ determinism
def _scenario_file(tmp_path: Path) -> Path:
    d = small(workload__rate_per_s=30.0, deployment__nodes=2)
    d["simulation"] = {"requests": 400, "warmup_requests": 40, "seed": 11}
    d["workload"]["classes"]["long"] = {"input_tokens": {"dist": "uniform", "low": 100,
                                                         "high": 900},
                                        "output_tokens": {"dist": "lognormal", "median": 200,
                                                          "sigma": 1.0}}
    d["workload"]["mix"] = {"chat": 0.7, "long": "rest"}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_byte_identical_across_processes_hash_seeds_and_entry_points(tmp_path):
    sc = _scenario_file(tmp_path)
    fleetsim = Path(sys.executable).with_name("fleetsim")
    runs = [([sys.executable, "-m", "simulator"], "0"), ([sys.executable, "-m", "simulator"], "777")]
    if fleetsim.exists():
        runs.append(([str(fleetsim)], "random"))
    outs = []
    for i, (cmd, seed) in enumerate(runs):
        out = tmp_path / f"out{i}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([*cmd, "run", str(sc), "-o", str(out), "--quiet"], cwd=REPO, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(out)
    first = outs[0]
    for out in outs[1:]:
        for f in ("summary.json", "requests.parquet", "power/nodes.parquet",
                  "scenario.resolved.yaml"):
            assert (out / f).read_bytes() == (first / f).read_bytes(), f


# ------------------------------------------------------------------ sweeps under faults
def _sweep_file(tmp_path: Path) -> Path:
    d = small()
    d["simulation"] = {"requests": 120, "warmup_requests": 10, "seed": 2}
    d["sweep"] = {"grid": {"workload.rate_per_s": [5, 10, 15, 20, 25, 30]}}
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _sweep_cmd(f: Path, out: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "simulator", "sweep", str(f), "-o", str(out), "--workers",
            str(workers), "--quiet"]


def test_sweep_resume_after_kill9_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """kill -9 of the whole sweep (main and workers) three times at random moments, then a rerun:
    the table equals an uninterrupted run's, each point once, and no debris is left."""
    from simulator.sweep import build_sweep, run_sweep

    f = _sweep_file(tmp_path)
    reference = run_sweep(build_sweep(str(f)), tmp_path / "ref", workers=1,
                          progress=False)["table"]
    out = tmp_path / "out"
    rng = random.Random(19)
    for _ in range(3):
        p = subprocess.Popen(_sweep_cmd(f, out, 2), cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 4.0))
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    r = subprocess.run(_sweep_cmd(f, out, 2), cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(table, reference, check_exact=True)
    assert table["point_id"].is_unique
    points = sorted(p.name for p in (out / "points").iterdir())
    assert points == sorted(reference["point_id"])  # no staging debris, no extra folder
    assert not list(out.glob(".*.tmp"))


def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_killing_only_the_main_process_ends_its_pool_workers(tmp_path):
    d = small()
    d["simulation"] = {"requests": 3000, "warmup_requests": 10, "seed": 2}
    d["sweep"] = {"grid": {"workload.rate_per_s": [5, 10, 15, 20]}}
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump(d))
    p = subprocess.Popen(_sweep_cmd(f, tmp_path / "out", 2), cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2 and p.poll() is None:
            workers = _children(p.pid)
            time.sleep(0.05)
        assert len(workers) >= 2, "the pool did not start"
        p.send_signal(signal.SIGKILL)  # the main process only
        p.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "pool workers outlived their parent"
    finally:
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except OSError:
                pass


def test_full_disk_during_a_sweep_is_one_line_and_leaves_no_temp_file(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from simulator.cli import main

    real = pd.DataFrame.to_parquet

    def full(self, path, *a, **k):
        if str(path).endswith(".results.parquet.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["sweep", str(_sweep_file(tmp_path)), "-o", str(out),
                                  "--workers", "1", "--quiet"])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], r.stderr
    assert not list(out.glob(".*.tmp"))


def test_full_disk_while_writing_points_fails_the_points_in_one_line(tmp_path, monkeypatch):
    from simulator.metrics.requests import RequestTable
    from simulator.sweep import build_sweep, run_sweep

    real = RequestTable.to_parquet

    def full(self, path, *a, **k):  # a point's requests.parquet meets a full disk
        if "points" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(self, path, *a, **k)

    monkeypatch.setattr(RequestTable, "to_parquet", full)
    out = tmp_path / "out"
    with pytest.raises(FleetsimError) as e:
        run_sweep(build_sweep(str(_sweep_file(tmp_path))), out, workers=1, progress=False)
    assert "6 of 6 sweep points failed" in str(e.value) and "No space left" in str(e.value)
    assert "\n" not in str(e.value)
    assert [p.name for p in (out / "points").iterdir()] == []
