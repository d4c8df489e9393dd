"""`fleetsim calibrate --gpu B200`: a GPU without per-op tables, calibrated on its own
ML.ENERGY runs (simulator/calibration/transfer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.calibration import transfer
from simulator.calibration.cli import calibrate_cmd
from simulator.devices import load_calibration, load_profile
from simulator.errors import ScenarioError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "calibration" / "data"


def test_b200_calibration_is_deterministic_and_complete(tmp_path):
    """Two fast runs (subsampled, no refits) give identical files, with the B200's provenance,
    errors (the excluded runs apart) and residuals for Monte Carlo."""
    texts = []
    for i in range(2):
        out = tmp_path / f"run{i}" / "calibration.yaml"
        r = CliRunner().invoke(calibrate_cmd, ["--gpu", "B200", "--data", str(DATA), "--out", str(out),
                                               "--report", str(tmp_path / f"rep{i}"), "--fast", "--quiet"])
        assert r.exit_code == 0, r.output + repr(r.exception)
        texts.append(out.read_text())
        assert (tmp_path / f"rep{i}" / "README.md").exists()
        assert (tmp_path / f"rep{i}" / "mlenergy.png").exists()
    assert texts[0] == texts[1]
    cal = load_calibration(tmp_path / "run0" / "calibration.yaml")
    assert cal.power.idle_w == transfer.IDLE_ANCHORS_W["B200-SXM-180GB"]
    assert cal.errors["gpu"] == "B200-SXM-180GB"
    assert cal.errors["mlenergy"]["excluded"]  # the gpqa runs, with their errors and reason
    assert {"itl", "gpu_power", "j_per_token", "decode_time", "prefill_time"} <= set(cal.residuals)
    # per-op coefficients are the H100 fit's (on the subsampled tables here)
    assert set(cal.timing.gemm) == set(load_profile("H100").calibration().timing.gemm)


def test_excluded_runs_are_the_b200_gpqa_runs_only():
    fit, excluded, skipped = transfer.load_runs(DATA, "B200")
    assert len(fit) == 40 and (fit["task"] == "lm-arena-chat").all()
    assert len(excluded) == 10 and (excluded["task"] == "gpqa").all()
    assert excluded["reason"].str.contains("idles").all()
    h, hx, _ = transfer.load_runs(DATA, "H100")  # the H100 keeps its gpqa runs
    assert len(hx) == 0 and (h["task"] == "gpqa").any()


def test_b200_moe_runs_fit_all_but_the_idle_gap_sweep():
    """The B200 MoE runs are fitted (attention data parallelism is skipped by the loader); only
    the Qwen3-30B-A3B gpqa sweep, with the dense gpqa runs' idle gap, is left out."""
    fit, excluded, skipped = transfer.load_runs(DATA, "B200", moe=True)
    assert len(fit) == 119 and fit["moe"].all()
    assert set(excluded["model"]) == {"Qwen3-30B-A3B"} and (excluded["task"] == "gpqa").all()
    assert len(excluded) == 7 and excluded["reason"].str.contains("idles").all()
    assert (fit["task"] == "gpqa").any()  # Qwen3-235B and gpt-oss gpqa runs have no gap
    assert skipped["reason"].str.contains("data parallelism").sum() == 16
    cal = load_profile("B200").calibration()
    assert set(cal.timing.experts) == {"bf16", "fp8", "mxfp4"}
    assert cal.errors["mlenergy_moe"]["runs"] == 119 and cal.errors["mlenergy_moe"]["excluded"]


def test_the_transferred_all_reduce_scales_with_nvlink():
    h100, b200 = load_profile("H100"), load_profile("B200")
    base = h100.calibration().timing
    t = transfer.transfer_timing(base, h100, b200)
    assert t.gemm == base.gemm
    for tp in base.all_reduce:
        assert t.all_reduce[tp].beta_s_per_byte == pytest.approx(base.all_reduce[tp].beta_s_per_byte * 0.5)


@pytest.mark.parametrize("gpu, words", [("H300", "unknown GPU 'H300'"),
                                        ("H200", "derived")])
def test_calibrate_refuses_gpus_it_cannot_fit(gpu, words, tmp_path):
    r = CliRunner().invoke(calibrate_cmd, ["--gpu", gpu, "--out", str(tmp_path / "o.yaml"), "--quiet"])
    assert isinstance(r.exception, ScenarioError) and words in str(r.exception)
    assert "--gpu" in str(r.exception) and not (tmp_path / "o.yaml").exists()
