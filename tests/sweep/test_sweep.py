"""Sweeps: expansion, equality with single runs, serial == parallel == Dask, resume, bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from simulator.cli import main
from simulator.api import simulate
from simulator.errors import FleetsimError, ScenarioError
from simulator.scenario.load import load_scenario
from simulator.sweep import build_sweep, flatten_summary, point_id, run_sweep
from simulator.sweep.spec import SweepSpec, expand

CHAT = {"input_tokens": {"dist": "fixed", "value": 500},
        "output_tokens": {"dist": "exponential", "median": 300},
        "slo": {"ttft_s": 2.0, "tpot_s": 0.1}}


def small() -> dict:
    """A small, fast scenario: Llama-3.1-8B on one node, TP 2, Poisson chat, 150 requests."""
    return {"name": "sweep-test", "model": "Llama-3.1-8B", "deployment": {"nodes": 1, "tp": 2},
            "workload": {"arrival": "poisson", "rate_per_s": 20.0, "classes": {"chat": dict(CHAT)}},
            "simulation": {"requests": 150, "warmup_requests": 15, "seed": 3}}

GRID = {"deployment.tp": [2, 4], "workload.rate_per_s": [10, 30]}


def scenario_file(tmp_path: Path, sweep: dict | None = None) -> Path:
    d = small()
    if sweep is not None:
        d["sweep"] = sweep
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """A 4-point grid swept serially (the reference every other way must match)."""
    tmp = tmp_path_factory.mktemp("serial")
    f = scenario_file(tmp, {"grid": GRID})
    res = run_sweep(build_sweep(str(f)), tmp / "out", workers=1, progress=False)
    return f, tmp / "out", res["table"]


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)


# ------------------------------------------------------------------ expansion
def test_grid_product_order_and_union_dedup():
    spec = SweepSpec.model_validate({"grid": {"a.x": [1, 2], "b.y": ["p", "q"]},
                                     "points": [{"a.x": 1, "b.y": "p"}, {}]})
    pts = expand(spec)
    assert pts == [{"a.x": 1, "b.y": "p"}, {"a.x": 1, "b.y": "q"}, {"a.x": 2, "b.y": "p"},
                   {"a.x": 2, "b.y": "q"}, {}]


def test_sample_reproducible_ints_and_floats():
    raw = {"sample": {"n": 5, "seed": 7, "ranges": {"d.nodes": [1, 4], "f.pue": [1.1, 1.5]}}}
    a, b = expand(SweepSpec.model_validate(raw)), expand(SweepSpec.model_validate(raw))
    assert a == b and len(a) == 5
    assert all(isinstance(p["d.nodes"], int) and 1 <= p["d.nodes"] <= 4 for p in a)
    assert all(isinstance(p["f.pue"], float) and 1.1 <= p["f.pue"] <= 1.5 for p in a)


def test_point_id_is_stable_and_order_free():
    assert point_id({"a": 1, "b": 2}) == point_id({"b": 2, "a": 1})
    assert point_id({"a": 1}) != point_id({"a": 2})
    assert point_id({"a": 1}) == "015abd7f5cc5"  # fixed across runs and machines


def test_flatten_summary():
    flat = flatten_summary({"x": 1.0, "slo_attainment": {"chat": 0.5}, "classes": {"chat": {"e": None}}})
    assert flat["slo_attainment.chat"] == 0.5 and math.isnan(flat["classes.chat.e"])


# ------------------------------------------------------------------ correctness
def test_rows_equal_each_point_run_alone(serial):
    f, out, table = serial
    assert len(table) == 4 and list(table.columns[:3]) == ["point_id", "deployment.tp", "workload.rate_per_s"]
    assert "slo_attainment.chat" in table and "classes.chat.ttft_s_p50" in table
    for _, row in table.iterrows():
        sc = load_scenario(str(f), [f"deployment.tp={row['deployment.tp']}",
                                    f"workload.rate_per_s={row['workload.rate_per_s']}"])
        alone = flatten_summary(json.loads(json.dumps(simulate(sc).summary)))
        for k, v in alone.items():
            got = row[k]
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(got), k
            else:
                assert got == v, (k, got, v)
        assert (out / "points" / row["point_id"] / "requests.parquet").exists()


def test_parallel_equals_serial(serial, tmp_path):
    f, _, table = serial
    res = run_sweep(build_sweep(str(f)), tmp_path / "par", workers=2, progress=False)
    same(res["table"], table)
    same(pd.read_parquet(tmp_path / "par" / "results.parquet"), table)
    csv = pd.read_csv(tmp_path / "par" / "results.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == 4


def test_dask_local_cluster_equals_local_pool(serial, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    f, _, table = serial
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        res = run_sweep(build_sweep(str(f)), tmp_path / "dask", cluster=cluster.scheduler_address,
                        progress=False)
    same(res["table"], table)


# ------------------------------------------------------------------ resume
class Killed(Exception):
    pass


def test_resume_after_kill_loses_nothing(serial, tmp_path):
    f, _, table = serial
    out = tmp_path / "out"
    done = []

    def kill_after_two(outcome):
        done.append(outcome.id)
        if len(done) == 2:
            raise Killed

    with pytest.raises(Killed):
        run_sweep(build_sweep(str(f)), out, workers=1, progress=False, on_point_done=kill_after_two)
    assert len(pd.read_parquet(out / "results.parquet")) == 2  # finished points were kept
    # a point killed mid-write leaves only a staging folder, which is not a result
    half = out / "points" / ".staging" / f".{table['point_id'].iloc[3]}.tmpabc"
    half.mkdir(parents=True)
    (half / "requests.parquet").write_bytes(b"half")
    res = run_sweep(build_sweep(str(f)), out, workers=2, progress=False)
    assert (res["ran"], res["skipped"]) == (2, 2)
    same(res["table"], table)
    assert not list((out / "points").glob(".*"))
    # lose one point's folder and the table: only that point runs again
    shutil.rmtree(out / "points" / table["point_id"].iloc[1])
    (out / "results.parquet").unlink()
    res = run_sweep(build_sweep(str(f)), out, workers=1, progress=False)
    assert (res["ran"], res["skipped"]) == (1, 3)
    same(pd.read_parquet(out / "results.parquet"), table)


def test_changed_base_scenario_makes_points_stale(serial):
    from simulator.sweep.runner import is_finished

    f, out, _ = serial
    same_sw, changed = build_sweep(str(f)), build_sweep(str(f), ["simulation.seed=9"])
    assert [p.id for p in same_sw.points] == [p.id for p in changed.points]  # ids: overrides only
    assert all(is_finished(out, p.id, p.scenario_sha) for p in same_sw.points)
    assert not any(is_finished(out, p.id, p.scenario_sha) for p in changed.points)  # rerun


def test_recalibration_makes_points_stale(serial, tmp_path, monkeypatch):
    """A point computed with other fitted coefficients is not a result of this sweep: a
    scenario's own calibration file is fingerprinted by content, a device profile's by its
    fitted files."""
    from simulator.devices import load_profile
    from simulator.sweep.runner import is_finished

    f, out, _ = serial
    assert all(is_finished(out, p.id, p.scenario_sha) for p in build_sweep(str(f)).points)
    prof = load_profile("H100")
    monkeypatch.setattr(type(prof), "fitted_sha", lambda self: "recalibrated")
    assert not any(is_finished(out, p.id, p.scenario_sha) for p in build_sweep(str(f)).points)
    monkeypatch.undo()
    cal = tmp_path / "cal.yaml"
    cal.write_text((Path(__file__).parents[2] / "simulator" / "devices" / "h100" /
                    prof.calibration_file).read_text())
    own = build_sweep(str(f), [f"simulation.calibration={cal}"])
    cal.write_text(cal.read_text().replace("idle_w: 70.0", "idle_w: 71.0"))
    assert [p.scenario_sha for p in own.points] != \
        [p.scenario_sha for p in build_sweep(str(f), [f"simulation.calibration={cal}"]).points]


def test_cli_sweep_from_flags_and_rerun_skips(tmp_path):
    f = scenario_file(tmp_path)
    out = tmp_path / "cli"
    args = ["sweep", str(f), "--grid", "deployment.tp=2,4", "-o", str(out), "--workers", "1", "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert len(pd.read_parquet(out / "results.parquet")) == 2
    r = CliRunner().invoke(main, args[:-1])
    assert r.exit_code == 0 and "0 run, 2 already done" in r.output


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("sweep,flags,needle", [
    (None, ["--grid", "deployment.tpp=2,4"], "deployment.tpp: unknown field (did you mean 'tp'?)"),
    (None, ["--grid", "deploymnt.tp=2,4"], "deploymnt: unknown field (did you mean 'deployment'?)"),
    (None, ["--grid", "workload.classes.chta.slo.ttft_s=1,2"],
     "workload.classes.chta: unknown field (did you mean 'chat'?)"),
    (None, ["--grid", "deployment.tp=2,three"], "deployment.tp"),
    (None, ["--grid", "facility.pue=1.2,hot"], "facility.pue"),
    (None, ["--grid", "deployment.tp="], "sweep.grid.deployment.tp: grid has no values"),
    ({"grid": {}}, [], "sweep.grid: grid is empty"),
    ({"grid": {"deployment.tp": []}}, [], "sweep.grid.deployment.tp: grid has no values"),
    ({"gird": {"deployment.tp": [2]}}, [], "sweep.gird: unknown field (did you mean 'grid'?)"),
    ({"points": [{"workload.rate_per_s": "fast"}]}, [], "workload.rate_per_s"),
    (None, [], "no sweep"),
])
def test_bad_input_one_line_exit_2_nothing_run(tmp_path, sweep, flags, needle):
    f = scenario_file(tmp_path, sweep)
    out = tmp_path / "never"
    r = CliRunner().invoke(main, ["sweep", str(f), "-o", str(out), "--quiet", *flags])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.output
    assert not out.exists()


def test_bad_point_names_the_point(tmp_path):
    f = scenario_file(tmp_path, {"grid": {"deployment.tp": [2, 3]}})
    with pytest.raises(ScenarioError, match=r"deployment.tp: .*\(sweep point deployment.tp=3\)"):
        build_sweep(str(f))


def test_failed_point_is_reported_after_the_others(tmp_path, monkeypatch):
    from simulator.sweep import commands

    def flaky(sc, out_dir):
        if sc.deployment.tp == 4:
            raise FleetsimError("boom")
        return commands.run_command(sc, out_dir)

    monkeypatch.setitem(commands.COMMANDS, "flaky", flaky)
    f = scenario_file(tmp_path, {"grid": {"deployment.tp": [2, 4]}, "command": "flaky"})
    with pytest.raises(FleetsimError, match="1 of 2 sweep points failed.*boom"):
        run_sweep(build_sweep(str(f)), tmp_path / "out", workers=1, progress=False)
    assert len(pd.read_parquet(tmp_path / "out" / "results.parquet")) == 1


def test_resume_after_sigkill_of_the_cli(serial, tmp_path):
    """A real kill (SIGKILL, no cleanup) part-way through; the rerun completes the same table."""
    import os
    import signal
    import subprocess
    import sys
    import time

    f, _, table = serial
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simulator", "sweep", str(f), "-o", str(out), "--workers", "1",
           "--quiet"]
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, cwd=repo, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(not p.name.startswith(".") for p in (out / "points").glob("*")):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    killed = proc.returncode == -signal.SIGKILL
    n_before = len([p for p in (out / "points").glob("*") if not p.name.startswith(".")])
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    same(pd.read_parquet(out / "results.parquet"), table)
    assert not list((out / "points").glob(".*"))
    print(f"killed={killed} points finished before the kill={n_before}")
