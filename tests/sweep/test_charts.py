"""Charts render from real sweep and run results; plot and report commands; chart helpers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from simulator.charts import plot_all
from simulator.charts.draw import BUILDERS, load_results, nodes_needed_frame
from simulator.charts.plots import gwh_per_day, pareto_front
from simulator.cli import main
from simulator.scenario.load import load_scenario
from simulator.sweep import build_sweep, run_sweep
from simulator.sweep.commands import run_command

CLASS = {"input_tokens": {"dist": "fixed", "value": 400},
         "output_tokens": {"dist": "exponential", "median": 200},
         "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}

#: one sweep that supports every sweep chart: a mix grid, one-at-a-time uncertain inputs
#: around a baseline, a cap pair, and rate x nodes
PLANNING = {
    "name": "charts-test", "model": "Llama-3.1-8B", "deployment": {"nodes": 1, "tp": 2},
    "workload": {"arrival": "poisson", "rate_per_s": 20.0,
                 "classes": {"chat": CLASS, "long": {**CLASS, "input_tokens": {"dist": "fixed", "value": 3000}}},
                 "mix": {"chat": "rest", "long": 0.1}},
    "simulation": {"requests": 80, "warmup_requests": 8, "seed": 5},
    "sweep": {
        "grid": {"workload.mix.long": [0.0, 0.3]},
        "points": [{}, {"facility.pue": 1.1}, {"facility.pue": 1.4},
                   {"facility.host_idle_w": 700}, {"facility.host_idle_w": 1300},
                   {"deployment.gpu_cap_w": 350}, {"deployment.gpu_cap_w": 700},
                   *[{"workload.rate_per_s": r, "deployment.nodes": n} for r in (10, 80) for n in (1, 2)]],
    },
}

DAY = {"name": "day", "model": "Llama-3.1-8B", "deployment": {"nodes": 1, "tp": 8},
       "workload": {"arrival": "poisson", "rate_per_s": 0.05, "start_hour": 6,
                    "hourly_multipliers": [0.2] * 6 + [1.0] * 12 + [0.5] * 6},
       "simulation": {"duration_s": 7200, "seed": 1}}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("planning")
    f = tmp / "s.yaml"
    f.write_text(yaml.safe_dump(PLANNING))
    run_sweep(build_sweep(str(f)), tmp / "out", workers=2, progress=False)
    return tmp / "out"


@pytest.fixture(scope="module")
def day_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("day")
    f = tmp / "day.yaml"
    f.write_text(yaml.safe_dump(DAY))
    run_command(load_scenario(str(f)), tmp / "run")
    return tmp / "run"


def check_files(paths):
    assert sorted(p.suffix for p in paths) == [".png", ".svg"]
    for p in paths:
        assert p.stat().st_size > 1000, p
    png, svg = sorted(paths)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()


def test_every_chart_renders_from_real_results(sweep_dir, day_dir, tmp_path):
    made, skipped = plot_all(sweep_dir, tmp_path / "sweep")
    # a sweep of runs without a cost section: every chart but the projection ones and cost
    # (the generations chart, a projection sweep over hardware.gpu: tests/sweep/test_generations_chart.py)
    assert {c.name for c in made} == set(BUILDERS) - {
        "facility_power_24h", "energy_per_day_vs_input", "cost_per_query", "generations"}, skipped
    day_made, day_skipped = plot_all(day_dir, tmp_path / "day")
    assert {c.name for c in day_made} == {"facility_power_24h", "energy_per_query_by_class"}
    for c in [*made, *day_made]:
        check_files(c.paths)
    notes = dict(day_skipped)
    assert "deployment.gpu_cap_w" in notes["power_cap"]


def test_plot_command_draws_and_notes_skipped(day_dir, tmp_path):
    r = CliRunner().invoke(main, ["plot", str(day_dir), "-o", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert r.output.count("drew ") == 2 and "skipped power_cap: needs a sweep over" in r.output
    assert (tmp_path / "c" / "facility_power_24h.svg").stat().st_size > 1000


def test_report_is_one_self_contained_html(sweep_dir, tmp_path):
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, ["report", str(sweep_dir), "-o", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert page.count("<figure data-chart=") == 6 and page.count("<svg") >= 6
    assert not re.search(r'(src|href)="(http|file|/)', page)  # nothing outside the file
    body = page[page.index('<table id="results">'):]
    assert body.count("<tr") == 1 + 13  # header + one row per point
    assert "facility_power_24h" in page  # the note on the chart it could not draw
    assert 'id="headline"' in page and "Recommended" in page


def test_plot_rejects_a_folder_without_results(tmp_path):
    r = CliRunner().invoke(main, ["plot", str(tmp_path)])
    assert r.exit_code == 2 and "not a sweep" in r.output


def test_one_at_a_time_pue_points_scale_facility_energy_exactly(sweep_dir):
    r = load_results(sweep_dir)
    t = r.table
    base = t[t[r.params].isna().all(axis=1)]
    assert len(base) == 1 and "workload.mix.long" in r.grid_params
    pue = t[t["facility.pue"].notna()]
    for col in ("energy_facility_j", "energy_facility_wh_per_day"):
        ratio = pue[col].to_numpy() / float(base[col].iloc[0])
        assert ratio == pytest.approx(pue["facility.pue"].to_numpy() / 1.2, rel=1e-12)  # base PUE 1.2


def test_gwh_per_day_units():
    # 1 MW held for 24 h is 24 MWh/day = 0.024 GWh/day; fleet scale multiplies
    assert gwh_per_day(24e6) == pytest.approx(0.024)
    assert gwh_per_day(24e6, fleet_scale=50) == pytest.approx(1.2)


def test_pareto_front_mask():
    x = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    y = np.array([5.0, 3.0, 1.0, 3.5, 6.0])
    assert pareto_front(x, y).tolist() == [True, True, True, False, False]


def test_nodes_needed_is_smallest_fleet_meeting_the_slo():
    t = pd.DataFrame({"workload.rate_per_s": [10, 10, 10, 40, 40, 40],
                      "deployment.nodes": [1, 2, 4, 1, 2, 4],
                      "slo_attainment.chat": [0.995, 1.0, 1.0, 0.5, 0.97, 0.999],
                      "slo_attainment.long": [0.999, 1.0, 1.0, 0.9, 1.0, 0.98]})
    df = nodes_needed_frame(t, [], 0.99).set_index("rate_per_s")
    assert df.loc[10.0, "nodes"] == 1
    assert math.isnan(df.loc[40.0, "nodes"]) and df.loc[40.0, "max_nodes"] == 4  # worst class 0.98
    assert nodes_needed_frame(t, [], 0.97).set_index("rate_per_s").loc[40.0, "nodes"] == 2
    assert df.loc[40.0, "queries_per_day"] == 40 * 86400
