"""The optional cost section: validation, run and projection arithmetic, none without it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.api import scenario_from_dict, simulate
from simulator.errors import ScenarioError
from tests.projection.conftest import tiny

CHAT = {"input_tokens": {"dist": "fixed", "value": 400},
        "output_tokens": {"dist": "exponential", "median": 200},
        "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}
BASE = {"name": "c", "model": "Llama-3.1-8B", "deployment": {"nodes": 2, "tp": 2},
        "workload": {"arrival": "poisson", "rate_per_s": 8.0,
                     "classes": {"chat": CHAT, "long": {**CHAT, "output_tokens": {"dist": "fixed", "value": 800}}},
                     "mix": {"chat": 0.7, "long": 0.3}},
        "simulation": {"requests": 300, "warmup_requests": 30, "seed": 2}}


@pytest.mark.parametrize("cost, needle", [
    ({"gpu_hour_usd": 2, "node_capital_usd": 3e5, "amortisation_years": 4}, "not both"),
    ({"node_capital_usd": 3e5}, "go together"),
    ({"electricity_usd_per_kwh": [0.1] * 23}, "exactly 24"),
    ({}, "at least one price"),
    ({"gpu_hour_usd": -1}, "cost.gpu_hour_usd"),
])
def test_bad_cost_is_one_line(cost, needle):
    with pytest.raises(ScenarioError, match=needle) as e:
        scenario_from_dict({**BASE, "cost": cost}, file="f.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("f.yaml: ")


def test_no_cost_section_no_cost_outputs():
    assert "cost" not in simulate(scenario_from_dict(BASE)).summary


def test_run_cost_arithmetic():
    s = simulate(scenario_from_dict({**BASE, "cost": {"gpu_hour_usd": 2.5,
                                                       "electricity_usd_per_kwh": 0.1}})).summary
    c = s["cost"]
    assert c["usd_per_day_hardware"] == pytest.approx(2 * 8 * 2.5 * 24)  # 2 nodes x 8 GPUs
    assert c["usd_per_day_electricity"] == pytest.approx(s["energy_facility_wh_per_day"] / 1e3 * 0.1)
    assert c["usd_per_day"] == pytest.approx(c["usd_per_day_hardware"] + c["usd_per_day_electricity"])
    q_day = s["throughput_requests_per_s"] * 86400
    assert c["usd_per_1000_queries"] == pytest.approx(c["usd_per_day"] / q_day * 1e3)
    assert c["usd_per_million_output_tokens"] == pytest.approx(
        c["usd_per_day"] / (s["throughput_output_tokens_per_s"] * 86400) * 1e6)
    # the classes' shares add back up to the day's cost; long answers cost more
    by = c["usd_per_1000_queries_by_class"]
    done = {k: v["requests_completed"] for k, v in s["classes"].items()}
    total = sum(by[k] / 1e3 * q_day * done[k] / sum(done.values()) for k in by)
    assert total == pytest.approx(c["usd_per_day"])
    assert by["long"] > by["chat"]


def test_capital_cost_amortised():
    s = simulate(scenario_from_dict({**BASE, "cost": {"node_capital_usd": 365e3,
                                                       "amortisation_years": 5}})).summary
    assert s["cost"]["usd_per_day_hardware"] == pytest.approx(2 * 365e3 / (5 * 365))
    assert math.isnan(s["cost"]["usd_per_day_electricity"])


def test_projection_cost_hour_by_hour():
    from simulator.projection.project import project

    prices = [0.05] * 12 + [0.2] * 12
    proj = project(tiny("projection.uncertainty.draws=0",
                        f"cost={{gpu_hour_usd: 2.0, electricity_usd_per_kwh: {prices}}}"))
    c = proj.summary["cost"]
    e_kwh = proj.hourly["energy_facility_j"].to_numpy() / 3.6e6
    assert c["usd_per_day_electricity"] == pytest.approx(float((e_kwh * np.array(prices)).sum()))
    assert c["usd_per_day_hardware"] == pytest.approx(proj.summary["nodes_fleet"] * 8 * 2.0 * 24)
    assert c["usd_per_day_p5"] == c["usd_per_day_p50"] == c["usd_per_day_p95"] == pytest.approx(c["usd_per_day"])
    assert c["usd_per_1000_queries"] == pytest.approx(c["usd_per_day"] / proj.summary["queries_per_day"] * 1e3)
