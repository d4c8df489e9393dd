"""``fleetsim project`` on the command line: a full run, bad input (one line naming the field,
exit 2, nothing written), the sweep command and `fleetsim plot` on a projection folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from tests.projection.conftest import TINY

REPO = Path(__file__).resolve().parents[2]


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _bad(tmp_path, *sets, scenario=TINY):
    out = tmp_path / "out"
    r = _cli("project", str(scenario), "-o", str(out), "--quiet",
             *[a for s in sets for a in ("--set", s)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    assert not out.exists()
    return lines[0]


def test_project_writes_the_folder(tmp_path):
    out = tmp_path / "day"
    r = subprocess.run([sys.executable, "-m", "simulator", "project", str(TINY), "-o", str(out),
                        "--set", "projection.uncertainty.draws=2"], capture_output=True,
                       text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "/day facility P50" in r.stdout and "peak" in r.stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["uncertainty"]["draws"] == 2
    for f in ("hourly.csv", "levels.csv", "draws.csv", "facility_power.parquet",
              "scenario.resolved.yaml", "charts/facility_power_24h.png"):
        assert (out / f).exists(), f
    assert len(pd.read_csv(out / "hourly.csv")) == 24
    # `fleetsim plot` draws the 24-hour curve from the projection folder
    r = _cli("plot", str(out), "-o", str(tmp_path / "charts"))
    assert r.exit_code == 0 and "drew facility_power_24h" in r.output


def test_shares_that_do_not_sum_to_one(tmp_path):
    sc = yaml.safe_load(TINY.read_text())
    sc["workload"]["classes"]["long"] = {"output_tokens": {"dist": "fixed", "value": 900}}
    sc["workload"]["mix"] = {"chat": 0.7, "long": 0.2}
    p = tmp_path / "mix.yaml"
    p.write_text(yaml.safe_dump(sc))
    line = _bad(tmp_path, scenario=p)
    assert "workload.mix" in line and "sum to 0.9" in line


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 40).filter(lambda n: n != 24))
def test_daily_curve_needs_24_values(tmp_path_factory, n):
    line = _bad(tmp_path_factory.mktemp("c"), f"projection.hourly_multipliers={[1.0] * n}")
    assert "projection.hourly_multipliers" in line and "24" in line


def test_fleet_too_small_names_the_size_that_would_meet_it(tmp_path):
    line = _bad(tmp_path, "projection.fleet.nodes=2", "projection.uncertainty.draws=0")
    assert "projection.fleet.nodes" in line and "too few" in line
    need = int(line.split("at least ")[1].split()[0])
    assert need > 2
    # and that size does meet it
    out = tmp_path / "ok"
    r = _cli("project", str(TINY), "-o", str(out), "--quiet", "--set",
             f"projection.fleet.nodes={need}", "--set", "projection.uncertainty.draws=0",
             "--no-charts")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("sets,field", [
    (("projection.uncertainty.pue_offset=[0.1,-0.1]",), "projection.uncertainty.pue_offset"),
    (("projection.uncertainty.pue=[1.1,1.3]",), "pue was replaced by pue_offset"),
    (("projection.fleet.nodes=0",), "projection.fleet.nodes"),
    (("projection.queries_per_day=-1",), "projection.queries_per_day"),
    (("projection.carbon.intensity_g_per_kwh=[1,2]",), "projection.carbon.intensity_g_per_kwh"),
    (("projection.fleet.nodez=3",), "projection.fleet.nodez"),
    (("projection=null",), "projection"),
    (("projection.curve_trace.path=nope.csv",), "projection"),
    (("projection.hourly_multipliers=null", "projection.curve_trace.path=nope.csv"),
     "projection.curve_trace.path"),
])
def test_bad_projection_fields(tmp_path, sets, field):
    assert (f": {field}" if "replaced" not in field else field) in _bad(tmp_path, *sets)


def test_curve_from_a_trace_must_cover_every_hour(tmp_path):
    # the Azure head sample spans minutes, not a day
    trace = REPO / "tests/workload/data/azure_conv_head.csv"
    line = _bad(tmp_path, "projection.hourly_multipliers=null", f"projection.curve_trace.path={trace}")
    assert "projection.curve_trace" in line and "of 24 hours" in line


def test_sweep_runs_projections(tmp_path):
    from simulator.sweep import COMMANDS, build_sweep, run_sweep

    assert "project" in COMMANDS
    sc = yaml.safe_load(TINY.read_text())
    sc["projection"]["uncertainty"]["draws"] = 0
    sc["sweep"] = {"command": "project", "grid": {"projection.queries_per_day": [1e7, 2e7]}}
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(sc))
    res = run_sweep(build_sweep(str(p)), tmp_path / "out", workers=1, progress=False)
    t = res["table"].sort_values("projection.queries_per_day")
    assert list(t["gwh_per_day_facility_p50"].diff().dropna() > 0) == [True]
