"""Loaders refuse bad data files with one line naming the file, the column or row, the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.calibration import sources as S
from simulator.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "calibration" / "data" / "sources"
MLP = SRC / "vidur-h100" / "Llama-2-7b-hf" / "mlp.csv"


def one_line(e: Exception) -> str:
    msg = str(e)
    assert "\n" not in msg
    return msg


def small_mlp(tmp_path: Path, model_dir: str = "Llama-2-7b-hf") -> Path:
    d = tmp_path / "vidur" / model_dir
    d.mkdir(parents=True)
    df = pd.read_csv(MLP).iloc[::40].reset_index(drop=True)
    p = d / "mlp.csv"
    df.to_csv(p, index=False)
    return p


def test_good_table_loads(tmp_path):
    t = S.load_vidur_tables(small_mlp(tmp_path).parent.parent)
    assert set(t["op"]) == {"qkv", "o", "up", "down", "act", "norm", "rope", "add", "emb"}
    assert (t["t_s"] > 0).all() and (t["t_s"] < 0.1).all()  # seconds


def test_missing_column(tmp_path):
    p = small_mlp(tmp_path)
    pd.read_csv(p).drop(columns=["time_stats.mlp_up_proj.median"]).to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_vidur_tables(p.parent.parent)
    msg = one_line(e.value)
    assert str(p) in msg and "time_stats.mlp_up_proj.median" in msg and "missing column" in msg


def test_nan_names_row_and_column(tmp_path):
    p = small_mlp(tmp_path)
    df = pd.read_csv(p)
    df.loc[3, "time_stats.attn_pre_proj.median"] = np.nan
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_vidur_tables(p.parent.parent)
    msg = one_line(e.value)
    assert "row 5" in msg and "time_stats.attn_pre_proj.median" in msg and "NaN" in msg


def test_unknown_model_folder(tmp_path):
    p = small_mlp(tmp_path, "Llama-2-7b-hff")
    with pytest.raises(DataError) as e:
        S.load_vidur_tables(p.parent.parent)
    msg = one_line(e.value)
    assert "unknown model 'Llama-2-7b-hff'" in msg and "did you mean 'Llama-2-7b-hf'" in msg


def test_microseconds_instead_of_milliseconds(tmp_path):
    p = small_mlp(tmp_path)
    df = pd.read_csv(p)
    cols = [c for c in df.columns if c.startswith("time_stats.")]
    df[cols] = df[cols] * 1000.0
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_vidur_tables(p.parent.parent)
    msg = one_line(e.value)
    assert "microseconds" in msg and "column 'time_stats." in msg


def test_shape_mismatch(tmp_path):
    p = small_mlp(tmp_path)
    df = pd.read_csv(p)
    df.loc[2, "n_embd"] = 5120
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_vidur_tables(p.parent.parent)
    assert "row 4" in one_line(e.value) and "n_embd" in str(e.value)


def test_allreduce_units(tmp_path):
    src = SRC / "vidur-h100" / "network-dgx" / "all_reduce.csv"
    df = pd.read_csv(src)
    df["time_stats.all_reduce.median"] *= 1000
    p = tmp_path / "all_reduce.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_collective(p, "all_reduce")
    assert "microseconds" in one_line(e.value)


def test_splitwise_pcap_rows_dropped_and_units():
    sw = S.load_splitwise(SRC / "splitwise" / "perf_model.csv")
    assert set(sw["model"]) == {"Llama-2-70B", "BLOOM-176B"}
    assert sw["decode_s_per_token"].between(0.02, 0.1).all()
    assert len(sw) == 420  # H100 rows only: no h100-80gb-pcap (synthetic), no A100


def test_splitwise_unknown_model(tmp_path):
    df = pd.read_csv(SRC / "splitwise" / "perf_model.csv")
    df.loc[7, "model"] = "llama2-13b"
    p = tmp_path / "perf_model.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_splitwise(p)
    msg = one_line(e.value)
    assert "row 9" in msg and "column 'model'" in msg and "unknown model" in msg


def test_mlenergy_power_is_per_gpu_and_skips():
    ml, skipped = S.load_mlenergy(SRC / "mlenergy-v3" / "runs.csv")
    dense, moe = ml[~ml["moe"]], ml[ml["moe"]]
    assert len(dense) == 54 and len(moe) == 142 and (ml["gpu"] == "H100").all()
    assert (ml["gpu_power_w"] <= 700).all() and (ml["gpu_power_w"] > 200).all()
    g = ml[(ml["model"] == "Gemma-3-27B") & (ml["tp"] == 2)]
    assert len(g) and (g["gpu_power_w"] < 700).all()  # divided by num_gpus
    # expert parallelism over every GPU: the replica's TP is the run's GPU count
    ep = moe[moe["expert_parallel"]]
    assert len(ep) and (ep["tp"] == ep["num_gpus"]).all() and (ep["tp_file"] == 1).all()
    assert set(moe["precision"]) == {"bf16", "fp8", "mxfp4"}
    assert skipped["reason"].str.startswith("hybrid Mamba-2/attention").all()


def _h100_dense_index(df):
    return int(df.index[(df["gpu"] == "H100") & (df["arch"] == "Dense Transformer")][0])


def test_mlenergy_unknown_model_and_units(tmp_path):
    df = pd.read_csv(SRC / "mlenergy-v3" / "runs.csv")
    i = _h100_dense_index(df)
    bad = df.copy()
    bad.loc[i, "model"] = "acme/Llama-9B"
    p = tmp_path / "runs.csv"
    bad.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_mlenergy(p)
    assert f"row {i + 2}" in one_line(e.value) and "unknown model" in str(e.value)
    bad = df.copy()
    bad["med_itl_ms"] *= 1000
    bad.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_mlenergy(p)
    assert "microseconds" in one_line(e.value) and "med_itl_ms" in str(e.value)
    bad = df.copy()
    bad.loc[5, "avg_power_W"] = np.nan
    bad.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_mlenergy(p)
    assert "row 7" in one_line(e.value) and "avg_power_W" in str(e.value)


def test_mlenergy_run_with_zero_tokens_names_its_row(tmp_path):
    df = pd.read_csv(SRC / "mlenergy-v3" / "runs.csv")
    df.loc[9, "tok_s"] = 0.0
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_mlenergy(p)
    assert "row 11" in one_line(e.value) and "tok_s" in str(e.value) and str(p) in str(e.value)


def _first_run_rows(h, runs):
    r = runs.iloc[0]
    return ((h["model"] == r["source_model"]) & (h["gpu"] == "H100") & (h["task"] == r["task"])
            & (h["max_num_seqs"] == r["max_num_seqs"]) & (h["tp"] == r["tp"]))


def _no_count(h, runs):
    return h.drop(columns=["count"])


def _no_histogram(h, runs):
    return h[~_first_run_rows(h, runs)]


def _stretched(h, runs):
    h = h.copy()
    sel = _first_run_rows(h, runs)
    h.loc[sel, ["bin_low", "bin_high"]] *= 3
    return h


def _negative(h, runs):
    h = h.copy()
    h.loc[h.index[5], "count"] = -1
    return h


def test_histograms_belong_to_their_runs():
    runs, _ = S.load_mlenergy(SRC / "mlenergy-v3" / "runs.csv")
    hist = S.load_output_lengths(SRC / "mlenergy-v3" / "output_lengths.csv", runs)
    assert set(hist) == set(runs["row"])
    for r in runs.itertuples():
        h = hist[r.row]
        mean = (h[:, 2] * (h[:, 0] + h[:, 1]) / 2).sum() / h[:, 2].sum()
        assert mean == pytest.approx(r.avg_out_len, rel=0.05)


@pytest.mark.parametrize("change, match", [(_no_count, "missing column"),
                                           (_no_histogram, "no output-length histogram"),
                                           (_stretched, "does not match its run"),
                                           (_negative, "row 7: column 'count'")])
def test_bad_histograms_name_the_file_and_row(tmp_path, change, match):
    runs, _ = S.load_mlenergy(SRC / "mlenergy-v3" / "runs.csv")
    h = change(pd.read_csv(SRC / "mlenergy-v3" / "output_lengths.csv"), runs)
    p = tmp_path / "output_lengths.csv"
    h.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        S.load_output_lengths(p, runs)
    assert match in one_line(e.value) and str(p) in str(e.value)


def test_cpu_profile_refused_in_profiles_folder(tmp_path):
    from simulator.calibration.profile import ProfileConfig, run_profile

    d = tmp_path / "profiles"
    run_profile(ProfileConfig(device="cpu", tiny=True, out=str(d / "cpu.csv"), backend="numpy",
                              tokens=(1, 8), repeats=1))
    with pytest.raises(DataError) as e:
        S.load_profiles(d)
    assert "not an H100" in one_line(e.value) and "column 'device'" in str(e.value)


def test_profiles_outrank_vidur(tmp_path):
    vid = S.load_vidur_tables(small_mlp(tmp_path).parent.parent)
    prof = vid[vid["tp"] == 2].copy()
    prof["source"] = "profile"
    prof["t_s"] *= 0.9
    merged = S.merge_op_sources(vid, prof)
    tp2 = merged[merged["tp"] == 2]
    assert (tp2["source"] == "profile").all()
    assert len(merged) == len(vid)
    assert (merged[merged["tp"] == 1]["source"] == "vidur").all()
