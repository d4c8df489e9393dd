"""A fleet of several pools: numbering, inheritance, per-pool metrics that add up to the fleet,
the same physics as a one-pool fleet, and bad input that names the pool's field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.api import simulate
from simulator.errors import ScenarioError
from simulator.scenario.load import scenario_from_dict
from tests.conftest import assert_refused_in_one_line, small, timeline_energy_j


def two_pools(**over) -> dict:
    d = small(**over)
    d["deployment"] = {"nodes": 1, "tp": 2}
    d["pools"] = [{"name": "small", "deployment": {"nodes": 1}},
                  {"name": "wide", "deployment": {"nodes": 2, "tp": 4}}]
    return d


def test_pools_inherit_the_top_level_sections_field_by_field():
    sc = scenario_from_dict(two_pools())
    a, b = sc.pool_specs()
    assert (a.deployment.nodes, a.deployment.tp) == (1, 2)
    assert (b.deployment.nodes, b.deployment.tp) == (2, 4)
    assert a.model == b.model == "Llama-3.1-8B"
    assert sc.nodes == 3 and sc.replicas == 4 + 2 * 2


def test_nodes_and_replicas_are_numbered_through_the_pools():
    res = simulate(scenario_from_dict(two_pools()))
    f = res.fleet
    assert f.node_pool == [0, 1, 1]
    assert [r.node for r in f.replicas] == [0, 0, 0, 0, 1, 1, 2, 2]
    assert [r.tp for r in f.replicas] == [2] * 4 + [4] * 4
    assert [r.pool for r in f.replicas] == [0] * 4 + [1] * 4


def test_per_pool_metrics_add_up_to_the_fleet():
    res = simulate(scenario_from_dict(two_pools()))
    s = res.summary
    pools = s["pools"]
    assert set(pools) == {"small", "wide"}
    for key in ("energy_gpu_j", "energy_host_j", "energy_it_j", "energy_facility_j",
                "energy_gpu_prefill_j", "energy_gpu_idle_j", "throughput_output_tokens_per_s"):
        assert sum(p[key] for p in pools.values()) == pytest.approx(s[key], rel=1e-9), key
    assert sum(p["requests_completed"] for p in pools.values()) == s["requests_completed"]
    assert sum(p["gpus"] for p in pools.values()) == s["gpus"] == 24
    # fleet means are the node/GPU-weighted means of the pools'
    assert sum(p["node_power_w_mean"] * p["nodes"] for p in pools.values()) / 3 == pytest.approx(
        s["node_power_w_mean"], rel=1e-9)
    assert s["node_power_w_peak"] == max(p["node_power_w_peak"] for p in pools.values())
    assert s["tp"] is None and pools["wide"]["tp"] == 4
    # both pools served traffic, and the ledger integrates to the same energy per pool
    for pool in res.fleet.pools:
        gpu_j, _ = timeline_energy_j(res, pool.node_range)
        assert gpu_j == pytest.approx(pools[pool.name]["energy_gpu_j"], rel=1e-9)
        assert pools[pool.name]["requests_completed"] > 0


def test_one_explicit_pool_is_the_top_level_fleet():
    a = simulate(scenario_from_dict(small()))
    d = small()
    d["pools"] = [{"name": "default"}]
    b = simulate(scenario_from_dict(d))
    assert a.requests.equals(b.requests)
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)


def test_mixed_pools_coalesced_equals_stepped():
    d = two_pools()
    d["simulation"]["requests"] = 200
    co = simulate(scenario_from_dict(d))
    d["simulation"]["engine"] = "stepped"
    st = simulate(scenario_from_dict(d))
    for col in ("arrival_s", "ttft_s", "e2e_s", "energy_j"):
        np.testing.assert_allclose(co.requests[col], st.requests[col], rtol=1e-9, atol=1e-12)
    assert co.summary["energy_gpu_j"] == pytest.approx(st.summary["energy_gpu_j"], rel=1e-9)


def test_row_budget_spans_pools():
    d = two_pools(workload__rate_per_s=40.0)
    d["power"] = {"row_budget_w": 11_000.0, "telemetry_interval_s": 0.5}
    res = simulate(scenario_from_dict(d))
    cap = res.summary["capping"]
    assert cap["rows"][0]["nodes"] == [0, 1, 2] and cap["cap_lowerings"] > 0
    lowered = {r.pool for r in res.fleet.replicas if r.cap_w < 700.0}
    assert lowered == {0, 1}  # the uniform policy caps every pool of the row


@pytest.mark.parametrize("change, field", [
    (lambda d: d["pools"].append({"name": "small"}), "two pools are named 'small'"),
    (lambda d: d["pools"][1]["deployment"].update(gpu_cap_w=900.0), "pools.1.deployment.gpu_cap_w"),
    (lambda d: d["pools"][0].update(hardware={"gpu": "H10"}), "did you mean"),
    (lambda d: d["pools"][1].update(name="9wide"), "pool name"),
    (lambda d: d["pools"].clear(), "pools is empty"),
    (lambda d: d.setdefault("power", {}).update(node_caps_w={2: 100.0}), "power.node_caps_w: node 2"),
])
def test_bad_pools_name_the_field(change, field):
    d = two_pools()
    change(d)
    assert_refused_in_one_line(d, field)


def test_memory_error_names_the_pool():
    d = two_pools()
    d["pools"][1]["model"] = "Llama-3.1-405B"
    from simulator.engine.fleet import check_memory

    with pytest.raises(ScenarioError, match=r"pools\.1\.deployment.*does not fit"):
        check_memory(scenario_from_dict(d))
