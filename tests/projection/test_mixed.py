"""Fleets of several pools over a day (simulator/projection/mixed.py): sizing, the hourly split,
per-pool results that add up to the fleet's, and bad input naming the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import ScenarioError
from simulator.projection.mixed import size_pools, split_hours
from simulator.scenario.load import load_scenario

MIXED = Path(__file__).resolve().parent / "tiny-mixed.yaml"


def mixed(*overrides: str):
    return load_scenario(MIXED, list(overrides))


# ------------------------------------------------------------------ pure pieces, by hand
def test_size_pools_keeps_the_given_nodes_and_sizes_the_auto_pool():
    caps = {"h100": 5.0, "b200": 9.0}
    # peak 100 q/s x headroom 1.2 = 120; 10 H100 nodes give 50; B200: ceil(70 / 9) = 8
    assert size_pools({"h100": 10, "b200": "auto"}, caps, 100.0, 1.2) == {"h100": 10, "b200": 8}
    # the kept pool already covers the peak: no B200 node
    assert size_pools({"h100": 30, "b200": "auto"}, caps, 100.0, 1.2) == {"h100": 30, "b200": 0}
    assert size_pools({"h100": 2, "b200": 11}, caps, 100.0, 1.2) == {"h100": 2, "b200": 11}
    with pytest.raises(ScenarioError, match="projection.fleet.nodes.*add nodes"):
        size_pools({"h100": 2, "b200": 5}, caps, 100.0, 1.2)


def test_capacity_split_loads_every_pool_equally():
    q = np.array([10.0, 50.0, 100.0])
    caps, sizes = {"a": 5.0, "b": 9.0}, {"a": 10, "b": 8}
    r = split_hours(q, ["a", "b"], sizes, caps, "capacity", 1.2)
    np.testing.assert_allclose(r["a"] + r["b"], q)
    # utilisation (rate per node / capacity per node) is the same in both pools every hour
    np.testing.assert_allclose(r["a"] / sizes["a"] / caps["a"], r["b"] / sizes["b"] / caps["b"])
    np.testing.assert_allclose(r["a"] / q, 50.0 / 122.0)


def test_fill_order_fills_the_first_pool_up_to_its_capacity_over_headroom():
    q = np.array([10.0, 50.0, 100.0])
    caps, sizes = {"a": 5.0, "b": 9.0}, {"a": 10, "b": 8}
    r = split_hours(q, ["a", "b"], sizes, caps, ["b", "a"], 1.2)
    np.testing.assert_allclose(r["b"], [10.0, 50.0, 60.0])  # 8 x 9 / 1.2 = 60 at most
    np.testing.assert_allclose(r["a"], [0.0, 0.0, 40.0])


# ------------------------------------------------------------------ a projection of two pools
@pytest.fixture(scope="module")
def proj():
    from simulator.projection.project import project

    return project(mixed())


def test_pools_add_up_to_the_fleet(proj):
    s = proj.summary
    pools = s["pools"]
    assert set(pools) == {"h100", "b200"}
    assert pools["h100"]["nodes_fleet"] == 2 and pools["b200"]["nodes_fleet"] >= 1
    assert s["nodes_fleet"] == sum(p["nodes_fleet"] for p in pools.values())
    assert pools["h100"]["gpu"] == "H100-SXM5-80GB" and pools["b200"]["gpu"] == "B200-SXM-180GB"
    assert sum(p["share_of_queries"] for p in pools.values()) == pytest.approx(1.0)
    assert s["gwh_per_day_facility_nominal"] == pytest.approx(
        sum(p["gwh_per_day_facility_nominal"] for p in pools.values()), rel=1e-9)
    # hour by hour, and draw by draw
    h = proj.hourly
    per_pool = sum(pr.hourly["facility_power_w"].to_numpy() for pr in proj.pools)
    np.testing.assert_allclose(h["facility_power_w"], per_pool, rtol=1e-12)
    np.testing.assert_allclose(h["queries_per_s.h100"] + h["queries_per_s.b200"], h["queries_per_s"])
    np.testing.assert_allclose(proj.draws["gwh_per_day_facility"],
                               sum(pr.draws["gwh_per_day_facility"].to_numpy() for pr in proj.pools))
    assert s["gwh_per_day_facility_p5"] <= s["gwh_per_day_facility_p50"] <= s["gwh_per_day_facility_p95"]
    # the fleet's energy per token lies between its pools'
    j = sorted(p["j_per_output_token_gpu"] for p in pools.values())
    assert j[0] <= s["j_per_output_token_gpu"] <= j[1]
    assert all(v >= s["slo_target"] for v in s["slo_attainment"].values())


def test_the_auto_pool_is_the_smallest_that_covers_the_peak_with_headroom(proj):
    s = proj.summary
    c = {n: p["capacity_queries_per_s_per_node"] for n, p in s["pools"].items()}
    n_b = s["pools"]["b200"]["nodes_fleet"]
    need = 1.2 * s["peak_queries_per_s"]
    assert 2 * c["h100"] + n_b * c["b200"] >= need - 1e-9
    assert 2 * c["h100"] + (n_b - 1) * c["b200"] < need


def test_capacity_split_keeps_the_pools_equally_loaded(proj):
    s = proj.summary
    h = proj.hourly
    util = {n: h[f"queries_per_s.{n}"] / p["nodes_fleet"] / p["capacity_queries_per_s_per_node"]
            for n, p in s["pools"].items()}
    np.testing.assert_allclose(util["h100"], util["b200"], rtol=1e-9)


def test_output_folder_and_fill_order(proj, tmp_path):
    from simulator.projection.output import write_projection
    from simulator.projection.project import project

    write_projection(proj, tmp_path / "a", charts=True)
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["fleet_split"] == "capacity" and (tmp_path / "a" / "charts" / "facility_power_24h.png").exists()
    # the B200 pool first: it runs fuller, the H100 pool takes the overflow
    f = project(mixed("projection.fleet.split=[b200, h100]")).summary
    assert f["pools"]["b200"]["share_of_queries"] > s["pools"]["b200"]["share_of_queries"]
    assert f["pools"]["b200"]["nodes_fleet"] == s["pools"]["b200"]["nodes_fleet"]
    assert not math.isclose(f["gwh_per_day_facility_nominal"], s["gwh_per_day_facility_nominal"])


@pytest.mark.parametrize("override, words", [
    ("projection.fleet.nodes=5", "projection.fleet.nodes: a fleet of several pools needs each pool's nodes"),
    ("projection.fleet.nodes={h100: auto, b200: auto}", "at most one pool may be 'auto'"),
    ("projection.fleet.nodes={h100: 2, b300: auto}", "no pool named 'b300'"),
    ("projection.fleet.nodes={h100: 2}", "pool 'b200' has no entry"),
    ("projection.fleet.split=[b200]", "projection.fleet.split: a fill order names every pool once"),
])
def test_bad_mixed_fleets_name_the_field(override, words):
    with pytest.raises(ScenarioError) as e:
        mixed(override)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_mixed_fleets_need_open_poisson_or_gamma_arrivals():
    with pytest.raises(ScenarioError, match="workload.arrival: a projection of several pools"
                                            " needs poisson or gamma"):
        mixed("workload.arrival=closed_loop", "workload.clients=4")


def test_a_mapping_of_nodes_needs_pools():
    from tests.projection.conftest import tiny

    with pytest.raises(ScenarioError, match="projection.fleet.nodes: a mapping"):
        tiny("projection.fleet.nodes={default: 3}")


def test_autoscaled_fill_order_switches_the_overflow_pool_down_first():
    from simulator.projection.project import project

    pr = project(mixed("projection.idle.policy=autoscale", "projection.fleet.split=[b200, h100]"))
    s = pr.summary
    on_h, on_b = pr.hourly["nodes_on.h100"].to_numpy(), pr.hourly["nodes_on.b200"].to_numpy()
    assert (on_h >= 1).all() and (on_b >= 1).all()  # idle.min_nodes in each pool
    assert (on_h <= 2).all() and (on_b <= s["pools"]["b200"]["nodes_fleet"]).all()
    np.testing.assert_array_equal(on_h + on_b, s["hourly"]["nodes_on"])
    # at night the B200 pool carries the load and the H100 pool idles at its minimum
    night = pr.hourly["queries_per_s"].to_numpy() == pr.hourly["queries_per_s"].min()
    assert (pr.hourly["queries_per_s.h100"].to_numpy()[night] == 0).all() and (on_h[night] == 1).all()
