"""End-to-end projections of the tiny scenario: the summary contract, conservation of the
energy split, determinism, workers, autoscaling and Monte Carlo bands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.projection.project import project
from tests.projection.conftest import tiny

CONTRACT = ["gwh_per_day_facility_p5", "gwh_per_day_facility_p50", "gwh_per_day_facility_p95",
            "gwh_per_day_it_p50", "wh_per_query_p50", "nodes_peak", "nodes_mean",
            "slo_attainment", "gwh_per_day_gpu", "gwh_per_day_host",
            "gwh_per_day_facility_overhead", "gwh_per_day_gpu_prefill", "gwh_per_day_gpu_decode",
            "gwh_per_day_gpu_idle", "wh_per_query_iqr", "tco2_per_day_p50", "hourly"]


def test_summary_contract_and_energy_split(tiny_projection):
    s = tiny_projection.summary
    for key in CONTRACT:
        assert key in s, key
    assert set(s["wh_per_query_p50"]) == set(s["slo_attainment"]) == {"chat"}
    assert s["gwh_per_day_facility_p5"] <= s["gwh_per_day_facility_p50"] <= s["gwh_per_day_facility_p95"]
    it = s["gwh_per_day_it_nominal"]
    assert s["gwh_per_day_gpu"] + s["gwh_per_day_host"] == pytest.approx(it, rel=1e-12)
    assert (s["gwh_per_day_gpu_prefill"] + s["gwh_per_day_gpu_decode"] + s["gwh_per_day_gpu_idle"]
            == pytest.approx(s["gwh_per_day_gpu"], rel=1e-12))
    assert s["gwh_per_day_facility_nominal"] == pytest.approx(1.2 * it, rel=1e-12)
    assert s["gwh_per_day_facility_overhead"] == pytest.approx(0.2 * it, rel=1e-9)
    assert s["wh_per_query_all_in"] * s["queries_per_day"] == pytest.approx(
        s["gwh_per_day_facility_nominal"] * 1e9, rel=1e-12)
    assert s["nodes_peak"] == s["nodes_mean"] == 40  # always on
    h = tiny_projection.hourly
    assert h["energy_facility_j"].sum() / 3.6e12 == pytest.approx(s["gwh_per_day_facility_nominal"])
    # carbon: 300 g/kWh constant
    assert s["tco2_per_day_nominal"] == pytest.approx(
        s["gwh_per_day_facility_nominal"] * 1e6 * 300 / 1e6, rel=1e-9)
    q25, q50, q75 = (s[f"wh_per_query_p{q}"]["chat"] for q in (25, 50, 75))
    assert 0 < q25 <= q50 <= q75 and s["wh_per_query_iqr"]["chat"] == pytest.approx(q75 - q25)
    # a busier hour draws more power (always on: same nodes, more load)
    busy = h.groupby("multiplier")["facility_power_w"].mean()
    assert busy.is_monotonic_increasing


def test_deterministic_and_independent_of_workers(tiny_projection):
    again = project(tiny(), workers=2)
    a, b = tiny_projection.summary, again.summary
    assert a == b
    assert tiny_projection.draws.equals(again.draws)


def test_draw_inputs_stay_in_declared_ranges(tiny_projection):
    d = tiny_projection.draws
    assert len(d) == 4
    # centred on the nominal: PUE 1.2 +- 0.1, host idle 1,000 W x [0.7, 1.3]
    assert d["pue"].between(1.1, 1.3).all() and d["host_idle_w"].between(700, 1300).all()
    assert d["host_load_factor"].between(0.35 * 0.7, 0.35 * 1.3).all()
    assert d["output_length_scale"].between(0.8, 1.25).all()
    assert (d["compute_time_factor"] != 1).any()


def test_zero_width_ranges_and_no_residuals_reproduce_the_nominal_day(tiny_projection):
    sc = tiny("projection.uncertainty.draws=2", "projection.uncertainty.timing_residuals=false",
              "projection.uncertainty.gpu_power_residuals=false",
              "projection.uncertainty.pue_offset=[0,0]", "projection.uncertainty.host_idle_scale=[1,1]",
              "projection.uncertainty.host_load_scale=[1,1]",
              "projection.uncertainty.input_length_scale=[1,1]",
              "projection.uncertainty.output_length_scale=[1,1]")
    s = project(sc).summary
    nominal = tiny_projection.summary["gwh_per_day_facility_nominal"]
    for q in ("p5", "p50", "p95"):
        assert s[f"gwh_per_day_facility_{q}"] == pytest.approx(nominal, rel=1e-12)


def test_longer_outputs_cost_more_energy(tiny_projection):
    s = project(tiny("projection.uncertainty.draws=0",
                     "workload.classes.chat.output_tokens.median=90")).summary
    assert s["gwh_per_day_facility_nominal"] > tiny_projection.summary["gwh_per_day_facility_nominal"]
    assert s["gwh_per_day_facility_p50"] == s["gwh_per_day_facility_nominal"]  # no draws


def test_autoscale_powers_nodes_down_and_saves_energy(tiny_projection):
    sc = tiny("projection.uncertainty.draws=0", "projection.idle.policy=autoscale",
              "projection.idle.min_nodes=2", "projection.fleet.nodes=auto")
    p = project(sc)
    s = p.summary
    cap = s["capacity_queries_per_s_per_node"]
    assert cap > 0
    q = p.plan.fleet_rate_per_s
    assert s["nodes_fleet"] == math.ceil(1.2 * q.max() / cap - 1e-9)
    assert s["nodes_min"] >= 2 and s["nodes_peak"] == s["nodes_fleet"]
    assert s["nodes_mean"] < s["nodes_peak"]
    assert s["gwh_per_day_warmup"] > 0
    # every hour at or below the per-node capacity less the headroom
    assert np.all(p.plan.rate_per_node <= cap / 1.2 * (1 + 1e-9))
    assert min(s["slo_attainment"].values()) >= 0.99
    # the same hours on the 40-node always-on fleet cost more than scaling down
    assert s["gwh_per_day_it_nominal"] < tiny_projection.summary["gwh_per_day_it_nominal"]


def test_draws_that_change_only_post_hoc_factors_reuse_simulations(monkeypatch):
    """Draws whose timing and lengths are nominal reuse the nominal day's simulations (PUE and
    host power are applied per draw, the busy GPU power factor scales an uncapped level): no
    draw simulates, and every draw's day equals the one simulated draw by draw."""
    from simulator.projection.sample import LevelResult

    sets = ("projection.uncertainty.draws=5", "projection.uncertainty.timing_residuals=false",
            "projection.uncertainty.input_length_scale=[1,1]",
            "projection.uncertainty.output_length_scale=[1,1]")
    reused = project(tiny(*sets))
    levels = reused.summary["sampling"]["levels"]
    assert reused.summary["sampling"]["draw_levels_reused"] == 5 * levels
    assert reused.draws["gpu_power_factor"].nunique() > 1  # the factor really varies
    # the reference: every draw simulated with its own perturbed physics
    real = LevelResult.with_power_factor
    monkeypatch.setattr(LevelResult, "with_power_factor",
                        lambda self, f: self if f == 1.0 else None)
    simulated = project(tiny(*sets))
    monkeypatch.setattr(LevelResult, "with_power_factor", real)
    assert simulated.summary["sampling"]["draw_levels_reused"] == 0
    assert (simulated.summary["sampling"]["simulations"]
            == reused.summary["sampling"]["simulations"] + 5 * levels)
    for col in ("gwh_per_day_facility", "gwh_per_day_it", "slo_attainment_min"):
        np.testing.assert_allclose(reused.draws[col], simulated.draws[col], rtol=1e-9)


def test_a_power_factor_near_the_cap_is_simulated():
    """Where the scaled power would reach the cap, the draw is not scaled (the cap would bind
    and slow its iterations): with_power_factor refuses it."""
    from simulator.projection.sample import LevelResult

    lv = LevelResult(1.0, 10.0, 100.0, 200.0, 0.5, 8, 70.0, 1.0, gpu_peak_w=600.0,
                     gpu_cap_w=700.0)
    assert lv.with_power_factor(1.1).gpu_prefill_w == pytest.approx(110.0)
    assert lv.with_power_factor(1.2) is None  # 720 W > 700 W
    assert lv.with_power_factor(1.0) is lv


def test_a_dask_cluster_gives_the_local_result(tiny_projection):
    """Draws and levels on the sweep machinery's Dask back end: the same day as in process."""
    import json

    distributed = pytest.importorskip("dask.distributed")
    sc = tiny("projection.uncertainty.draws=2")
    local = project(sc)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        remote = project(sc, cluster=cluster.scheduler_address)
    assert json.dumps(remote.summary, sort_keys=True, default=str) == \
        json.dumps(local.summary, sort_keys=True, default=str)
