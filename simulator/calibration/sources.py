"""Loaders for the measured calibration data, with validation.

Every loader returns a tidy :class:`pandas.DataFrame` in SI units (seconds, bytes, watts) and
refuses a bad file with one :class:`~simulator.errors.DataError` line naming the file, the row
(its line number in the file, the header being line 1) or the column, and the problem: a
missing column, a NaN or non-numeric value, an unknown model, or values whose magnitude shows
the wrong unit (for example microseconds in a millisecond column). Nothing is fitted silently
from a bad file.

Layout of a data folder (``calibration/data`` by default)::

    sources/vidur-h100/<model>/mlp.csv          per-op timings (Vidur, ms)
    sources/vidur-h100/network-dgx/all_reduce.csv, send_recv.csv   NCCL (ms, bytes)
    sources/splitwise/perf_model.csv            end-to-end llama2-70b / bloom-176b (ms)
    sources/mlenergy-v3/runs.csv                ML.ENERGY v3 serving runs (H100 and B200)
    sources/mlenergy-v3/output_lengths.csv      their measured output-length histograms
    profiles/*.csv                              our own H100 profiles (Vidur schema + metadata)
    profiles/*_power.csv                        NVML power during representative shapes
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.calibration.extra_shapes import shape
from simulator.catalog import ModelShape
from simulator.errors import DataError, did_you_mean
from simulator.calibration.anchors import h100_gpu

MS = 1e-3  # seconds per millisecond

# Vidur op name -> fleetsim op name
VIDUR_OPS: dict[str, str] = {
    "attn_pre_proj": "qkv", "attn_post_proj": "o", "mlp_up_proj": "up", "mlp_down_proj": "down",
    "mlp_act": "act", "input_layernorm": "norm", "post_attention_layernorm": "norm",
    "attn_rope": "rope", "add": "add", "emb": "emb",
}
GEMM_OPS = ("qkv", "o", "up", "down")
ELEMENTWISE_OPS = ("norm", "rope", "act", "add", "emb")
# ops every mlp.csv must have (phi-2 has parallel attention/MLP: no post-attention norm)
REQUIRED_VIDUR_OPS = tuple(k for k in VIDUR_OPS if k != "post_attention_layernorm")
VIDUR_SHAPE_COLUMNS = ("n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size",
                       "use_gated_mlp", "num_tokens", "num_tensor_parallel_workers")
PROFILE_META_COLUMNS = ("model", "device", "date", "driver", "cuda", "torch")

# source model names -> fleetsim model names
VIDUR_MODELS = {
    "Llama-2-7b-hf": "Llama-2-7B", "Llama-2-70b-hf": "Llama-2-70B",
    "CodeLlama-34b-Instruct-hf": "CodeLlama-34B", "Qwen-72B": "Qwen-72B",
    "internlm-20b": "InternLM-20B", "phi-2": "phi-2",
}
SPLITWISE_MODELS = {"llama2-70b": "Llama-2-70B", "bloom-176b": "BLOOM-176B"}
MLENERGY_MODELS = {
    "Qwen/Qwen3-8B": "Qwen3-8B", "Qwen/Qwen3-14B": "Qwen3-14B",
    "meta-llama/Llama-3.1-8B-Instruct": "Llama-3.1-8B",
    "google/gemma-3-12b-it": "Gemma-3-12B", "google/gemma-3-27b-it": "Gemma-3-27B",
    # mixtures of experts; a model's instruct, thinking and coder releases share one shape and
    # are one model for leave-one-model-out
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "Qwen3-30B-A3B",
    "Qwen/Qwen3-30B-A3B-Thinking-2507": "Qwen3-30B-A3B",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": "Qwen3-30B-A3B",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "Qwen3-235B-A22B",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "Qwen3-235B-A22B",
    "Qwen/Qwen3-235B-A22B-Thinking-2507": "Qwen3-235B-A22B",
    "Qwen/Qwen3-235B-A22B-Thinking-2507-FP8": "Qwen3-235B-A22B",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": "Qwen3-Coder-480B-A35B",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": "Qwen3-Coder-480B-A35B",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": "Llama-4-Scout-17B-16E",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": "Llama-4-Maverick-17B-128E",
    "openai/gpt-oss-20b": "gpt-oss-20b", "openai/gpt-oss-120b": "gpt-oss-120b",
}
#: checkpoint precision by the file's ``prec``
MLENERGY_PRECISIONS = {"bfloat16": "bf16", "fp8": "fp8", "mxfp4": "mxfp4"}
# ML.ENERGY models that are known but cannot be simulated, with the reason (reported)
MLENERGY_SKIPPED = {
    "nvidia/NVIDIA-Nemotron-Nano-9B-v2": "hybrid Mamba-2/attention: most layers are state-space"
    " scans, which the dense transformer timing model does not represent",
    "nvidia/NVIDIA-Nemotron-Nano-12B-v2": "hybrid Mamba-2/attention (as above)",
}
MLENERGY_SKIP_ARCH: dict[str, str] = {}
MLENERGY_SKIP_PREC: dict[str, str] = {}
MLENERGY_SKIP_DP = ("attention data parallelism (dp > 1): simulated (deployment."
                    "attention_data_parallel) but neither fitted nor checked on: median ITL not"
                    " monotonic in the batch (26-412 ms), and whether max_num_seqs counted per"
                    " rank is not recorded")


def CATALOG_MOE(model: str) -> bool:  # noqa: N802 (reads like the table it queries)
    from simulator.calibration.extra_shapes import shape

    return shape(model).is_moe


# ------------------------------------------------------------------ helpers
def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror}", file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"not a valid CSV file: {str(e).splitlines()[0]}", file=str(path)) from None


def _require(df: pd.DataFrame, path: Path, columns) -> None:
    for c in columns:
        if c not in df.columns:
            hint = did_you_mean(c, [str(x) for x in df.columns])
            raise DataError(f"missing column{hint}", file=str(path), column=c)


def _numeric(df: pd.DataFrame, path: Path, columns) -> None:
    """Every value of ``columns`` must be a finite number (names the first bad row)."""
    for c in columns:
        v = pd.to_numeric(df[c], errors="coerce")
        bad = ~np.isfinite(v.to_numpy(dtype=float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raw = df[c].iloc[i]
            what = "NaN (missing value)" if pd.isna(raw) else f"not a finite number: {raw!r}"
            raise DataError(what, file=str(path), row=i + 2, column=c)
        df[c] = v


def _positive(df: pd.DataFrame, path: Path, columns) -> None:
    for c in columns:
        bad = df[c].to_numpy(dtype=float) <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"must be > 0, got {df[c].iloc[i]!r}", file=str(path), row=i + 2, column=c)


def _bool_column(df: pd.DataFrame, path: Path, c: str) -> None:
    m = {"true": True, "false": False, "1": True, "0": False}
    out = []
    for i, v in enumerate(df[c]):
        key = str(v).strip().lower()
        if key not in m:
            raise DataError(f"expected True or False, got {v!r}", file=str(path), row=i + 2, column=c)
        out.append(m[key])
    df[c] = out


def gemm_dims(s: ModelShape, op: str, tp: int) -> tuple[float, float]:
    """(K, N) of a per-layer GEMM on one GPU of a TP group (same sharding as the timing model)."""
    heads_gpu = s.heads / tp
    kv_gpu = max(s.kv_heads / tp, 1.0)
    if op == "qkv":
        return s.hidden_size, (heads_gpu + 2 * kv_gpu) * s.head_dim
    if op == "o":
        return s.q_size / tp, s.hidden_size
    if op == "up":
        return s.hidden_size, (2 if s.gated_mlp else 1) * s.ffn_size / tp
    if op == "down":
        return s.ffn_size / tp, s.hidden_size
    raise KeyError(op)


def elementwise_bytes_per_row(s: ModelShape, op: str, tp: int, act_bytes: float = 2.0) -> float:
    """HBM bytes one token moves through an element-wise op (same as the timing model)."""
    d, f = s.hidden_size, s.ffn_size / tp
    heads_gpu, kv_gpu = s.heads / tp, max(s.kv_heads / tp, 1.0)
    return {
        "norm": 2 * d * act_bytes,
        "rope": 2 * (heads_gpu + kv_gpu) * s.head_dim * act_bytes,
        "act": (3 if s.gated_mlp else 2) * f * act_bytes,
        "add": 3 * d * act_bytes,
        "emb": d * act_bytes,
    }[op]


# ------------------------------------------------------------------ per-op tables
def load_op_table(path: str | Path, model: str | None = None, source: str = "vidur") -> pd.DataFrame:
    """One Vidur-schema per-op table (``mlp.csv`` or a profile) as tidy rows.

    ``model``: the fleetsim model name (Vidur tables: from the folder name); profiles carry it
    in a ``model`` column. The shape columns of the file are authoritative for the op shapes;
    for catalog models they must agree with the catalog.

    Returns columns: source, file, row, model, op, vidur_op, tp, n_tokens, t_s, K, N,
    bytes_per_row (element-wise ops), and the shape (hidden, heads, kv_heads, head_dim, ffn,
    gated).
    """
    path = Path(path)
    df = _read_csv(path)
    time_cols = [f"time_stats.{op}.median" for op in REQUIRED_VIDUR_OPS]
    _require(df, path, [*VIDUR_SHAPE_COLUMNS, *time_cols])
    if source == "profile":
        _require(df, path, PROFILE_META_COLUMNS)
    if len(df) == 0:
        raise DataError("no data rows", file=str(path))
    opt = "time_stats.post_attention_layernorm.median"
    cols = time_cols + ([opt] if opt in df.columns else [])
    _bool_column(df, path, "use_gated_mlp")
    _numeric(df, path, [c for c in VIDUR_SHAPE_COLUMNS if c != "use_gated_mlp"] + cols)
    _positive(df, path, ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "num_tokens",
                         "num_tensor_parallel_workers", *cols])
    bad_tp = ~df["num_tensor_parallel_workers"].isin([1, 2, 4, 8])
    if bad_tp.any():
        i = int(np.flatnonzero(bad_tp)[0])
        raise DataError("tensor-parallel degree must be 1, 2, 4 or 8", file=str(path), row=i + 2,
                        column="num_tensor_parallel_workers")
    models = df["model"].astype(str) if source == "profile" else pd.Series([model] * len(df))
    # the shape in the file must match the catalog for known models
    for name in models.unique():
        try:
            ref = shape(name)
        except KeyError:
            if source == "profile":
                continue  # a profile of a shape not in the catalog: its columns define it
            raise DataError(f"unknown model {name!r}", file=str(path)) from None
        sub = df[models == name]
        for col, want in (("n_embd", ref.hidden_size), ("n_head", ref.heads),
                          ("n_kv_head", ref.kv_heads), ("n_expanded_embd", ref.ffn_size)):
            bad = sub[col].to_numpy() != want
            if bad.any():
                i = int(sub.index[np.flatnonzero(bad)[0]])
                raise DataError(f"shape does not match model {name!r}: expected {want}, got"
                                f" {sub[col].iloc[np.flatnonzero(bad)[0]]}", file=str(path),
                                row=i + 2, column=col)
    out = []
    for vop, op in VIDUR_OPS.items():
        col = f"time_stats.{vop}.median"
        if col not in df.columns:
            continue
        part = pd.DataFrame({
            "source": source, "file": str(path), "row": df.index + 2, "model": models.values,
            "op": op, "vidur_op": vop, "tp": df["num_tensor_parallel_workers"].astype(int),
            "n_tokens": df["num_tokens"].astype(float), "t_s": df[col].astype(float) * MS,
            "hidden": df["n_embd"].astype(int), "heads": df["n_head"].astype(int),
            "kv_heads": df["n_kv_head"].astype(int), "ffn": df["n_expanded_embd"].astype(int),
            "gated": df["use_gated_mlp"].astype(bool),
        })
        out.append(part)
    t = pd.concat(out, ignore_index=True)
    if "head_dim" in df.columns:  # profiles may give it (Qwen3: head_dim != hidden / heads)
        _numeric(df, path, ["head_dim"])
        t["head_dim"] = np.tile(df["head_dim"].astype(int).to_numpy(), len(out))
    else:
        t["head_dim"] = t["hidden"] // t["heads"]
    # shape-derived op sizes
    K = np.zeros(len(t))
    N = np.zeros(len(t))
    bpr = np.zeros(len(t))
    for key, g in t.groupby(["hidden", "heads", "kv_heads", "ffn", "gated", "head_dim", "tp", "op"]):
        d, h, kvh, f, gated, hd, tp, op = key
        s = ModelShape("x", 1, int(d), int(h), int(kvh), int(f), 1, bool(gated), head_dim=int(hd))
        if op in GEMM_OPS:
            k, n = gemm_dims(s, op, int(tp))
            K[g.index], N[g.index] = k, n
        else:
            bpr[g.index] = elementwise_bytes_per_row(s, op, int(tp))
    t["K"], t["N"], t["bytes_per_row"] = K, N, bpr
    # the H100 roofline tells the unit of an H100 table; a profile from another device (the
    # CPU smoke test) is only checked for plausible magnitudes of element-wise ops
    on_h100 = source != "profile" or all("H100" in str(v) for v in df["device"].unique())
    _check_op_units(t, path, roofline=on_h100)
    return t


def _check_op_units(t: pd.DataFrame, path: Path, roofline: bool = True) -> None:
    """Magnitude check: millisecond columns that hold microseconds (or seconds) are refused.

    GEMMs cannot beat the datasheet roofline and measured GEMMs on an H100 run within a few
    times of it, so the median ratio measured/roofline tells the unit; element-wise ops on a
    handful of tokens take microseconds, never a millisecond.
    """
    g = t[t["op"].isin(GEMM_OPS)]
    if len(g) and roofline:
        m = g["n_tokens"].to_numpy()
        flops = 2 * m * g["K"].to_numpy() * g["N"].to_numpy()
        nbytes = g["K"].to_numpy() * g["N"].to_numpy() * 2.0
        gpu = h100_gpu()
        bound = np.maximum(flops / gpu.peak_bf16_flops, nbytes / gpu.hbm_bw_bytes_per_s)
        ratio = g["t_s"].to_numpy() / bound
        for vop, r in pd.Series(ratio, index=g.index).groupby(g["vidur_op"]):
            med = float(np.median(r))
            col = f"time_stats.{vop}.median"
            if med > 50:
                raise DataError(f"values are {med:.0f}x the H100 roofline: they look like"
                                " microseconds, expected milliseconds", file=str(path), column=col)
            if med < 0.3:
                raise DataError(f"values are {med:.3g}x the H100 roofline (faster than the"
                                " hardware): wrong unit? expected milliseconds", file=str(path),
                                column=col)
    e = t[t["op"].isin(ELEMENTWISE_OPS) & (t["n_tokens"] <= 16)]
    if len(e):
        worst = e.loc[e["t_s"].idxmax()]
        if worst["t_s"] > 1e-3:
            raise DataError(f"{worst['t_s'] / MS:g} ms for an element-wise op on"
                            f" {int(worst['n_tokens'])} tokens: looks like microseconds, expected"
                            " milliseconds", file=str(path), row=int(worst["row"]),
                            column=f"time_stats.{worst['vidur_op']}.median")


def load_vidur_tables(root: str | Path) -> pd.DataFrame:
    """All ``<model>/mlp.csv`` tables under a Vidur folder (``network-dgx`` is skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError("folder not found", file=str(root))
    parts = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "network-dgx"):
        f = d / "mlp.csv"
        if not f.exists():
            continue
        if d.name not in VIDUR_MODELS:
            raise DataError(f"unknown model {d.name!r}{did_you_mean(d.name, VIDUR_MODELS)}"
                            f" (known: {', '.join(sorted(VIDUR_MODELS))})", file=str(f))
        parts.append(load_op_table(f, VIDUR_MODELS[d.name], "vidur"))
    if not parts:
        raise DataError("no <model>/mlp.csv tables found", file=str(root))
    return pd.concat(parts, ignore_index=True)


def load_profiles(root: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """Our own per-op profiles (``profiles/*.csv`` except ``*_power.csv``) measured on H100s.

    Returns the tidy op rows and one metadata dict per file. A profile taken on another device
    (the CPU smoke test, another GPU) is refused: it must not enter an H100 fit.
    """
    root = Path(root)
    parts, meta = [], []
    if not root.is_dir():
        return pd.DataFrame(), meta
    for f in sorted(root.glob("*.csv")):
        if f.name.endswith("_power.csv"):
            continue
        t = load_op_table(f, None, "profile")
        raw = pd.read_csv(f, usecols=list(PROFILE_META_COLUMNS))
        devs = raw["device"].astype(str).unique()
        for dev in devs:
            if "H100" not in dev:
                raise DataError(f"profile measured on {dev!r}, not an H100: it cannot enter the"
                                " H100 fit (move it out of the profiles folder)", file=str(f),
                                column="device")
        meta.append({k: str(raw[k].iloc[0]) for k in PROFILE_META_COLUMNS} | {"file": str(f)})
        parts.append(t)
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()), meta


def merge_op_sources(vidur: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """Precedence: our H100 profiles outrank Vidur's tables.

    Rule: for every (model shape, TP degree) present in a profile, all Vidur rows of that
    shape and TP are dropped and the profile's rows used instead (a newer measurement on the
    stack we simulate replaces the older one as a block, so the two never mix within one
    curve). Shapes only a profile has are added.
    """
    if profiles is None or len(profiles) == 0:
        return vidur
    key = ["hidden", "heads", "kv_heads", "ffn", "gated", "tp"]
    have = profiles[key].drop_duplicates()
    m = vidur.merge(have.assign(_p=1), on=key, how="left")
    keep = vidur[m["_p"].isna().to_numpy()]
    return pd.concat([keep, profiles], ignore_index=True)


# ------------------------------------------------------------------ NCCL
def load_collective(path: str | Path, collective: str) -> pd.DataFrame:
    """Vidur NCCL table: columns num_workers, size (bytes) -> bytes, t_s.

    ``size`` is in bytes: Vidur's profiler allocates ``size`` fp16 elements but records
    ``size * 2`` as the row's size (``vidur/profiling/collectives/collectives_wrapper.py``,
    "bytes"), and Vidur's own predictor turns it into tokens as ``size / hidden / 2`` (2 bytes
    per element). Read as elements instead, a 2-GPU all-reduce would move 450-525 GB/s and a
    one-way send 724 GB/s, above NVLink 4's 450 GB/s per direction."""
    path = Path(path)
    df = _read_csv(path)
    col = f"time_stats.{collective}.median"
    _require(df, path, [col, "num_workers", "size"])
    _numeric(df, path, [col, "num_workers", "size"])
    _positive(df, path, [col, "num_workers", "size"])
    extra = ["devices_per_node"] if "devices_per_node" in df.columns else []
    out = pd.DataFrame({"file": str(path), "row": df.index + 2,
                        "workers": df["num_workers"].astype(int),
                        "bytes": df["size"].astype(float),  # bytes (see the docstring)
                        "t_s": df[col].astype(float) * MS})
    for c in extra:
        out[c] = df[c].astype(int)
    # unit check: the algorithm bandwidth of large messages must be NVLink-like (1 GB/s-5 TB/s)
    big = out[out["bytes"] >= 16e6]
    if len(big):
        bw = float(np.median(big["bytes"] / big["t_s"]))
        if bw < 1e9:
            raise DataError(f"implied bandwidth {bw / 1e9:.3g} GB/s: times look like"
                            " microseconds, expected milliseconds", file=str(path), column=col)
        if bw > 5e12:
            raise DataError(f"implied bandwidth {bw / 1e12:.3g} TB/s exceeds NVLink: wrong unit?"
                            " expected milliseconds", file=str(path), column=col)
    return out


# ------------------------------------------------------------------ splitwise
SPLITWISE_COLUMNS = ("model", "hardware", "prompt_size", "batch_size", "token_size", "prompt_time",
                     "token_time", "tensor_parallel")


def load_splitwise(path: str | Path) -> pd.DataFrame:
    """Splitwise ``perf_model.csv``, H100 rows only, the synthetic ``-pcap`` rows removed.

    Returns one row per measurement: model, tp, prompt_tokens, batch, output_tokens,
    prefill_s (``prompt_time``), decode_s_per_token (``token_time``), row.
    """
    path = Path(path)
    df = _read_csv(path)
    _require(df, path, SPLITWISE_COLUMNS)
    _numeric(df, path, ["prompt_size", "batch_size", "token_size", "prompt_time", "token_time",
                        "tensor_parallel"])
    _positive(df, path, ["prompt_size", "batch_size", "token_size", "prompt_time", "token_time"])
    for i, m in enumerate(df["model"].astype(str)):
        if m not in SPLITWISE_MODELS:
            raise DataError(f"unknown model {m!r}{did_you_mean(m, SPLITWISE_MODELS)}",
                            file=str(path), row=i + 2, column="model")
    # TRAP: 'h100-80gb-pcap' rows are synthetic (H100 row x 1.3 prompt time), not measured
    h = df[df["hardware"].astype(str) == "h100-80gb"].copy()
    out = pd.DataFrame({
        "row": h.index + 2, "model": h["model"].map(SPLITWISE_MODELS),
        "tp": h["tensor_parallel"].astype(int), "prompt_tokens": h["prompt_size"].astype(int),
        "batch": h["batch_size"].astype(int), "output_tokens": h["token_size"].astype(int),
        "prefill_s": h["prompt_time"].astype(float) * MS,
        "decode_s_per_token": h["token_time"].astype(float) * MS,
    }).reset_index(drop=True)
    # unit check: one decode step of a 70B+ model takes milliseconds, never a second
    med = float(out["decode_s_per_token"].median()) if len(out) else 0.0
    if med > 1.0:
        raise DataError(f"median decode time per token {med:g} s: looks like microseconds,"
                        " expected milliseconds", file=str(path), column="token_time")
    if 0 < med < 1e-4:
        raise DataError(f"median decode time per token {med:g} s is faster than reading the"
                        " weights once: wrong unit? expected milliseconds", file=str(path),
                        column="token_time")
    return out


# ------------------------------------------------------------------ ML.ENERGY
MLENERGY_COLUMNS = ("model", "task", "arch", "prec", "gpu", "num_gpus", "tp", "ep", "dp",
                    "max_num_seqs", "avg_batch", "avg_out_len", "avg_power_W", "J_per_tok", "tok_s",
                    "med_itl_ms")
#: a run's key in ``runs.csv`` and ``output_lengths.csv``
RUN_KEY = ("model", "task", "gpu", "num_gpus", "tp", "ep", "max_num_seqs")
LENGTH_COLUMNS = (*RUN_KEY, "bin_low", "bin_high", "count")
HISTOGRAM_MEAN_TOLERANCE = 0.10  # a histogram whose mean is further from avg_out_len is not its run's
TDP_W = {"H100": 700.0, "B200": 1000.0}


def load_mlenergy(path: str | Path, gpu: str = "H100") -> tuple[pd.DataFrame, pd.DataFrame]:
    """ML.ENERGY v3 runs on ``gpu``: (usable dense runs, skipped runs with the reason).

    Usable runs get per-GPU power ``gpu_power_w = avg_power_W / num_gpus`` (the file's power
    is the SUM over the run's GPUs), ``itl_s`` from ``med_itl_ms``, the fleetsim model name,
    and ``occurrence`` (the how-many-th row of its key, to pair it with its histogram).
    """
    path = Path(path)
    df = _read_csv(path)
    _require(df, path, MLENERGY_COLUMNS)
    num = ["num_gpus", "tp", "ep", "dp", "max_num_seqs", "avg_batch", "avg_out_len", "avg_power_W",
           "J_per_tok", "tok_s", "med_itl_ms"]
    _numeric(df, path, num)
    _positive(df, path, num)
    if gpu not in TDP_W:
        raise DataError(f"no power limit known for GPU {gpu!r}", file=str(path), column="gpu")
    known = {**MLENERGY_MODELS, **{k: None for k in MLENERGY_SKIPPED}}
    df["occurrence"] = df.groupby(list(RUN_KEY)).cumcount()
    rows, skipped = [], []
    for i, r in df.iterrows():
        line = int(i) + 2
        if str(r["gpu"]) != gpu:
            continue
        m = str(r["model"])
        reason = None
        if str(r["arch"]) in MLENERGY_SKIP_ARCH:
            reason = MLENERGY_SKIP_ARCH[str(r["arch"])]
        elif str(r["prec"]) in MLENERGY_SKIP_PREC:
            reason = MLENERGY_SKIP_PREC[str(r["prec"])]
        elif m in MLENERGY_SKIPPED:
            reason = MLENERGY_SKIPPED[m]
        elif m not in known:
            raise DataError(f"unknown model {m!r}{did_you_mean(m, known)}", file=str(path),
                            row=line, column="model")
        elif int(r["dp"]) > 1:
            reason = MLENERGY_SKIP_DP
        if reason is not None:
            skipped.append({"row": line, "model": m, "task": r["task"], "reason": reason})
            continue
        if str(r["prec"]) not in MLENERGY_PRECISIONS:
            raise DataError(f"unsupported precision {r['prec']!r} (known:"
                            f" {', '.join(MLENERGY_PRECISIONS)})", file=str(path), row=line,
                            column="prec")
        moe = str(r["arch"]) == "MoE"
        ep = int(r["ep"])
        if moe != CATALOG_MOE(MLENERGY_MODELS[m]):
            raise DataError(f"arch {r['arch']!r} disagrees with the catalog shape of"
                            f" {MLENERGY_MODELS[m]}", file=str(path), row=line, column="arch")
        if ep > 1 and ep != int(r["num_gpus"]):
            raise DataError(f"ep={ep} on {int(r['num_gpus'])} GPUs: expected expert parallelism"
                            " over every GPU of the run", file=str(path), row=line, column="ep")
        per_gpu = float(r["avg_power_W"]) / float(r["num_gpus"])
        if per_gpu > 1.15 * TDP_W[gpu]:
            raise DataError(f"{per_gpu:.0f} W per GPU exceeds the {gpu}'s {TDP_W[gpu]:.0f} W limit:"
                            " wrong unit or not a sum over num_gpus?", file=str(path), row=line,
                            column="avg_power_W")
        if per_gpu < 40:
            raise DataError(f"{per_gpu:.3g} W per GPU is below idle power: wrong unit?",
                            file=str(path), row=line, column="avg_power_W")
        itl = float(r["med_itl_ms"])
        if itl > 2000:
            raise DataError(f"median ITL {itl:g} ms: looks like microseconds, expected"
                            " milliseconds", file=str(path), row=line, column="med_itl_ms")
        j_check = float(r["avg_power_W"]) / float(r["tok_s"])
        if not math.isclose(j_check, float(r["J_per_tok"]), rel_tol=0.05):
            raise DataError(f"J_per_tok {r['J_per_tok']:g} disagrees with avg_power_W / tok_s"
                            f" = {j_check:g}", file=str(path), row=line, column="J_per_tok")
        rows.append({
            "row": line, "source_model": m, "model": MLENERGY_MODELS[m], "task": str(r["task"]),
            "gpu": gpu, "num_gpus": int(r["num_gpus"]),
            # vLLM with --enable-expert-parallel and no data parallelism: attention is
            # tensor-parallel over every GPU of the run (the file records tp=1, ep=GPUs)
            "tp": int(r["num_gpus"]) if ep > 1 else int(r["tp"]), "tp_file": int(r["tp"]), "ep": ep,
            "expert_parallel": ep > 1, "moe": moe,
            "precision": MLENERGY_PRECISIONS[str(r["prec"])],
            "max_num_seqs": int(r["max_num_seqs"]), "occurrence": int(r["occurrence"]),
            "avg_batch": float(r["avg_batch"]), "avg_out_len": float(r["avg_out_len"]),
            "gpu_power_w": per_gpu, "j_per_token": float(r["J_per_tok"]),
            "tok_s": float(r["tok_s"]), "itl_s": itl * MS,
        })
    return pd.DataFrame(rows), pd.DataFrame(skipped)


def load_output_lengths(path: str | Path, runs: pd.DataFrame) -> dict[int, np.ndarray]:
    """The measured output-length histogram of every run in ``runs`` (from
    :func:`load_mlenergy`), by its row: an ``(n_bins, 3)`` array of ``low, high, count``.

    Errors (one line, naming the file and row): a missing column, a bad number, a bin with
    ``high <= low`` or a negative count, a run without a histogram, and a histogram whose mean
    is more than 10 % from its run's ``avg_out_len`` (not that run's histogram)."""
    path = Path(path)
    df = _read_csv(path)
    _require(df, path, LENGTH_COLUMNS)
    _numeric(df, path, ["num_gpus", "tp", "ep", "max_num_seqs", "bin_low", "bin_high", "count"])
    lo, hi, n = (df[c].to_numpy(float) for c in ("bin_low", "bin_high", "count"))
    for bad, what, col in ((hi <= lo, "bin_high must exceed bin_low", "bin_high"),
                           (lo < 0, "bin_low must be >= 0", "bin_low"),
                           (n < 0, "count must be >= 0", "count")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(what, file=str(path), row=i + 2, column=col)
    # a histogram is a run of rows of one key with ascending bins; a key may repeat (paired
    # in order with its runs), even back to back (the bins start again)
    key = df[list(RUN_KEY)].astype(str).agg("|".join, axis=1).to_numpy()
    starts = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]) | (lo[1:] <= lo[:-1])])
    blocks: dict[str, list[tuple[int, int]]] = {}
    for a, b in zip(starts, np.r_[starts[1:], len(df)]):
        blocks.setdefault(key[a], []).append((int(a), int(b)))
    out: dict[int, np.ndarray] = {}
    for r in runs.itertuples(index=False):
        k = "|".join(str(v) for v in (r.source_model, r.task, r.gpu, r.num_gpus, r.tp_file, r.ep,
                                      r.max_num_seqs))
        found = blocks.get(k, [])
        if len(found) <= r.occurrence:
            raise DataError(f"no output-length histogram for run {r.source_model} {r.task}"
                            f" {r.gpu} tp={r.tp} max_num_seqs={r.max_num_seqs} (runs.csv row"
                            f" {r.row})", file=str(path))
        a, b = found[r.occurrence]
        h = np.column_stack([lo[a:b], hi[a:b], n[a:b]])
        if h[:, 2].sum() <= 0:
            raise DataError("histogram has no responses (every count is 0)", file=str(path), row=a + 2)
        mean = float((h[:, 2] * (h[:, 0] + h[:, 1]) / 2).sum() / h[:, 2].sum())
        if abs(mean / r.avg_out_len - 1.0) > HISTOGRAM_MEAN_TOLERANCE:
            raise DataError(f"histogram mean {mean:.0f} tokens does not match its run's avg_out_len"
                            f" {r.avg_out_len:.0f} (runs.csv row {r.row})", file=str(path), row=a + 2)
        out[r.row] = h
    return out
