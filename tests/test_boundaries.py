"""Energy boundaries in every summary: nested, adding up to the facility energy, per query and
per class."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simulator.api import simulate
from simulator.metrics.boundaries import BOUNDARIES, PARTS
from simulator.projection.project import project
from simulator.scenario.load import load_scenario, scenario_from_dict
from tests.conftest import small

REPO = Path(__file__).resolve().parents[1]


def _check_nested(cum: dict, parts: dict, facility: float) -> None:
    acc = 0.0
    for b, p in zip(BOUNDARIES, PARTS):
        assert parts[p] >= 0
        acc += parts[p]
        assert cum[b] == pytest.approx(acc, rel=1e-12)
    assert cum["facility"] == pytest.approx(facility, rel=1e-9)


def test_run_boundaries_add_up_per_query_and_per_class():
    d = small(workload__mix={"chat": 0.7, "long": 0.3})
    d["workload"]["classes"]["long"] = {"input_tokens": {"dist": "fixed", "value": 100},
                                        "output_tokens": {"dist": "fixed", "value": 400}}
    res = simulate(scenario_from_dict(d))
    s, b = res.summary, res.summary["energy_boundaries"]
    _check_nested(b["cumulative_j"], b["parts_j"], s["energy_facility_j"])
    assert b["parts_j"]["accelerators_active"] + b["parts_j"]["accelerators_idle"] == pytest.approx(
        s["energy_gpu_j"], rel=1e-9)
    done = res.requests[res.requests["state"] == "completed"]
    counts = done.groupby("class", observed=True).size()
    wq = b["wh_per_query"]
    for boundary in BOUNDARIES:
        total = math.fsum(wq["by_class"][c][boundary] * counts[c] for c in counts.index)
        assert total == pytest.approx(wq["overall"][boundary] * counts.sum(), rel=1e-9)
    # classes share every part as they share the attributed busy energy per request
    mean_j = done.groupby("class", observed=True)["energy_j"].mean()
    for boundary in BOUNDARIES:
        assert wq["by_class"]["long"][boundary] / wq["by_class"]["chat"][boundary] == pytest.approx(
            mean_j["long"] / mean_j["chat"], rel=1e-9)
    assert wq["overall"]["facility"] * len(done) * 3600 == pytest.approx(s["energy_facility_j"], rel=1e-9)


def test_projection_boundaries_add_up():
    sc = load_scenario(REPO / "tests" / "projection" / "tiny.yaml", ["projection.uncertainty.draws=0"])
    s = project(sc).summary
    b = s["energy_boundaries"]
    _check_nested(b["cumulative_gwh_per_day"], b["parts_gwh_per_day"], s["gwh_per_day_facility_nominal"])
    wq = b["wh_per_query"]
    assert wq["overall"]["facility"] == pytest.approx(s["wh_per_query_all_in"], rel=1e-9)
    assert wq["overall"]["accelerators_active"] < wq["overall"]["it"] < wq["overall"]["facility"]
