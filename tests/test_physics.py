"""Unit tests of the pure physics: timing, power, closed-form decode spans, memory."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.catalog import CATALOG
from simulator.devices import load_profile
from simulator.physics.memory import plan_memory
from simulator.physics.params import PowerParams, RooflineOp, TimingParams
from simulator.physics.power import Cost, DecodeSpan, iteration_cost
from simulator.physics.shapes import IterationShape, decode_shape
from simulator.physics.timing import TimingModel, roofline_s

PROFILE = load_profile("H100")
H100 = PROFILE.gpu
CAL = PROFILE.calibration()
DVFS = PROFILE.dvfs()
M70 = CATALOG["Llama-3.1-70B"]


def tm(model=M70, tp=8, precision="bf16"):
    return TimingModel(model, tp, precision, CAL.timing, "bf16", H100)


def test_roofline_hand_computed():
    op = RooflineOp(eta_compute_max=0.5, m_half_tokens=0, eta_memory=0.5, overhead_s=1e-6)
    # compute-bound: 1e12 FLOP at 0.5 * 1e15 = 2 ms
    assert roofline_s(op, 1000, 1e12, 1e3, 1e15, 1e12) == pytest.approx(2e-3 + 1e-6)
    # memory-bound: 1e9 bytes at 0.5 * 1e12 = 2 ms
    assert roofline_s(op, 1, 1.0, 1e9, 1e15, 1e12) == pytest.approx(2e-3 + 1e-6)


def test_gemm_flops_and_bytes_are_exact():
    t = tm(tp=1)
    w = t.gemm("down", 10, 4096, 8192)
    assert w.flops == 2 * 10 * 4096 * 8192
    assert w.hbm_bytes == 4096 * 8192 * 2 + 10 * (4096 + 8192) * 2


def test_fp8_halves_weight_bytes_and_speeds_memory_bound_decode():
    b, f = tm(precision="bf16"), tm(precision="fp8")
    assert f.gemm("up", 1, 8192, 1000, "fp8").hbm_bytes < b.gemm("up", 1, 8192, 1000).hbm_bytes
    assert f.iteration_s(decode_shape(8, 8000)) < b.iteration_s(decode_shape(8, 8000))


def test_fp8_prefill_is_faster_than_bf16_under_the_700w_limit():
    """An FP8 tensor-core cycle does twice the FLOPs of a BF16 one for the same energy: FP8
    GEMM FLOPs count as half a BF16 FLOP (BF16 equivalents), so FP8 prefill demands no more
    power than BF16 and stays faster once the 700 W limit binds."""
    m = CATALOG["Llama-3.1-405B-FP8-dynamic"]  # every linear layer in FP8
    n = 4096
    s = IterationShape(prefill_tokens=n, prefill_attn_pairs=n * (n + 1) // 2, prefill_seqs=1,
                       sampled_seqs=1)
    work = {p: tm(m, 8, p).work(s) for p in ("bf16", "fp8")}
    gemm_flops = {p: sum(tm(m, 8, p).gemm(g.op, n, g.k, g.n, p).flops for g in tm(m, 8, p).gemms
                         if g.op != "router") for p in ("bf16", "fp8")}
    assert gemm_flops["fp8"] == pytest.approx(gemm_flops["bf16"] * H100.peak_bf16_flops / H100.peak_flops("fp8"))
    assert work["fp8"].flops < work["bf16"].flops
    cost = {p: iteration_cost(CAL.power, work[p], 700.0, DVFS) for p in ("bf16", "fp8")}
    assert cost["fp8"].time_s < 0.8 * cost["bf16"].time_s
    assert cost["fp8"].power_w <= 700.0 + 1e-9


def test_meta_fp8_checkpoint_runs_attention_in_bf16():
    """Meta's Llama-3.1-405B FP8 keeps qkv and o in BF16: its decode reads more weight bytes
    than an all-linear FP8 checkpoint of the same shape."""
    s = decode_shape(8, 8000)
    meta = tm(CATALOG["Llama-3.1-405B"], 8, "fp8").work(s)
    dyn = tm(CATALOG["Llama-3.1-405B-FP8-dynamic"], 8, "fp8").work(s)
    assert meta.hbm_bytes > dyn.hbm_bytes and meta.time_s > dyn.time_s


def test_decode_time_is_linear_in_context_and_matches_line():
    t = tm()
    line = t.decode_line(16)
    for ctx in (16, 1000, 50_000):
        assert t.iteration_s(decode_shape(16, ctx)) == pytest.approx(line.t0_s + line.t1_s * ctx, rel=1e-12)


@given(n=st.integers(1, 256), c1=st.integers(1, 10**5), c2=st.integers(1, 10**5))
@settings(max_examples=50, deadline=None)
def test_more_work_never_faster(n, c1, c2):
    t = tm()
    lo, hi = sorted((c1, c2))
    assert t.iteration_s(decode_shape(n, lo)) <= t.iteration_s(decode_shape(n, hi))
    assert t.iteration_s(decode_shape(n, lo)) <= t.iteration_s(decode_shape(n + 1, lo + 1))


def test_tp_shards_the_work():
    s = IterationShape(prefill_tokens=2048, prefill_attn_pairs=IterationShape.causal_pairs(2048, 0),
                       prefill_seqs=1, sampled_seqs=1)
    w1, w8 = tm(tp=1).work(s), tm(tp=8).work(s)
    assert w8.flops == pytest.approx(w1.flops / 8, rel=0.01)


def test_kv_heads_replicate_when_tp_exceeds_them():
    m = CATALOG["Llama-3.1-8B"]  # 8 KV heads
    assert TimingModel(m, 8, "bf16", CAL.timing, "bf16", H100).kv_heads_gpu == 1.0
    assert TimingModel(m, 1, "bf16", CAL.timing, "bf16", H100).kv_heads_gpu == 8.0


def test_cap_never_exceeded_and_never_faster():
    p = PowerParams(idle_w=70, p_busy_w=100, p_active_w=500, activity_flops_per_s=2e14, e_byte_j=1e-10)
    s = IterationShape(prefill_tokens=4096, prefill_attn_pairs=IterationShape.causal_pairs(4096, 0),
                       prefill_seqs=1, sampled_seqs=1)
    w = tm().work(s)
    free = iteration_cost(p, w, 700.0, DVFS)
    for cap in (200.0, 350.0, 500.0, 700.0):
        c = iteration_cost(p, w, cap, DVFS)
        assert c.power_w <= cap * (1 + 1e-12)
        assert c.time_s >= free.time_s * (1 - 1e-12)
    assert iteration_cost(p, w, 1e6, DVFS) == Cost(free.time_s, free.energy_j)  # cap above demand


def _step_sum(span: DecodeSpan, c0: int, k: int) -> tuple[float, float]:
    t = e = 0.0
    for j in range(k):
        c = span.one(c0 + span.n_seqs * j)
        t += c.time_s
        e += c.energy_j
    return t, e


@given(n=st.integers(1, 300), c0=st.integers(1, 200_000), k=st.integers(1, 400),
       cap=st.floats(200, 700))
@settings(max_examples=100, deadline=None)
def test_decode_span_closed_form_equals_stepping(n, c0, k, cap):
    # steep power so that the cap binds for some spans
    p = PowerParams(idle_w=70, p_busy_w=150, p_active_w=700, activity_flops_per_s=1e14, e_byte_j=2.5e-10)
    span = DecodeSpan(tm().decode_line(n), p, cap, DVFS)
    t, e = _step_sum(span, c0, k)
    assert span.duration_s(c0, k) == pytest.approx(t, rel=1e-9)
    assert span.energy_j(c0, k) == pytest.approx(e, rel=1e-9)


@given(n=st.integers(1, 64), c0=st.integers(1, 50_000), k=st.integers(1, 300),
       frac=st.floats(0, 1))
@settings(max_examples=100, deadline=None)
def test_iterations_within_inverts_duration(n, c0, k, frac):
    span = DecodeSpan(tm().decode_line(n), CAL.power, 700.0, DVFS)
    total = span.duration_s(c0, k)
    elapsed = frac * total
    kd = span.iterations_within(c0, elapsed, k)
    assert span.duration_s(c0, kd) <= elapsed + 1e-15
    if kd < k:
        assert span.duration_s(c0, kd + 1) > elapsed


def test_memory_405b_bf16_does_not_fit_but_fp8_does():
    m = CATALOG["Llama-3.1-405B"]
    bf16 = plan_memory(m, 8, "bf16", "bf16", 0.9, 8192, 256, 16, 2.2, 16.0, H100)
    fp8 = plan_memory(m, 8, "fp8", "bf16", 0.9, 8192, 256, 16, 2.2, 16.0, H100)
    assert bf16.kv_blocks == 0
    assert fp8.kv_tokens > 32_768


def test_memory_weights_per_gpu():
    m = CATALOG["Llama-3.1-70B"]
    plan = plan_memory(m, 8, "bf16", "bf16", 0.9, 8192, 256, 16, 2.2, 16.0, H100)
    assert plan.weight_bytes == pytest.approx(m.params_total * 2 / 8)  # kv_heads = tp: no copies
    assert 69e9 < m.params_total < 72e9  # Llama-3.1-70B has 70.6 B parameters
    assert plan.usable_bytes == pytest.approx(0.9 * H100.memory_bytes)


@pytest.mark.parametrize("name,params_b", [("Llama-2-7B", 6.74), ("Llama-2-70B", 69.0),
                                           ("Llama-3.1-8B", 8.03), ("Llama-3.1-405B", 405.9),
                                           ("Qwen3-32B", 32.8), ("CodeLlama-34B", 33.7)])
def test_catalog_parameter_counts_match_published(name, params_b):
    assert CATALOG[name].params_total / 1e9 == pytest.approx(params_b, rel=0.02)


def _linear_from_ops(t: TimingModel, m_rows: int, sampled: int) -> tuple[float, float, float]:
    """The non-attention work composed from the per-op methods (gemm, _rest, elementwise_op),
    in the order TimingModel._linear sums them."""
    from simulator.physics.layers import ACT_BYTES

    tt = fl = by = 0.0
    for g in t.gemms:
        w = t.gemm(g.op, m_rows, g.k, g.n, g.precision)
        tt, fl, by = tt + g.count * w.time_s, fl + g.count * w.flops, by + g.count * w.hbm_bytes
    rest = t._rest(m_rows)
    emb = t.elementwise_op("emb", m_rows, t.model.hidden_size * ACT_BYTES)
    head_t = head_f = head_b = 0.0
    if sampled:
        h = t.gemm("lm_head", sampled, t.model.hidden_size, t.model.vocab_size / t.tp)
        head_t, head_f, head_b = h.time_s, h.flops, h.hbm_bytes
    p = t.params
    tt += rest.time_s + emb.time_s + head_t + p.iteration_fixed_s + p.per_seq_s * sampled
    fl += head_f
    by += rest.hbm_bytes + emb.hbm_bytes + head_b
    return tt, fl, by


@pytest.mark.parametrize("gpu,model,tp,precision", [
    ("H100", "Llama-3.1-70B", 8, "bf16"), ("H100", "Llama-3.1-8B", 1, "fp8"),
    ("H100", "Llama-3.1-405B", 8, "fp8"), ("B200", "Qwen3-235B-A22B", 4, "fp8"),
    ("H100", "gpt-oss-120b", 2, "mxfp4"), ("H100", "DeepSeek-V3", 8, "fp8"),
    ("H100", "Llama-4-Maverick-17B-128E", 8, "fp8")])
def test_linear_written_out_equals_its_ops_bit_for_bit(gpu, model, tp, precision):
    """_linear inlines gemm/elementwise_op over constants looked up once: the same floats,
    exactly, for every row count (with and without sampled rows)."""
    prof = load_profile(gpu)
    t = TimingModel(CATALOG[model], tp, precision, prof.calibration().timing, "bf16", prof.gpu)
    for m_rows in (1, 2, 7, 64, 333, 4096, 8192):
        for sampled in (0, 1, min(m_rows, 256)):
            w = t._linear(m_rows, sampled)
            tt, fl, by = _linear_from_ops(t, m_rows, sampled)
            assert w.phases[0] == (tt, fl, by)
            if t.model.is_moe:  # the routed experts come on top, as their own phase
                e = t.experts(m_rows)
                tt, fl, by = tt + e.time_s, fl + e.flops, by + e.hbm_bytes
            assert (w.time_s, w.flops, w.hbm_bytes) == (tt, fl, by)
