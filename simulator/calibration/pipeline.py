"""``fleetsim calibrate``: data -> fits -> leave-one-model-out errors -> calibration files + report.

Stages (each deterministic):

1. per-op GEMM and element-wise coefficients from the Vidur tables (plus our H100 profiles,
   which outrank them), leave-one-model-out over the six Vidur models;
2. NCCL all-reduce lines per group size;
3. the serving stack's constants (ML.ENERGY, vLLM 0.11): per-iteration, per-sequence and
   per-layer costs and attention efficiencies fitted to median ITL; the power model fitted to
   per-GPU power; both refitted without each model to predict it, and every run then
   *simulated* with the engine (ITL, power and J per output token come out of the simulation);
4. Splitwise (2023 stack) constants in a separate file, checked against llama2-70b with the
   per-op coefficients refitted without Llama-2-70B, and against bloom-176b held out entirely;
5. the H100 profile's ``calibration.yaml`` (+ ``calibration-splitwise2023.yaml``) in
   ``simulator/devices/h100/``, with provenance, errors and residuals, and the markdown/PNG
   report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simulator.calibration import fit_ops, mlenergy, splitwise
from simulator.calibration import sources as S
from simulator.calibration.anchors import h100, h100_gpu
from simulator.physics.params import Calibration, TimingParams

VERSION = "1.0"
IDLE_W = 70.0  # datasheet anchor (README of the sources): no idle rows in any data set
MAX_RESIDUALS = 200

SOURCES = {
    "vidur": "microsoft/vidur@7d47513363ec447a741ac5e47241580b47724fbf:data/profiling/compute/h100/"
             " (MIT)",
    "vidur_network": "microsoft/vidur@7d47513363ec447a741ac5e47241580b47724fbf:"
                     "data/profiling/network/h100_dgx/ (MIT)",
    "splitwise": "Mutinifni/splitwise-sim@8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0:data/perf_model.csv"
                 " (MIT)",
    "mlenergy": "ml-energy/leaderboard@0cd52dab:public/data/models/*.json, ML.ENERGY Benchmark v3"
                " (Apache-2.0)",
}


@dataclass
class Options:
    """``fast`` subsamples everything (tests): every 16th token count per curve, every 4th
    ML.ENERGY run, no leave-one-model-out refits (errors are then in-sample and say so)."""

    fast: bool = False
    sensitivity: bool = True


@dataclass
class Results:
    ops: pd.DataFrame
    nccl: pd.DataFrame
    ml_runs: pd.DataFrame
    ml_skipped: pd.DataFrame
    sw_points: pd.DataFrame
    sw_excluded: pd.DataFrame
    profiles_meta: list[dict]
    cal: Calibration
    cal_splitwise: Calibration
    errors: dict[str, Any]
    sensitivity: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    moe_runs: pd.DataFrame | None = None


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, leave=False)
    return (lambda n=1: bar.update(n)), bar.close


def _ape(pred, meas) -> np.ndarray:
    return np.abs(np.asarray(pred, float) / np.asarray(meas, float) - 1.0)


def _rel(pred, meas) -> np.ndarray:
    return np.asarray(pred, float) / np.asarray(meas, float) - 1.0


def _thin(values: np.ndarray) -> list[float]:
    """At most MAX_RESIDUALS residuals: all of them, or evenly spaced quantiles."""
    v = np.sort(np.asarray(values, float)[np.isfinite(values)])
    if len(v) > MAX_RESIDUALS:
        v = np.quantile(v, np.linspace(0.0, 1.0, MAX_RESIDUALS))
    return [float(f"{x:.6g}") for x in v]


def _round(obj):
    """Round floats to 8 significant digits so the YAML is stable and readable."""
    if isinstance(obj, float):
        return float(f"{obj:.8g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


# ------------------------------------------------------------------ stages
def load_all(data: Path) -> dict[str, Any]:
    src = data / "sources"
    vidur = S.load_vidur_tables(src / "vidur-h100")
    profiles, meta = S.load_profiles(data / "profiles")
    ops = S.merge_op_sources(vidur, profiles)
    ar = S.load_collective(src / "vidur-h100" / "network-dgx" / "all_reduce.csv", "all_reduce")
    sr_path = src / "vidur-h100" / "network-dgx" / "send_recv.csv"
    sr = S.load_collective(sr_path, "send_recv") if sr_path.exists() else None
    sw = S.load_splitwise(src / "splitwise" / "perf_model.csv")
    ml, skipped = S.load_mlenergy(src / "mlenergy-v3" / "runs.csv", gpu="H100")
    lengths = S.load_output_lengths(src / "mlenergy-v3" / "output_lengths.csv", ml)
    ml["lengths"] = [lengths[r] for r in ml["row"]]
    cond = mlenergy.load_conditions(data / "mlenergy_conditions.yaml")
    for task in ml["task"].unique():
        mlenergy.input_mean(cond, task, str(data / "mlenergy_conditions.yaml"))
    return {"ops": ops, "profiles_meta": meta, "all_reduce": ar, "send_recv": sr, "splitwise": sw,
            "mlenergy": ml, "ml_skipped": skipped, "conditions": cond}


def _subsample_ops(ops: pd.DataFrame) -> pd.DataFrame:
    keep = []
    for _, idx in ops.groupby(["model", "tp", "vidur_op"]).indices.items():
        g = ops.iloc[idx].sort_values("n_tokens")
        keep.append(g.iloc[::16])
    return pd.concat(keep).sort_index()


def fit_timing_base(ops: pd.DataFrame, ar: pd.DataFrame) -> TimingParams:
    gemm, elem = fit_ops.fit_all_ops(ops)
    return TimingParams(gemm=gemm, elementwise=elem, all_reduce=fit_ops.fit_collective(ar))


SHIPPED = "simulator/devices/h100/calibration.yaml"  # relative to a checkout's root


def run(data: str | Path = "calibration/data", out: str | Path = SHIPPED,
        report: str | Path | None = "calibration/report", opts: Options | None = None,
        progress: bool = True) -> Results:
    """The whole pipeline; writes ``out``, its Splitwise sibling and (optionally) the report."""
    opts = opts or Options()
    data, out = Path(data), Path(out)
    d = load_all(data)
    ops, ar, sw, ml, cond = d["ops"], d["all_reduce"], d["splitwise"], d["mlenergy"], d["conditions"]
    moe = ml[ml["moe"]].reset_index(drop=True)
    ml = ml[~ml["moe"]].reset_index(drop=True)
    if opts.fast:
        ops = _subsample_ops(ops)
        ml = ml.iloc[::4].reset_index(drop=True)
        moe = moe.iloc[::8].reset_index(drop=True)
    notes: list[str] = []
    lomo = not opts.fast
    models = sorted(ops["model"].unique())
    ml_models = sorted(ml["model"].unique())
    moe_models = sorted(moe["model"].unique())
    n_steps = ((len(models) + 1 if lomo else 1) + (len(ml_models) + 1 if lomo else 1)
               + (len(moe_models) + 1 if len(moe) else 0) + 3)
    tick, close = _progress(progress, n_steps, "calibrate")
    tick = tick or (lambda n=1: None)

    # 1. per-op
    if lomo:
        op_res = fit_ops.lomo_ops(ops, progress=tick)
    else:
        op_res = ops.copy()
        g, e = fit_ops.fit_all_ops(ops)
        op_res["pred_s"] = fit_ops.predict_ops(ops, g, e)
        op_res["pred_lomo_s"] = op_res["pred_s"]
    tick()
    # 2. NCCL
    base = fit_timing_base(ops, ar)
    nccl = ar.copy()
    nccl["pred_s"] = fit_ops.predict_collective(ar, base.all_reduce)
    if d["send_recv"] is not None:
        notes.append("send_recv.csv is loaded and validated but not used: fleetsim models tensor"
                     " parallelism inside a node only (no pipeline stages).")

    # 3. serving stack (ML.ENERGY): the steady-state formula the fits use, scaled to the
    # benchmark's protocol by factors simulated at the fits' data-free starting points
    ml = mlenergy.with_dense_protocol(ml, cond, base, IDLE_W, h100())
    timing = mlenergy.fit_timing(ml, cond, base, max_nfev=40 if opts.fast else 300)
    power = mlenergy.fit_power(ml, cond, timing, IDLE_W)
    cal_core = Calibration(version=VERSION, timing=timing, power=power)
    tick()
    ml_res = ml.copy()
    for c in ("itl", "gpu_power", "j_per_token", "tok_s", "batch"):
        ml_res[f"{c}_fit"] = np.nan
        ml_res[f"{c}_lomo"] = np.nan
    groups = [(m, np.flatnonzero((ml["model"] == m).to_numpy())) for m in ml_models]
    for m, idx in groups:
        if lomo:
            train = ml[ml["model"] != m]
            t_m = mlenergy.fit_timing(train, cond, base)
            p_m = mlenergy.fit_power(train, cond, t_m, IDLE_W)
            cal_m = Calibration(version=VERSION, timing=t_m, power=p_m)
        else:
            cal_m = cal_core
        for i in idx:
            r = ml.iloc[i]
            sim = mlenergy.simulate_run(r, cond, cal_core)
            ml_res.loc[ml_res.index[i], ["itl_fit", "gpu_power_fit", "j_per_token_fit", "tok_s_fit", "batch_fit"]] = [
                sim["itl_s"], sim["gpu_power_w"], sim["j_per_token"], sim["tok_s"], sim["batch"]]
            sim = mlenergy.simulate_run(r, cond, cal_m) if lomo else sim
            ml_res.loc[ml_res.index[i], ["itl_lomo", "gpu_power_lomo", "j_per_token_lomo", "tok_s_lomo", "batch_lomo"]] = [
                sim["itl_s"], sim["gpu_power_w"], sim["j_per_token"], sim["tok_s"], sim["batch"]]
        tick()

    # 3b. mixtures of experts: their terms on the MoE runs, on top of every dense coefficient
    # (which never saw an MoE run); the power model is not refitted: MoE power is a check
    moe_res = None
    if len(moe):
        dense_timing = timing
        moe = mlenergy.with_moe_protocol(moe, cond, dense_timing, power)
        timing = mlenergy.fit_moe_timing(moe, cond, dense_timing, max_nfev=40 if opts.fast else 200)
        cal_core = Calibration(version=VERSION, timing=timing, power=power)
        tick()
        moe_res = _simulate_runs(moe, cond, cal_core, lambda train: Calibration(
            version=VERSION, timing=mlenergy.fit_moe_timing(train, cond, dense_timing), power=power),
            lomo, tick)

    # 4. Splitwise (2023 stack): per-op refit without Llama-2-70B for the llama points
    pts, excluded = splitwise.points(sw)
    llama = pts["model"] == "Llama-2-70B"
    ops_wo = ops[ops["model"] != "Llama-2-70B"]
    base_wo = fit_timing_base(ops_wo, ar) if lomo else base
    sw_stack_lomo = splitwise.fit_stack(pts[llama], base_wo)
    pre_l, dec_l = splitwise.predict(pts, sw_stack_lomo)
    sw_stack = splitwise.fit_stack(pts[llama], base)  # shipped: all per-op data
    pre_f, dec_f = splitwise.predict(pts, sw_stack)
    pre_d, dec_d = splitwise.predict(pts, timing)     # the default (vLLM 0.11) stack, for contrast
    pts = pts.copy()
    pts["prefill_pred_s"], pts["decode_pred_s"] = pre_f, dec_f
    pts["prefill_lomo_s"], pts["decode_lomo_s"] = pre_l, dec_l
    pts["prefill_default_s"], pts["decode_default_s"] = pre_d, dec_d
    tick()

    errors = _errors(op_res, nccl, ml_res, pts, lomo)
    if moe_res is not None:
        errors["mlenergy_moe"] = _ml_errors(
            moe_res, ("leave-one-model-out" if lomo else "in-sample")
            + "; MoE terms fitted on the other MoE models' runs; power and every dense coefficient"
            " never saw an MoE run; every run simulated with the engine")
    errors["mlenergy"]["saturated_gemm_w"] = mlenergy.saturated_gemm_power_w(power)
    residuals = _residuals(op_res, nccl, ml_res, pts)
    provenance = _provenance(d, data, opts, excluded)
    cal = Calibration(
        version=VERSION,
        description="H100 SXM5 timing and power fitted to measured data (Vidur per-op tables,"
                    " NCCL tables, ML.ENERGY v3 vLLM 0.11 serving runs); serving-stack constants"
                    " of vLLM 0.11. Generated by `fleetsim calibrate`; do not edit by hand.",
        timing=timing, power=power, provenance=provenance, errors=errors, residuals=residuals)
    cal_sw = Calibration(
        version=VERSION + "-splitwise2023",
        description="Same per-op and power coefficients as calibration.yaml, with the serving-stack"
                    " constants of the 2023 stack Splitwise measured (slow all-reduce, no CUDA"
                    " graphs, K/V repeated per query head). Use it to reproduce Splitwise-era"
                    " numbers; calibration.yaml is the default.",
        timing=sw_stack, power=power, provenance=provenance,
        errors={"splitwise": errors["splitwise"]},
        residuals={k: v for k, v in residuals.items() if k in ("prefill_time", "decode_time")})
    _write_yaml(cal, out)
    _write_yaml(cal_sw, out.with_name(out.stem + "-splitwise2023" + out.suffix))
    res = Results(op_res, nccl, ml_res, d["ml_skipped"], pts, excluded, d["profiles_meta"], cal,
                  cal_sw, errors, None, notes, moe_res)
    if opts.sensitivity and not opts.fast:
        res.sensitivity = _sensitivity(ml, cond, base)
    if report is not None:
        from simulator.calibration.report import write_report

        # a README beside the written file; calibration/README.md and the project README
        # when the shipped file is rewritten
        readmes = [out.parent / "README.md"]
        if out.resolve() == (data.parent.parent / SHIPPED).resolve():
            readmes += [data.parent / "README.md", data.parent.parent / "README.md"]
        write_report(res, Path(report), out, [r for r in readmes if r.exists()])
    tick()
    close()
    return res


def _write_yaml(cal: Calibration, path: Path) -> None:
    doc = _round(cal.model_dump(mode="json"))
    header = ("# Generated by `fleetsim calibrate` from calibration/data (see calibration/README.md)."
              "\n# Do not edit by hand: rerun the command. Units: seconds, bytes, FLOPs, watts,"
              " joules.\n")
    text = header + yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    Calibration.model_validate(yaml.safe_load(text))  # round-trips


# ------------------------------------------------------------------ errors
def _errors(op_res, nccl, ml_res, pts, lomo: bool) -> dict[str, Any]:
    how = "leave-one-model-out" if lomo else "in-sample (fast mode: no refits)"
    e: dict[str, Any] = {"method": how}
    per_op = {}
    for op, g in op_res.groupby("op"):
        per_op[op] = {"mape": float(np.mean(_ape(g["pred_lomo_s"], g["t_s"]))),
                      "mape_in_sample": float(np.mean(_ape(g["pred_s"], g["t_s"]))),
                      "time_weighted_error": float(np.sum(np.abs(g["pred_lomo_s"] - g["t_s"])) / np.sum(g["t_s"])),
                      "points": int(len(g))}
    gem = op_res[op_res["op"].isin(S.GEMM_OPS)]
    e["per_op"] = {
        "target_mape": 0.05,
        "all_ops_mape": float(np.mean(_ape(op_res["pred_lomo_s"], op_res["t_s"]))),
        "gemm_mape": float(np.mean(_ape(gem["pred_lomo_s"], gem["t_s"]))),
        "ops": per_op,
    }
    # per-layer sum (what the simulator uses)
    lay = op_res.groupby(["model", "tp", "n_tokens"])[["t_s", "pred_lomo_s"]].sum()
    e["per_op"]["layer_sum_mape"] = float(np.mean(_ape(lay["pred_lomo_s"], lay["t_s"])))
    e["all_reduce"] = {str(p): {"mape": float(np.mean(_ape(g["pred_s"], g["t_s"]))), "points": int(len(g))}
                       for p, g in nccl.groupby("workers")}
    ll = pts[pts["model"] == "Llama-2-70B"]
    bl = pts[pts["model"] == "BLOOM-176B"]
    e["splitwise"] = {
        "target_mape": 0.10,
        "calibration": "h100-splitwise2023.yaml (2023 stack constants)",
        "llama2_70b": {
            "prefill_time_mape": float(np.mean(_ape(ll["prefill_lomo_s"], ll["prefill_s"]))),
            "decode_time_mape": float(np.mean(_ape(ll["decode_lomo_s"], ll["decode_s_per_token"]))),
            "method": "per-op coefficients refitted without Llama-2-70B; stack constants fitted"
                      " on these points",
            "points": int(len(ll)),
        },
        "bloom_176b_held_out": {
            "prefill_time_mape": float(np.mean(_ape(bl["prefill_pred_s"], bl["prefill_s"]))),
            "decode_time_mape": float(np.mean(_ape(bl["decode_pred_s"], bl["decode_s_per_token"]))),
            "points": int(len(bl)),
        },
        "default_calibration_vs_splitwise": {
            "prefill_time_mape": float(np.mean(_ape(ll["prefill_default_s"], ll["prefill_s"]))),
            "decode_time_mape": float(np.mean(_ape(ll["decode_default_s"], ll["decode_s_per_token"]))),
        },
    }
    e["mlenergy"] = _ml_errors(ml_res, how + "; every run simulated with the engine (closed loop"
                                           " at max_num_seqs)")
    return e


def _ml_errors(mlr: pd.DataFrame, method: str) -> dict[str, Any]:
    """MAPE of simulated against measured ITL, per-GPU power and J per token: overall, in
    sample, by model and by (model, TP)."""
    qs = (("itl", "itl_s"), ("gpu_power", "gpu_power_w"), ("j_per_token", "j_per_token"))
    by_model = {}
    for m, g in mlr.groupby("model"):
        by_model[m] = {q: float(np.mean(_ape(g[f"{q}_lomo"], g[col]))) for q, col in qs}
        by_model[m]["runs"] = int(len(g))
    by_group = {}
    keys = ["model", "precision", "tp"] if "precision" in mlr.columns else ["model", "tp"]
    for k, g in mlr.groupby(keys):
        label = (f"{k[0]} {k[1]} TP{int(k[2])}" if len(keys) == 3 and mlr["moe"].any()
                 else f"{k[0]} TP{int(k[-1])}")
        by_group[label] = {**{q: float(np.mean(_ape(g[f"{q}_lomo"], g[col]))) for q, col in qs},
                           "runs": int(len(g))}
    return {
        "target_mape": 0.10,
        "method": method,
        **{f"{q}_mape": float(np.mean(_ape(mlr[f"{q}_lomo"], mlr[col]))) for q, col in qs},
        **{f"{q}_mape_in_sample": float(np.mean(_ape(mlr[f"{q}_fit"], mlr[col]))) for q, col in qs},
        "runs": int(len(mlr)),
        "by_model": by_model,
        "by_group": by_group,
        "group_target_mape": 0.15,
    }


def _simulate_runs(runs: pd.DataFrame, cond: dict, cal_core: Calibration, fit_without, lomo: bool,
                   tick) -> pd.DataFrame:
    """Every run simulated with the in-sample calibration and, leave-one-model-out, with
    ``fit_without(training runs)``."""
    res = runs.copy()
    cols = ("itl", "gpu_power", "j_per_token", "tok_s", "batch")
    keys = ("itl_s", "gpu_power_w", "j_per_token", "tok_s", "batch")
    for c in cols:
        res[f"{c}_fit"] = np.nan
        res[f"{c}_lomo"] = np.nan
    for m in sorted(runs["model"].unique()):
        idx = np.flatnonzero((runs["model"] == m).to_numpy())
        cal_m = fit_without(runs[runs["model"] != m]) if lomo else cal_core
        for i in idx:
            r = runs.iloc[i]
            sim = mlenergy.simulate_run(r, cond, cal_core)
            res.loc[res.index[i], [f"{c}_fit" for c in cols]] = [sim[k] for k in keys]
            sim = mlenergy.simulate_run(r, cond, cal_m) if lomo else sim
            res.loc[res.index[i], [f"{c}_lomo" for c in cols]] = [sim[k] for k in keys]
        tick()
    return res


def _residuals(op_res, nccl, ml_res, pts) -> dict[str, list[float]]:
    r: dict[str, list[float]] = {}
    ll = pts[pts["model"] == "Llama-2-70B"]
    r["prefill_time"] = _thin(_rel(ll["prefill_lomo_s"], ll["prefill_s"]))
    r["decode_time"] = _thin(_rel(ll["decode_lomo_s"], ll["decode_s_per_token"]))
    r["itl"] = _thin(_rel(ml_res["itl_lomo"], ml_res["itl_s"]))
    r["gpu_power"] = _thin(_rel(ml_res["gpu_power_lomo"], ml_res["gpu_power_w"]))
    r["j_per_token"] = _thin(_rel(ml_res["j_per_token_lomo"], ml_res["j_per_token"]))
    for op, g in op_res.groupby("op"):
        r[f"op_{op}"] = _thin(_rel(g["pred_lomo_s"], g["t_s"]))
    r["all_reduce"] = _thin(_rel(nccl["pred_s"], nccl["t_s"]))
    return r


def _provenance(d, data: Path, opts: Options, excluded: pd.DataFrame) -> dict[str, Any]:
    ops = d["ops"]
    return {
        "generated_by": "fleetsim calibrate",
        "data_dir": str(data),
        "mode": "fast (subsampled, tests only)" if opts.fast else "full",
        "sources": SOURCES,
        "rows_used": {
            "per_op": int(len(ops)),
            "per_op_models": sorted(ops["model"].unique().tolist()),
            "all_reduce": int(len(d["all_reduce"])),
            "splitwise_h100": int(len(d["splitwise"])),
            "mlenergy_runs": int(len(d["mlenergy"])),
            "mlenergy_skipped": int(len(d["ml_skipped"])),
        },
        "profiles": d["profiles_meta"],
        "profile_precedence": "a profile's (shape, TP) block replaces Vidur's rows of the same"
                              " shape and TP",
        "anchors": {"idle_w": IDLE_W, "peak_bf16_flops": h100_gpu().peak_bf16_flops,
                    "hbm_bw_bytes_per_s": h100_gpu().hbm_bw_bytes_per_s, "cap_w": h100_gpu().tdp_w},
        "assumptions": {
            "mlenergy_conditions": "calibration/data/mlenergy_conditions.yaml (prompt lengths,"
                                   " vLLM defaults, output-length shape)",
            "splitwise_excluded": json.loads(excluded[["model", "tp", "prompt_tokens", "batch", "reason"]]
                                             .to_json(orient="records")) if len(excluded) else [],
        },
        "timing_fields": {
            "gemm/elementwise": "per-op roofline (Vidur tables)",
            "all_reduce": "NCCL table (Vidur network-dgx), alpha + beta * bytes",
            "iteration_fixed_s, per_seq_s, attn_decode, attn_prefill": "ML.ENERGY median ITL",
        },
        "power_fields": {"idle_w": "datasheet anchor",
                         "p_busy_w, p_active_w, activity_flops_per_s, activity_bytes_per_s, e_byte_j":
                         "ML.ENERGY per-GPU power (avg_power_W / num_gpus), a saturated BF16 GEMM"
                         f" bounded at {mlenergy.SATURATED_GEMM_MAX_W:.0f} W"},
    }


def _sensitivity(ml, cond, base) -> pd.DataFrame:
    """How the fitted ML.ENERGY errors move when the assumed prompt length is halved or
    doubled (refit, then the closed-form steady state; in-sample)."""
    rows = []
    for scale in (0.5, 1.0, 2.0):
        t = mlenergy.fit_timing(ml, cond, base, max_nfev=100, input_scale=scale)
        p = mlenergy.fit_power(ml, cond, t, IDLE_W, input_scale=scale)
        pred = [mlenergy.steady_metrics(r, cond, t, p, scale) for r in ml.itertuples(index=False)]
        rows.append({
            "prompt_scale": scale,
            "itl_mape": float(np.mean(_ape([x["itl_s"] for x in pred], ml["itl_s"]))),
            "gpu_power_mape": float(np.mean(_ape([x["gpu_power_w"] for x in pred], ml["gpu_power_w"]))),
            "j_per_token_mape": float(np.mean(_ape([x["j_per_token"] for x in pred], ml["j_per_token"]))),
            "p_busy_w": p.p_busy_w, "p_active_w": p.p_active_w,
            "activity_tflops": p.activity_flops_per_s / 1e12,
            "activity_tbps": p.activity_bytes_per_s / 1e12, "e_byte_pj": p.e_byte_j * 1e12,
        })
    return pd.DataFrame(rows)
