"""Hot-path copies equal their references: where the engine's physics inlines arithmetic for
speed, the inlined copy gives exactly (bit for bit) what the readable reference gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.catalog import CATALOG
from simulator.devices import load_profile
from simulator.physics.power import DecodeSpan, demanded_energy_j, iteration_cost
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import ACT_BYTES, TimingModel, Work, roofline_s

PROF = load_profile("H100")
CAL, DVFS = PROF.calibration(), PROF.dvfs()
MODELS = ["Llama-3.1-8B", "Llama-3.1-70B", "Qwen3-32B", "phi-2"]


def timing(name: str, tp: int) -> TimingModel:
    return TimingModel(CATALOG[name], tp, "bf16", CAL.timing, "bf16", PROF.gpu)


def reference_work(tm: TimingModel, s: IterationShape) -> Work:
    """``TimingModel.work`` written out from its pieces (non-attention work of the rows, then
    prefill attention per chunk set and decode attention per context token)."""
    lin = tm._linear(s.prefill_tokens + s.decode_seqs, s.sampled_seqs)
    t = fl = by = 0.0  # attention of the iteration, then added to the non-attention work
    phases = [(lin.time_s, lin.flops, lin.hbm_bytes)]
    L = tm.model.layers
    if s.prefill_tokens:
        flops = tm.attn_flops_pair_layer * s.prefill_attn_pairs
        nbytes = ((s.prefill_tokens + s.prefill_prefix_tokens) * tm.kv_bytes_token_layer
                  + 2 * s.prefill_tokens * tm.heads_gpu * tm.model.head_dim * ACT_BYTES)
        t += L * roofline_s(CAL.timing.attn_prefill, s.prefill_tokens, flops, nbytes, tm.peak, tm.bw)
        fl += L * flops
        by += L * nbytes
        phases.append((t, fl, by))
    if s.decode_seqs:
        a0, a1, f1, b1 = tm.decode_attention(s.decode_seqs)
        t += a0 + a1 * s.decode_ctx_tokens
        fl += f1 * s.decode_ctx_tokens
        by += b1 * s.decode_ctx_tokens
        phases.append((a1 * s.decode_ctx_tokens, f1 * s.decode_ctx_tokens, b1 * s.decode_ctx_tokens))
    return Work(lin.time_s + t, lin.flops + fl, lin.hbm_bytes + by, tuple(phases))


shapes = st.builds(
    lambda p, pre, n, ctx, done: IterationShape(
        p, IterationShape.causal_pairs(p, pre) if p else 0.0, pre if p else 0, 1 if p else 0,
        n + (done if p else 0), n, n * ctx),
    st.integers(0, 4096), st.integers(0, 8192), st.integers(0, 256), st.integers(1, 8000),
    st.integers(0, 1))


@given(st.sampled_from(MODELS), st.sampled_from([1, 2, 4, 8]), shapes)
@settings(max_examples=200, deadline=None)
def test_work_equals_its_pieces(name, tp, s):
    if s.prefill_tokens == 0 and s.decode_seqs == 0:
        return
    tm = timing(name, tp)
    w, ref = tm.work(s), reference_work(tm, s)
    assert (w.time_s, w.flops, w.hbm_bytes, w.phases) == (ref.time_s, ref.flops, ref.hbm_bytes,
                                                          ref.phases)


works = st.builds(lambda t, u, b: Work(t, u * t * 989e12, b * t * 3.35e12,
                                             ((t, u * t * 989e12, b * t * 3.35e12),)),
                  st.floats(1e-4, 1.0), st.floats(0.0, 1.2), st.floats(0.0, 1.2))


@given(works, st.floats(200.0, 700.0))
@settings(max_examples=200, deadline=None)
def test_iteration_cost_inlines_demanded_energy(w, cap):
    c = iteration_cost(CAL.power, w, cap, DVFS)
    e = demanded_energy_j(CAL.power, w)
    if e / w.time_s <= cap:
        assert (c.time_s, c.energy_j) == (w.time_s, e)


@given(st.sampled_from(MODELS), st.integers(1, 256), st.integers(1, 10**6),
       st.floats(200.0, 700.0), st.floats(0.5, 3.0))
@settings(max_examples=200, deadline=None)
def test_decode_span_one_and_first_equal_iteration_cost(name, n, c, cap, steep):
    p = CAL.power.model_copy(update={"p_busy_w": 100.0 * steep,
                                     "p_active_w": CAL.power.p_active_w * steep,
                                     "e_byte_j": CAL.power.e_byte_j * steep})
    tm = timing(name, 8)
    line = tm.decode_line(n)
    span = DecodeSpan(line, p, cap, DVFS)
    w = line.work(c)
    ref = iteration_cost(p, w, cap, DVFS)
    one = span.one(c)
    if span.free:  # the span's linear form: the same sum, in another order
        assert one.time_s == ref.time_s
        assert one.energy_j == pytest.approx(ref.energy_j, rel=1e-12)
    else:
        assert (one.time_s, one.energy_j) == (ref.time_s, ref.energy_j)
    assert span.duration_s(c, 1) == span.first_s(c) == ref.time_s
    # the line is the timing model's decode-only iteration
    full = tm.work(IterationShape(0, 0.0, 0, 0, n, n, c))
    assert w.time_s == pytest.approx(full.time_s, rel=1e-12)
    assert w.hbm_bytes == pytest.approx(full.hbm_bytes, rel=1e-12)
    assert [x for ph in w.phases for x in ph] == pytest.approx([x for ph in full.phases for x in ph],
                                                               rel=1e-12)


@given(st.sampled_from(MODELS), st.integers(1, 256), st.integers(0, 10**6),
       st.floats(200.0, 700.0), st.floats(0.5, 3.0), st.floats(0.0, 30.0), st.integers(1, 5000))
@settings(max_examples=300, deadline=None)
def test_decode_span_cut_equals_boundary_and_duration(name, n, c, cap, steep, elapsed, k_max):
    """The engine's cut of a jump (:meth:`DecodeSpan.cut`) is exactly
    :meth:`~DecodeSpan.boundary_at_or_after` and :meth:`~DecodeSpan.duration_s` there."""
    p = CAL.power.model_copy(update={"p_busy_w": 100.0 * steep,
                                     "p_active_w": CAL.power.p_active_w * steep,
                                     "e_byte_j": CAL.power.e_byte_j * steep})
    span = DecodeSpan(timing(name, 8).decode_line(n), p, cap, DVFS)
    for t in (elapsed, span.duration_s(c, min(k_max, 7)), 0.0):
        kb = span.boundary_at_or_after(c, t, k_max)
        assert span.cut(c, t, k_max) == (kb, span.duration_s(c, kb))


@given(works, st.floats(50.0, 700.0))
@settings(max_examples=300, deadline=None)
def test_clock_ratio_bisection_inlines_power(w, cap):
    """The DVFS bisection written out (:meth:`ClockModel.ratio_at`) takes exactly the steps of
    one on :meth:`ClockModel.power_w`; an activity passed in is the one it would sum."""
    from simulator.physics.activity import activity_s
    from simulator.physics.dvfs import BISECT_STEPS, ClockModel, dvfs_capped

    m = ClockModel(CAL.power, w, DVFS)
    if m.power_w(1.0) <= cap:
        ref = 1.0
    elif m.power_w(DVFS.r_min) > cap:
        ref = DVFS.r_min
    else:
        lo, hi = DVFS.r_min, 1.0
        for _ in range(BISECT_STEPS):
            mid = 0.5 * (lo + hi)
            if m.power_w(mid) <= cap:
                lo = mid
            else:
                hi = mid
        ref = lo
    assert m.ratio_at(cap, DVFS.r_min) == ref
    e = demanded_energy_j(CAL.power, w)
    assert dvfs_capped(CAL.power, w, e, cap, DVFS) == dvfs_capped(
        CAL.power, w, e, cap, DVFS, activity_s(CAL.power, w.phases))


@given(st.floats(allow_nan=True, allow_infinity=True, width=64),
       st.floats(0.0, 5000.0), st.floats(0.0, 2.0), st.floats(0.0, 200.0), st.floats(0.0, 20000.0))
@settings(max_examples=400, deadline=None)
def test_host_node_w_number_path_equals_numpy(gpu_w, idle_w, load_factor, gpu_idle_w, rated_w):
    """:meth:`HostPower.node_w` on a Python float (written out without numpy) gives the very
    value, sign of zero and NaN included, that its numpy path gives (a numpy scalar)."""
    import math

    import numpy as np

    from simulator.physics.host import HostPower

    h = HostPower(idle_w, load_factor, 8, gpu_idle_w, rated_w)
    with np.errstate(all="ignore"):  # numpy warns where extreme numbers overflow; floats don't
        fast, ref = h.node_w(gpu_w), h.node_w(np.float64(gpu_w))
    assert type(fast) is float and type(ref) is float
    if math.isnan(ref):
        assert math.isnan(fast)
    else:
        assert fast == ref and math.copysign(1.0, fast) == math.copysign(1.0, ref)
