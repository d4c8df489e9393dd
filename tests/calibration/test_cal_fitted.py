"""The shipped calibration file: loads, every coefficient finite and physical, errors reproducible."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simulator.calibration import fit_ops
from simulator.calibration import sources as S
from simulator.catalog import CATALOG
from simulator.devices import load_calibration, load_profile, profile_dir
from simulator.physics.params import RooflineOp
from simulator.physics.timing import TimingModel

REPO = Path(__file__).resolve().parents[2]
H100_DIR = profile_dir("H100")
FILES = [H100_DIR / "calibration.yaml", H100_DIR / "calibration-splitwise2023.yaml"]


def _floats(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _floats(v)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_loads_and_coefficients_physical(path):
    cal = load_calibration(path)
    t, p = cal.timing, cal.power
    assert all(math.isfinite(x) for x in _floats(cal.model_dump()))
    ops: dict[str, RooflineOp] = {**t.gemm, **t.elementwise, "attn_prefill": t.attn_prefill,
                                  "attn_decode": t.attn_decode}
    for name in ("qkv", "o", "up", "down", "lm_head", "default"):
        assert name in t.gemm
    for name in ("norm", "rope", "act", "add", "emb", "default"):
        assert name in t.elementwise
    for name, op in ops.items():
        assert 0 < op.eta_compute_max <= 1 and 0 < op.eta_memory <= 1, name
        assert 0 <= op.overhead_s < 1e-3, name
        assert 0 <= op.m_half_tokens < 5000, name
    for name in ("qkv", "o", "up", "down"):
        assert 0.5 <= t.gemm[name].eta_compute_max <= 0.95  # sustained GEMMs: ~75-80 % of peak
        assert 0.6 <= t.gemm[name].eta_memory <= 1.0
    assert set(t.all_reduce) == {2, 4, 8}
    for f in t.all_reduce.values():
        assert 0 <= f.alpha_s < 1e-3 and 0 < f.beta_s_per_byte < 1e-10  # > 10 GB/s
    assert 0 <= t.iteration_fixed_s < 0.05 and 0 <= t.per_seq_s < 1e-3
    assert 60 <= p.idle_w <= 80
    assert p.idle_w <= p.p_busy_w < 700
    assert 0 < p.p_active_w <= 700 - p.p_busy_w  # W of a fully active phase
    assert 1e13 <= p.activity_flops_per_s <= 2e15
    assert 0 < p.e_byte_j < 1e-9           # J per HBM byte
    assert cal.provenance["sources"] and cal.errors


def test_residuals_and_errors_present():
    cal = load_calibration(FILES[0])
    for q in ("prefill_time", "decode_time", "itl", "gpu_power", "j_per_token", "op_qkv", "op_up",
              "op_norm", "all_reduce"):
        r = cal.residuals[q]
        assert 3 <= len(r) <= 200 and all(math.isfinite(x) and -1 < x < 5 for x in r)
    e = cal.errors
    assert e["method"] == "leave-one-model-out"
    assert e["mlenergy"]["runs"] >= 50 and e["per_op"]["ops"]["qkv"]["points"] > 5000


def test_per_op_predictions_within_reported_mape():
    """A sample of the Vidur points, predicted by the shipped coefficients through the same
    roofline the simulator uses, lands within the MAPE the file reports (in-sample fit)."""
    cal = load_calibration(FILES[0])
    t = S.load_vidur_tables(REPO / "calibration" / "data" / "sources" / "vidur-h100")
    sample = t.iloc[::37]
    pred = fit_ops.predict_ops(sample, cal.timing.gemm, cal.timing.elementwise)
    ape = np.abs(pred / sample["t_s"].to_numpy() - 1)
    for op, idx in sample.groupby("op").indices.items():
        reported = cal.errors["per_op"]["ops"][op]["mape_in_sample"]
        assert ape[idx].mean() <= 1.35 * reported + 0.01, op


def test_fitter_and_simulator_share_the_roofline():
    cal = load_calibration(FILES[0])
    tm = TimingModel(CATALOG["Llama-2-70B"], 4, "bf16", cal.timing, "bf16", load_profile("H100").gpu)
    for g in tm.gemms:
        for m in (1, 64, 1000, 4096):
            sim = tm.gemm(g.op, m, g.k, g.n).time_s
            fit = float(fit_ops.gemm_time(cal.timing.gemm[g.op], m, g.k, g.n))
            assert sim == pytest.approx(fit, rel=1e-12)
