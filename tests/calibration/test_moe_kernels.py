"""The MoE kernel check (calibration/checks/moe_kernels.csv): fleetsim's expert term per layer,
by hand, and bad rows named."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.calibration.checks import moe_kernel_checks
from simulator.devices import load_profile
from simulator.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "calibration" / "checks" / "moe_kernels.csv"


def test_one_row_by_hand():
    """Mixtral-8x7B, TP 2, BF16, 8 tokens of 2 experts each: under uniform routing (the
    benchmark's random gating, not the fitted popularity) an expert is touched with probability
    1 - (6/8)^8; each GPU reads its half of every touched expert's gate, up and down weights,
    and the 16 rows are too few per expert for the compute side of the roofline to bind."""
    d = moe_kernel_checks(CSV)
    row = d[(d["model"] == "Mixtral-8x7B") & (d["tokens"] == 8)].iloc[0]
    prof = load_profile("H100")
    op = prof.calibration().timing.experts["bf16"]
    hidden, width, rows = 4096, 14336 / 2, 16.0
    touched = 8 * (1 - 0.75 ** 8)
    per_expert = 3 * hidden * width
    flops = 2.0 * rows * per_expert
    nbytes = touched * per_expert * 2.0 + rows * (2 * hidden + 3 * width) * 2.0
    m_eff = rows / touched
    eta_c = op.eta_compute_max * m_eff / (m_eff + op.m_half_tokens)
    t = op.overhead_s + max(flops / (prof.gpu.peak_flops("bf16") * eta_c),
                            nbytes / (prof.gpu.hbm_bw_bytes_per_s * op.eta_memory))
    assert nbytes / (prof.gpu.hbm_bw_bytes_per_s * op.eta_memory) > flops / (prof.gpu.peak_flops("bf16") * eta_c)
    assert row["sim_us"] == pytest.approx(t * 1e6, rel=1e-12)
    assert row["ratio"] == pytest.approx(t * 1e6 / 434.98, rel=1e-12)


def test_every_row_is_a_catalog_moe_and_timed(tmp_path):
    d = moe_kernel_checks(CSV)
    assert len(d) == 33 and (d["sim_us"] > 0).all() and (d["kernel_us"] > 0).all()
    bad = tmp_path / "k.csv"
    text = CSV.read_text().splitlines()
    bad.write_text("\n".join([text[0], text[1].replace("Mixtral-8x7B", "Llama-3.1-8B", 1)]) + "\n")
    with pytest.raises(DataError, match="not a catalog mixture of experts") as e:
        moe_kernel_checks(bad)
    assert "k.csv" in str(e.value) and "row 2" in str(e.value)
    bad.write_text("\n".join([text[0], text[1].replace(",144.03,", ",0,", 1)]) + "\n")
    with pytest.raises(DataError, match="kernel_us must be > 0"):
        moe_kernel_checks(bad)
