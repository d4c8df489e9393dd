"""The profiler's CPU tiny run writes a CSV in the schema the fitter reads."""

from __future__ import annotations

import pandas as pd

from simulator.calibration.fit_ops import fit_all_ops, predict_ops
from simulator.calibration.profile import ProfileConfig, run_profile
from simulator.calibration.sources import PROFILE_META_COLUMNS, load_op_table


def test_cpu_tiny_profile_is_accepted_by_the_fitter(tmp_path):
    out = tmp_path / "tiny.csv"
    written = run_profile(ProfileConfig(device="cpu", tiny=True, out=str(out), backend="numpy"))
    assert written == [out]
    raw = pd.read_csv(out)
    vidur_cols = pd.read_csv("calibration/data/sources/vidur-h100/Llama-2-70b-hf/mlp.csv", nrows=1).columns
    assert set(vidur_cols) <= set(raw.columns)  # same columns as vidur mlp.csv (plus metadata)
    assert set(PROFILE_META_COLUMNS) <= set(raw.columns)
    assert raw["device"].iloc[0] == "cpu" and raw["date"].iloc[0].endswith("Z")
    t = load_op_table(out, None, "profile")
    assert set(t["op"]) == {"qkv", "o", "up", "down", "act", "norm", "rope", "add", "emb"}
    gemm, elem = fit_all_ops(t)
    assert (predict_ops(t, gemm, elem) > 0).all()
