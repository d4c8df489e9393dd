"""A disaggregated fleet's projection: cells of prefill and decode nodes, the split search,
and the day split between the pools (simulator/projection/cells.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import ScenarioError
from simulator.scenario.load import scenario_from_dict
from tests.conftest import assert_refused_in_one_line

REPO = Path(__file__).resolve().parents[2]
CURVE = [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1]


def cell_dict(prefill: int = 1, decode: int = 1, splits=None, draws: int = 2) -> dict:
    """Llama-3.1-70B FP8 at TP 8, one prompt and one token pool, short chat, a small day."""
    d = {
        "name": "cells", "model": "Llama-3.1-70B",
        "deployment": {"tp": 8, "precision": "fp8"},
        "serving": {"max_model_len": 4096},
        "pools": [{"name": "prompt", "role": "prefill", "deployment": {"nodes": prefill}},
                  {"name": "token", "role": "decode", "deployment": {"nodes": decode}}],
        "kv_transfer": {"link": "infiniband", "transfer_power_w": 10.0},
        "workload": {"arrival": "poisson", "rate_per_s": 1.0, "classes": {"chat": {
            "input_tokens": {"dist": "fixed", "value": 1000},
            "output_tokens": {"dist": "exponential", "median": 60},
            "slo": {"ttft_s": 0.3, "tpot_s": 0.02}}}},
        "facility": {"pue": 1.2},
        "simulation": {"requests": 100},
        "projection": {"queries_per_day": 2.0e7, "hourly_multipliers": CURVE,
                       "fleet": {"nodes": "auto"},
                       "sample": {"nodes": 1, "requests": 300, "warmup_s": 5},
                       "uncertainty": {"draws": draws}},
    }
    if splits is not None:
        d["projection"]["fleet"]["prefill_decode_splits"] = splits
    return d


@pytest.fixture(scope="module")
def searched():
    from simulator.projection.project import project

    return project(scenario_from_dict(cell_dict(splits=[[1, 1], [1, 2], [2, 1]])))


# ---------------------------------------------------------------- the cell, by hand
def test_a_cell_sums_its_nodes_gpus_and_hosts():
    from simulator.projection.sample import unit_gpus, unit_host, unit_nodes, with_nodes

    sc = scenario_from_dict(cell_dict(1, 2))
    assert unit_nodes(sc) == {"prompt": 1, "token": 2} and unit_gpus(sc) == 24
    host = unit_host(sc)
    # DGX H100: host idle 1,000 W, 0.35 W per GPU W above idle, rated 10.2 kW; GPU idle 70 W
    assert host.idle_w == pytest.approx(3000.0) and host.rated_w == pytest.approx(30600.0)
    assert host.gpus_per_node == 24 and host.load_factor == pytest.approx(0.35)
    assert float(host.node_w(24 * 70.0 + 1000.0)) == pytest.approx(3000.0 + 350.0)
    big = with_nodes(sc, 3)
    assert [p.deployment.nodes for p in big.pool_specs()] == [3, 6]


def test_a_cells_physical_bound_is_its_slower_side():
    from simulator.engine.fleet import pool_calibration
    from simulator.projection.sample import _replica_bounds, throughput_bound_per_node
    from simulator.workload.arrivals import Workload

    sc = scenario_from_dict(cell_dict(1, 2))
    inp, out = Workload(sc.workload, np.random.SeedSequence(0), sc.base_dir).length_sample(20_000)
    pre, dec = sc.pool_specs()
    prompts = _replica_bounds(pre, pool_calibration(sc, pre), inp, out)[1]
    outputs = 2 * _replica_bounds(dec, pool_calibration(sc, dec), inp, out)[0]
    bound = throughput_bound_per_node(sc, pool_calibration(sc, pre))
    assert bound == pytest.approx(min(prompts, outputs))
    # one more decode node raises the decode side only
    sc3 = scenario_from_dict(cell_dict(1, 3))
    assert throughput_bound_per_node(sc3, pool_calibration(sc3, pre)) == pytest.approx(
        min(prompts, 1.5 * outputs))


def test_a_levels_pools_add_up_and_its_link_power_is_the_transfers():
    from simulator.api import simulate
    from simulator.projection.sample import (LevelJob, level_scenario, measure, run_level)

    sc = scenario_from_dict(cell_dict(1, 2))
    job = LevelJob(sc, 10.0, 2, 300, 5.0, 7, keep_requests=False)
    lv = run_level(job)
    assert lv.gpus_per_node == 24
    assert sum(lv.pool_gpu_w.values()) == pytest.approx(
        lv.gpu_prefill_w + lv.gpu_decode_w + lv.gpu_idle_w, rel=1e-9)
    # the same run by hand: link power = sum of link_w x (overlap of its move with the window)
    res = simulate(level_scenario(sc, 10.0, 2, 300, 5.0, 7), summary=False)
    w0, w1 = res.window_s
    c = res.transfers
    end, move, w = (np.asarray(c[k]) for k in ("end_s", "move_s", "link_w"))
    inside = (end - move >= w0) & (end <= w1)
    assert inside.sum() > 100 and np.all(w == pytest.approx(10.0 * 8))
    lo = float((w * move)[inside].sum()) / (w1 - w0) / 2  # per cell, transfers inside only
    assert lv.link_w >= lo * (1 - 1e-9) and lv.link_w == pytest.approx(
        measure(res, 10.0, False, 2).link_w, rel=1e-12)
    assert lv.link_w <= lo + float((w * move).max()) * 2 / (w1 - w0)


# ---------------------------------------------------------------- the projection
def test_the_split_search_keeps_the_most_queries_per_node(searched):
    s = searched.summary
    d = s["disaggregation"]
    rows = {(r["prefill_nodes"], r["decode_nodes"]): r for r in d["split_search"]}
    assert set(rows) == {(1, 1), (1, 2), (2, 1)}
    per_node = {k: r["capacity_queries_per_s_per_node"] for k, r in rows.items()}
    best = max(per_node, key=per_node.get)
    assert [k for k, r in rows.items() if r["chosen"]] == [best]
    assert d["cell"] == {"prompt": best[0], "token": best[1]}
    for (pre, dec), r in rows.items():
        assert r["capacity_queries_per_s_per_cell"] == pytest.approx(
            r["capacity_queries_per_s_per_node"] * (pre + dec))
    # the chosen cell's searched capacity is the projection's, less the cuts a projection
    # makes when its peak level (its own stream) misses the target: 2 % each
    cuts = s["sampling"]["capacity_cuts"]
    assert d["capacity_queries_per_s_per_cell"] == pytest.approx(
        rows[best]["capacity_queries_per_s_per_cell"] * 0.98 ** cuts, rel=1e-12)
    assert s["capacity_queries_per_s_per_node"] == pytest.approx(per_node[best] * 0.98 ** cuts)


def test_the_fleet_is_whole_cells_and_the_pools_add_up(searched):
    s, hourly = searched.summary, searched.hourly
    d = s["disaggregation"]
    per_cell = sum(d["cell"].values())
    assert d["nodes_per_cell"] == per_cell
    assert s["nodes_fleet"] == d["cells_fleet"] * per_cell
    assert s["hourly"]["nodes_on"] == [n * per_cell for n in hourly["cells_on"]]
    assert list(hourly["nodes_on"]) == s["hourly"]["nodes_on"]
    pools = d["pools"]
    assert sum(p["nodes_fleet"] for p in pools.values()) == s["nodes_fleet"]
    assert pools["prompt"]["role"] == "prefill" and pools["token"]["role"] == "decode"
    assert s["gpus_peak"] == sum(p["gpus_peak"] for p in pools.values())
    # the pools' energies are a partition of the day's
    assert sum(p["gwh_per_day_facility"] for p in pools.values()) == pytest.approx(
        s["gwh_per_day_facility_nominal"], rel=1e-9)
    assert sum(p["share_of_energy"] for p in pools.values()) == pytest.approx(1.0)
    it = sum(hourly[f"energy_it_j.{k}"] for k in pools)
    assert np.allclose(it, hourly["energy_it_j"], rtol=1e-12)
    # a fleet sized for the peak hour: cells x capacity per cell covers headroom x peak
    cap = d["capacity_queries_per_s_per_cell"]
    assert d["cells_fleet"] == int(np.ceil(1.2 * s["peak_queries_per_s"] / cap - 1e-9))
    assert s["slo_attainment"]["chat"] >= 0.99


def test_a_given_split_projects_as_the_searched_one(searched):
    """The split search reuses its capacity search: projecting the chosen cell directly gives
    the same day."""
    from simulator.projection.project import project

    d = searched.summary["disaggregation"]
    direct = project(scenario_from_dict(cell_dict(d["cell"]["prompt"], d["cell"]["token"])))
    assert "split_search" not in direct.summary["disaggregation"]
    for k in ("nodes_fleet", "gwh_per_day_facility_nominal", "capacity_queries_per_s_per_node",
              "gwh_per_day_facility_p50"):
        assert direct.summary[k] == pytest.approx(searched.summary[k], rel=1e-12)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("change, field", [
    (lambda d: d["projection"]["fleet"].update(nodes=4), "projection.fleet.nodes"),
    (lambda d: d["projection"]["fleet"].update(nodes={"prompt": 1, "token": 1}),
     "projection.fleet.nodes"),
    (lambda d: d["pools"].append({"name": "both", "role": "mixed"}) or
     d["projection"]["fleet"].update(prefill_decode_splits=[[1, 1]]),
     "projection.fleet.prefill_decode_splits"),
    (lambda d: d["projection"]["fleet"].update(prefill_decode_splits=[[1, 1, 2]]),
     "projection.fleet.prefill_decode_splits"),
    (lambda d: d["projection"]["fleet"].update(prefill_decode_splits=[[0, 1]]),
     "projection.fleet.prefill_decode_splits"),
])
def test_bad_cell_layouts_fail_in_one_line_naming_the_field(change, field):
    d = cell_dict()
    change(d)
    assert_refused_in_one_line(d, field)


def test_a_split_on_a_fleet_that_is_not_disaggregated_is_refused():
    d = cell_dict(splits=[[1, 1]])
    for p in d["pools"]:
        p["role"] = "mixed"
    del d["kv_transfer"]
    d["projection"]["fleet"]["nodes"] = {"prompt": "auto", "token": 1}
    with pytest.raises(ScenarioError, match=r"prefill_decode_splits: a split is for a"
                       r" disaggregated fleet"):
        scenario_from_dict(d)


def test_the_bundled_scenario_validates_and_a_given_fleet_exits_2(tmp_path):
    path = REPO / "scenarios" / "1b-chat-disaggregated.yaml"
    ok = subprocess.run([sys.executable, "-m", "simulator", "validate", str(path)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "simulator", "project", str(path), "-o",
                          str(tmp_path / "out"), "--set", "projection.fleet.nodes=100"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "projection.fleet.nodes" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
