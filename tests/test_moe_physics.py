"""Mixture-of-experts timing and power terms (simulator/physics/timing.py): distinct experts
under Zipf popularity, and the expert kernels' busy view in the power model."""

from __future__ import annotations

import math

import pytest

from simulator.calibration.extra_shapes import shape
from simulator.devices import load_profile
from simulator.physics.activity import activity_s
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel, _popularity, touched_fraction


@pytest.mark.parametrize("E, k", [(128, 8), (16, 1), (32, 4)])
def test_uniform_routing_is_the_closed_form(E, k):
    for n in (1, 8, 100):
        assert touched_fraction(E, k, n, 0.0) == pytest.approx(1 - (1 - k / E) ** n, rel=1e-12)


@pytest.mark.parametrize("E, k, s", [(128, 8, 1.45), (16, 1, 0.7), (32, 4, 3.0)])
def test_popularity_keeps_k_distinct_experts_per_token(E, k, s):
    q = _popularity(E, k, s)
    assert sum(q) == pytest.approx(k) and max(q) <= 1.0
    assert list(q) == sorted(q, reverse=True)
    assert touched_fraction(E, k, 1, s) * E == pytest.approx(k)  # one token: exactly k
    prev = 0.0
    for n in (2, 8, 64, 512):  # fewer distinct experts than uniform routing, growing with n
        f = touched_fraction(E, k, n, s)
        assert prev < f < touched_fraction(E, k, n, 0.0) + 1e-12
        prev = f


def _model(name, precision, s=0.0, ep=False, tp=1):
    dev = load_profile("H100")
    t = dev.calibration().timing.model_copy(update={"expert_popularity_exponent": s})
    return TimingModel(shape(name), tp, precision, t, "bf16", dev.gpu, ep)


def test_popularity_reads_fewer_expert_bytes_at_small_batch():
    it = IterationShape(sampled_seqs=8, decode_seqs=8, decode_ctx_tokens=8 * 1000)
    uni, zipf = _model("Qwen3-30B-A3B", "bf16", 0.0).work(it), _model("Qwen3-30B-A3B", "bf16", 1.45).work(it)
    assert zipf.hbm_bytes < uni.hbm_bytes and zipf.time_s < uni.time_s


def test_expert_kernels_are_busy_and_dense_iterations_unchanged():
    """The experts are a phase of their own whose rates are those of the same work at the dense
    GEMM's efficiencies (at least the achieved ones); a dense model keeps one non-attention
    phase."""
    it = IterationShape(sampled_seqs=16, decode_seqs=16, decode_ctx_tokens=16 * 500)
    dense = _model("Qwen3-8B", "bf16").work(it)
    assert len(dense.phases) == 2  # non-attention ops, decode attention
    tm = _model("Qwen3-235B-A22B", "fp8", ep=True, tp=4)
    w = tm.work(it)
    e = tm.experts(16)
    assert len(w.phases) == 3 and w.phases[1] == e.phases[0]
    t_e, f_busy, b_busy = e.phases[0]
    assert t_e == pytest.approx(e.time_s)
    assert b_busy >= e.hbm_bytes and f_busy >= e.flops  # busy rates >= achieved rates
    up = tm.params.gemm_op("up")
    assert b_busy / t_e <= tm.bw * up.eta_memory * (1 + 1e-9)  # never above the dense GEMM's
    power = load_profile("H100").calibration().power
    achieved = ((t_e, e.flops, e.hbm_bytes),)
    assert activity_s(power, e.phases) > activity_s(power, achieved)
    assert math.isfinite(w.time_s) and w.time_s > e.time_s and w.hbm_bytes > e.hbm_bytes
