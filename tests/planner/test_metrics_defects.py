"""Regression tests of issue 17's metric defects: throughput of short runs, and a warm-up that
leaves nothing to measure."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from simulator.api import scenario_from_dict, simulate
from simulator.cli import main
from simulator.errors import ScenarioError

CHAT = {"input_tokens": {"dist": "fixed", "value": 400},
        "output_tokens": {"dist": "exponential", "median": 200},
        "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}


def _sc(rate: float, requests: int, warmup: int, **sim):
    return scenario_from_dict({
        "name": "t", "model": "Llama-3.1-8B", "deployment": {"nodes": 1, "tp": 2},
        "workload": {"arrival": "poisson", "rate_per_s": rate, "classes": {"chat": CHAT}},
        "simulation": {"requests": requests, "warmup_requests": warmup, "seed": 5, **sim}})


@pytest.mark.parametrize("rate", [40.0, 80.0])
def test_short_overloaded_run_reports_its_completion_rate(rate):
    # before the fix: completions counted only up to the last arrival -> 0.0 req/s at 80 offered
    res = simulate(_sc(rate, 80, 8))
    s, df = res.summary, res.requests
    done = df[(df["state"] == "completed") & ~df["warmup"]]
    expected = len(done) / (done["finish_s"].max() - s["window_start_s"])
    assert s["throughput_requests_per_s"] == pytest.approx(expected)
    assert 0.5 < s["throughput_requests_per_s"] <= rate * 1.5
    pool = next(iter(s["pools"].values()))
    assert pool["throughput_requests_per_s"] == pytest.approx(s["throughput_requests_per_s"])


def test_sustained_load_throughput_is_the_offered_rate():
    s = simulate(_sc(4.0, 1500, 100)).summary
    assert s["throughput_requests_per_s"] == pytest.approx(4.0, rel=0.08)


def test_warmup_that_leaves_nothing_to_measure_is_rejected():
    with pytest.raises(ScenarioError, match="simulation.warmup_requests"):
        _sc(4.0, 500, 500)
    with pytest.raises(ScenarioError, match="simulation.warmup_s"):
        _sc(4.0, None, 0, duration_s=10, warmup_s=10)


def test_cli_set_requests_below_warmup_is_one_line_exit_2(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", "scenarios/default.yaml", "-o", str(out),
                                  "--set", "simulation.requests=500"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: scenarios/default.yaml: "
                                                   "simulation.warmup_requests: ")
    assert "n/a" not in r.output and not out.exists()
