"""The sampled level: perturbed physics is exact, the window ledger matches the engine's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.api import simulate
from simulator.devices import load_profile
from simulator.physics.host import HostPower
from simulator.physics.power import demanded_energy_j
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel
from simulator.projection.sample import Perturbation, level_scenario, measure, perturb_calibration
from tests.conftest import timeline_energy_j
from tests.projection.conftest import tiny

H100 = load_profile("H100")
CAL = H100.calibration()


def _work(cal, shape: IterationShape):
    sc = tiny()
    return TimingModel(sc.model_shape(), 8, "fp8", cal.timing, "bf16", H100.gpu).work(shape)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 2.0), st.integers(1, 4096), st.integers(0, 256))
def test_equal_time_factors_scale_every_iteration_exactly(f, prefill, decodes):
    shape = IterationShape(prefill_tokens=prefill,
                           prefill_attn_pairs=IterationShape.causal_pairs(prefill, 0),
                           prefill_seqs=1, sampled_seqs=decodes + 1, decode_seqs=decodes,
                           decode_ctx_tokens=decodes * 300)
    base = _work(CAL, shape)
    pert = _work(perturb_calibration(CAL, Perturbation(f, f, 1.0)), shape)
    assert pert.time_s == pytest.approx(f * base.time_s, rel=1e-12)
    assert pert.flops == base.flops and pert.hbm_bytes == base.hbm_bytes


def test_power_factor_scales_busy_power_not_idle():
    cal = perturb_calibration(CAL, Perturbation(gpu_power_factor=1.25))
    assert cal.power.idle_w == CAL.power.idle_w
    from simulator.physics.timing import Work
    w = Work(0.01, 1e12, 1e10, ((0.008, 1e12, 5e9),))
    assert demanded_energy_j(cal.power, w) == pytest.approx(1.25 * demanded_energy_j(CAL.power, w))


def test_nominal_perturbation_is_the_calibration_itself():
    assert perturb_calibration(CAL, Perturbation()) is CAL


def test_length_scale_moves_every_class_distribution():
    sc = tiny()
    lsc = level_scenario(sc, 2.0, 1, 100, 10.0, 0, Perturbation(input_scale=2.0, output_scale=0.5))
    c = lsc.workload.classes["chat"]
    assert c.input_tokens.value == 400 and c.output_tokens.median == pytest.approx(30)
    assert lsc.workload.rate_per_s == pytest.approx(2.0)
    assert lsc.workload.hourly_multipliers is None and lsc.projection is None


def test_window_ledger_over_the_whole_run_is_the_node_timelines():
    """The window integral over [0, end] equals the integral of the node timelines, computed
    independently (interval by interval) by the ledger's timeline code."""
    sc = level_scenario(tiny(), 3.0, 2, 200, 10.0, 1)
    res = simulate(sc)
    led = res.ledger.window(0.0, res.end_s)
    gpu_j, host_j = timeline_energy_j(res, range(2))
    assert led.gpu_j == pytest.approx(gpu_j, rel=1e-9)
    assert led.host_j == pytest.approx(host_j, rel=1e-9)
    # host: idle + 0.35 W per GPU W above idle (the profile's model; the rating never binds here)
    pool = res.fleet.pools[0]
    host_busy = host_j - pool.host.idle_w * 2 * res.end_s
    above_idle_j = gpu_j - pool.idle_w * 16 * res.end_s
    assert pool.host.load_factor * above_idle_j == pytest.approx(host_busy, rel=1e-9)
    # and a window is the prorated share: two halves add up to the whole
    mid = res.end_s / 2
    a, b = res.ledger.window(0.0, mid), res.ledger.window(mid, res.end_s)
    for f in ("busy_gpu_j", "prefill_gpu_j", "idle_gpu_j", "host_j", "busy_gpu_s", "tokens_out"):
        assert getattr(a, f) + getattr(b, f) == pytest.approx(getattr(led, f), rel=1e-9), f


def test_measure_gives_per_node_power_between_idle_and_rating():
    res = simulate(level_scenario(tiny(), 3.0, 2, 300, 10.0, 1))
    lv = measure(res, 3.0)
    host = HostPower(1000.0, 0.35, 8, CAL.power.idle_w, 10200.0)
    p = sum(lv.node_power(host).values())
    assert 8 * CAL.power.idle_w + 1000 < p < 8 * 700 + host.node_w(8 * 700)
    assert 0 < lv.busy_gpu_fraction <= 1
    assert lv.throughput_per_node == pytest.approx(3.0, rel=0.25)
    same = lv.rescaled(3.0)
    assert same.gpu_decode_w == lv.gpu_decode_w and same.gpu_idle_w == pytest.approx(lv.gpu_idle_w)


def test_replay_level_is_the_fleet_rate_trace_thinned_to_the_sampled_share():
    """A replay level speeds the traces up to the fleet's rate and keeps the sampled nodes'
    share of its requests, so its arrival rate is the sampled nodes' rate."""
    from pathlib import Path

    from simulator.projection.sample import trace_rate_per_s
    from simulator.scenario.load import load_scenario
    from simulator.workload.arrivals import Workload

    root = Path(__file__).resolve().parents[2]
    sc = load_scenario(root / "scenarios" / "azure-mix.yaml")
    tr = trace_rate_per_s(sc)
    lv = level_scenario(sc, 1.5, 2, 500, 10.0, 0, trace_rate=tr, fleet_rate=15000.0)
    wl = lv.workload
    assert wl.time_scale == pytest.approx(15000.0 / tr)
    assert wl.replay_share == pytest.approx(3.0 / 15000.0)
    assert Workload(wl, 0, lv.base_dir).mean_rate_per_s() == pytest.approx(3.0)
    # without a fleet rate the sampled nodes replay the whole trace at their own rate
    own = level_scenario(sc, 1.5, 2, 500, 10.0, 0, trace_rate=tr).workload
    assert own.replay_share == 1.0 and own.time_scale == pytest.approx(3.0 / tr)
