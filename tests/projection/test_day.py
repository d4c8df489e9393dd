"""Unit tests of the day plan and the exact integration of a day (hand-computed values)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.projection.day import (HOURS, DayPlan, Facility, fleet_rate, group_levels,
                                      integrate_day, nodes_for, plan_day)
from tests.projection.conftest import tiny

curves = st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=24, max_size=24).filter(
    lambda m: max(m) > 0)


@given(curves, st.floats(1e3, 1e12))
def test_fleet_rate_spreads_the_daily_volume(m, q):
    r = fleet_rate(q, np.asarray(m))
    assert r.sum() * 3600 == pytest.approx(q, rel=1e-9)
    assert np.all(r >= 0)


@settings(max_examples=200)
@given(st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=24, max_size=24),
       st.floats(0.0, 0.2))
def test_levels_cover_loaded_hours_within_tolerance(rates, tol):
    r = np.asarray(rates)
    level, levels = group_levels(r, np.ones(24), tol)
    assert np.all((level >= 0) == (r > 0))
    assert levels == sorted(levels)
    for i, rep in enumerate(levels):
        members = r[level == i]
        assert members.size
        assert members.max() <= members.min() * (1 + tol) * (1 + 1e-9)
        assert members.min() - 1e-12 <= rep <= members.max() + 1e-12
    if tol == 0:  # one level per distinct rate (rates within rounding, 1e-12, are one)
        pos = np.sort(r[r > 0])
        distinct = int(pos.size > 0) + int(np.sum(pos[1:] > pos[:-1] * (1 + 1e-12)))
        assert len(levels) == distinct


@given(st.floats(0.01, 1e5), st.floats(0.1, 100), st.floats(1.0, 3.0))
def test_nodes_for_is_the_smallest_fleet_with_headroom(rate, cap, headroom):
    n = nodes_for(rate, cap, headroom)
    assert n >= 1
    assert n * cap >= headroom * rate * (1 - 1e-9)
    assert n == 1 or (n - 1) * cap < headroom * rate


def test_autoscale_plan_respects_min_and_fleet():
    sc = tiny("projection.idle.policy=autoscale", "projection.idle.min_nodes=3",
              "projection.fleet.nodes=10")
    m = np.asarray(sc.projection.hourly_multipliers, float)
    plan = plan_day(sc, m, capacity_per_node=2.0)
    q = fleet_rate(sc.projection.queries_per_day, m)
    expect = np.clip([nodes_for(x, 2.0, 1.2) for x in q], 3, 10)
    assert np.array_equal(plan.nodes_on, expect)
    assert np.allclose(plan.rate_per_node * plan.nodes_on, q)
    assert np.array_equal(plan.nodes_switched_on, np.maximum(0, expect - np.roll(expect, 1)))


def _plan(on, rate) -> DayPlan:
    on = np.asarray(on, int)
    return DayPlan(np.ones(HOURS), np.asarray(rate) * on, int(on.max()), on, np.asarray(rate, float),
                   np.zeros(HOURS, int), [1.0], np.maximum(0, on - np.roll(on, 1)))


def test_integrate_day_hand_computed():
    on = [2] * 12 + [5] * 12
    plan = _plan(on, [1.0] * HOURS)
    power = {"gpu_prefill_w": 100.0, "gpu_decode_w": 300.0, "gpu_idle_w": 50.0,
             "host_idle_w": 1000.0, "host_busy_w": 200.0}
    fac = Facility(pue=1.5, host_idle_w=1000.0, host_load_factor=0.0)
    tot, df = integrate_day(plan, [power] * HOURS, fac, warmup_s=600.0, gpu_idle_w_node=560.0,
                            carbon_g_per_kwh=[100.0] * HOURS)
    node_hours = 12 * 2 + 12 * 5
    warm_s = 3 * 600.0  # 3 nodes switched on at hour 12 (none at hour 0: 2 < 5)
    assert tot["energy_gpu_prefill_j"] == pytest.approx(100 * 3600 * node_hours)
    assert tot["energy_gpu_idle_j"] == pytest.approx(50 * 3600 * node_hours + 560 * warm_s)
    assert tot["energy_host_j"] == pytest.approx(1200 * 3600 * node_hours + 1000 * warm_s)
    it = 1650 * 3600 * node_hours + (560 + 1000) * warm_s
    assert tot["energy_it_j"] == pytest.approx(it)
    assert tot["energy_facility_j"] == pytest.approx(1.5 * it)
    assert tot["co2_t"] == pytest.approx(1.5 * it / 3.6e6 * 100 / 1e6)
    # the warm-up is spent in the hour before the nodes serve
    assert df.loc[11, "energy_warmup_j"] == pytest.approx((560 + 1000) * warm_s)
    assert df["energy_warmup_j"].drop(11).sum() == 0
    assert df["facility_power_w"].sum() * 3600 == pytest.approx(tot["energy_facility_j"])
