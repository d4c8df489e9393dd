"""Power model of the shipped calibration: prefill near the limit, decode far below."""

from __future__ import annotations

from simulator.catalog import CATALOG
from simulator.devices import load_profile
from simulator.physics.power import DecodeSpan, iteration_cost
from simulator.physics.shapes import IterationShape, decode_shape
from simulator.physics.timing import TimingModel


def test_prefill_near_cap_decode_far_below():
    prof = load_profile("H100")
    cal, d = prof.calibration(), prof.dvfs()
    tm = TimingModel(CATALOG["Llama-3.1-70B"], 8, "bf16", cal.timing, "bf16", prof.gpu)
    pre = IterationShape(prefill_tokens=8192, prefill_attn_pairs=IterationShape.causal_pairs(8192, 0),
                         prefill_seqs=1, sampled_seqs=1)
    p_pre = iteration_cost(cal.power, tm.work(pre), 700.0, d).power_w
    p_dec = iteration_cost(cal.power, tm.work(decode_shape(1, 1000)), 700.0, d).power_w
    assert p_pre >= 550.0
    assert p_pre <= 700.0 + 1e-9
    assert p_dec < p_pre - 150.0
    assert cal.power.idle_w < p_dec


def test_decode_energy_linear_in_context():
    prof = load_profile("H100")
    cal = prof.calibration()
    tm = TimingModel(CATALOG["Llama-3.1-8B"], 1, "bf16", cal.timing, "bf16", prof.gpu)
    span = DecodeSpan(tm.decode_line(32), cal.power, 700.0, prof.dvfs())
    costs = [span.one(c) for c in (1000.0, 2000.0, 3000.0)]
    e = [c.energy_j for c in costs]
    t = [c.time_s for c in costs]
    assert abs((e[2] - e[1]) - (e[1] - e[0])) < 1e-12 * max(e)
    assert abs((t[2] - t[1]) - (t[1] - t[0])) < 1e-12 * max(t)


def test_the_closed_form_run_metrics_price_power_on_the_runs_own_gpu():
    """steady_metrics (the sensitivity study of `fleetsim calibrate`) with a power model: a
    run's ITL and per-GPU power come out finite and physical, under the run's GPU's cap."""
    from pathlib import Path

    from simulator.calibration import mlenergy
    from simulator.calibration import sources as S
    from simulator.devices import load_profile

    data = Path(__file__).resolve().parents[2] / "calibration" / "data"
    ml, _ = S.load_mlenergy(data / "sources" / "mlenergy-v3" / "runs.csv", gpu="H100")
    lengths = S.load_output_lengths(data / "sources" / "mlenergy-v3" / "output_lengths.csv", ml)
    ml["lengths"] = [lengths[r] for r in ml["row"]]
    cond = mlenergy.load_conditions(data / "mlenergy_conditions.yaml")
    cal = load_profile("H100").calibration()
    run = next(ml.itertuples(index=False))
    m = mlenergy.steady_metrics(run, cond, cal.timing, cal.power)
    assert 1e-3 < m["itl_s"] < 1.0
    assert cal.power.idle_w < m["gpu_power_w"] <= 700.0
