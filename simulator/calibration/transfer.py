"""``fleetsim calibrate --gpu B200``: a GPU type with serving measurements but no per-op tables.

The sources hold per-op and NCCL tables for the H100 only (Vidur), and ML.ENERGY v3 serving
runs on the H100 and the B200. For a GPU like the B200 the pipeline is:

1. **per-op efficiencies transfer from the H100**: the GEMM and element-wise rooflines are fitted
   on the Vidur H100 tables (as for the H100) and applied as *fractions of the new GPU's
   datasheet peaks* (BF16/FP8/FP4 FLOP/s, HBM bandwidth). A GEMM that reaches 75 % of the
   H100's peak is assumed to reach 75 % of the B200's. Nothing per-op is fitted on the B200;
   the serving-stack constants fitted next absorb part of what transfers badly;
2. **all-reduce**: the H100's NCCL lines with the per-byte cost scaled by the NVLink bandwidth
   ratio (H100 900 GB/s -> B200 1.8 TB/s); the latency unchanged. The B200 runs are all TP 1,
   so nothing identifies it: an assumption;
3. **fitted on the GPU's own measurements** (ML.ENERGY, dense BF16 runs): the serving-stack
   constants (per-iteration and per-sequence CPU costs, per-layer attention overhead, decode
   attention HBM efficiency, prefill attention compute efficiency) to median ITL, and the power
   model (busy floor, activity power and its rates, energy per byte, bounded by a saturated
   BF16 GEMM at the board limit) to per-GPU power, with a soft-L1 loss (:data:`ROBUST`) so a few
   runs far off every model's trend do not pull the fit;
4. **leave-one-model-out**: each model refitted without it, every run simulated with the engine
   (ITL, power and J per output token come out of the simulation, J/token is never fitted);
5. runs excluded from the fit (:data:`EXCLUDED`, each with its reason) are still simulated with
   the final calibration and their errors reported beside the others;
6. **mixtures of experts**, as on the H100: the expert terms (grouped-GEMM efficiency per
   expert weight precision, expert-parallel layer time, popularity exponent; soft-L1 as the
   dense fit) fitted on this GPU's MoE runs on top of
   its dense fit (which saw no MoE run), leave-one-model-out over the MoE models; the power
   model is never fitted on an MoE run, so MoE power is a check. Runs with attention data
   parallelism (``dp`` > 1) are skipped by the loader with the reason.

Residuals for Monte Carlo: ``itl``, ``gpu_power``, ``j_per_token`` from the held-out runs;
``decode_time`` (the memory-bound side of a projection's timing draw) is this GPU's ``itl``;
``prefill_time`` (compute-bound side) is the H100's, whose per-op fits were transferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.calibration import mlenergy
from simulator.calibration import sources as S
from simulator.devices import DeviceProfile, load_calibration, load_profile, profile_dir
from simulator.physics.params import AllReduceFit, Calibration, TimingParams

#: where the per-op and NCCL tables were measured
SOURCE_GPU = "H100-SXM5-80GB"

#: idle power anchors (W) of GPUs calibrated by transfer: no idle rows in any data set.
#: B200: the H100 profile's 70 W anchor is an H100 at its idle clock; loaded but idle GPUs in P0
#: read 119 W on an H100 (nvidia-smi in LMCache issue 259) and 192-196 W on a B200 (TensorRT-LLM
#: issue 10278): the same ratio (70 / 119) applied to the B200's reading gives 114 W.
IDLE_ANCHORS_W = {"B200-SXM-180GB": 114.0}

#: soft-L1 bend of the fits' relative residuals (see mlenergy._loss)
ROBUST = 0.05

#: (ML.ENERGY gpu, task, fleetsim model) -> why those runs are left out of the fit (they are
#: still simulated and their errors reported).
GPQA_GAP = (
    "median ITL 30-48 ms nearly flat from 8 to 128 concurrent sequences at 290-510 W per GPU"
    " (Qwen3-8B/14B): the GPU idles ~25 ms of every step. The same models' H100 gpqa runs"
    " (10-28 ms, growing with the batch as the model predicts) and their B200 chat runs"
    " (5-7 ms at batch 8) show no such gap, so it is a property of those runs' serving set-up"
    " (long reasoning outputs with the reasoning parser, 8 API servers), not of the GPU;"
    " no shape-based term represents it")
#: the same gap in the one B200 MoE gpqa sweep of a Qwen3 thinking model that has it
GPQA_GAP_MOE = (
    "median ITL 32-41 ms nearly flat from 8 to 64 concurrent sequences at 305-470 W per GPU"
    " (Qwen3-30B-A3B-Thinking): the GPU idles most of every step. The same model's H100 gpqa runs"
    " (12-29 ms, growing with the batch) and the same shape's B200 chat and code runs"
    " (8.2-8.4 ms at 660-700 W at batch 8) show no such gap: the idle-gap pathology of the dense"
    " B200 gpqa runs (Qwen3 reasoning set-up), not a property of the GPU or of the experts;"
    " no shape-based term represents it")
EXCLUDED = {("B200", "gpqa", "Qwen3-8B"): GPQA_GAP, ("B200", "gpqa", "Qwen3-14B"): GPQA_GAP,
            ("B200", "gpqa", "Qwen3-30B-A3B"): GPQA_GAP_MOE}


@dataclass
class TransferResults:
    gpu: str
    ml_runs: pd.DataFrame
    ml_excluded: pd.DataFrame
    ml_skipped: pd.DataFrame
    cal: Calibration
    errors: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    moe_runs: pd.DataFrame | None = None
    moe_excluded: pd.DataFrame | None = None


def mlenergy_gpu(dev: DeviceProfile) -> str:
    """The name ML.ENERGY's ``gpu`` column uses for the device (an alias of its profile)."""
    for n in (dev.name, *dev.aliases):
        if n in S.TDP_W:
            return n
    raise ValueError(f"no ML.ENERGY runs are known for {dev.name}")


def transfer_timing(base: TimingParams, src: DeviceProfile, dst: DeviceProfile) -> TimingParams:
    """The source GPU's per-op fits on the destination GPU: efficiencies unchanged (they are
    fractions of each GPU's own peaks); NCCL per-byte cost scaled by the NVLink bandwidth
    ratio, latency unchanged."""
    ratio = src.gpu.nvlink_bw_bytes_per_s / dst.gpu.nvlink_bw_bytes_per_s
    ar = {tp: AllReduceFit(alpha_s=f.alpha_s, beta_s_per_byte=f.beta_s_per_byte * ratio)
          for tp, f in base.all_reduce.items()}
    return base.model_copy(update={"all_reduce": ar})


def load_runs(data: Path, gpu: str, moe: bool = False
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(runs to fit, excluded runs with their reason, runs left out of the fit and the checks):
    the dense runs, or with ``moe`` the mixture-of-experts runs."""
    src = data / "sources" / "mlenergy-v3"
    ml, skipped = S.load_mlenergy(src / "runs.csv", gpu=gpu)
    if len(ml):
        ml = ml[ml["moe"] == moe].reset_index(drop=True)
    lengths = S.load_output_lengths(src / "output_lengths.csv", ml)
    ml["lengths"] = [lengths[r] for r in ml["row"]]
    reason = [EXCLUDED.get((gpu, t, m)) for t, m in zip(ml["task"], ml["model"])]
    ex = np.array([r is not None for r in reason], dtype=bool)
    excluded = ml[ex].assign(reason=[r for r in reason if r is not None]).reset_index(drop=True)
    return ml[~ex].reset_index(drop=True), excluded, skipped


def _simulate_into(df: pd.DataFrame, i: int, run, cond, cal: Calibration, suffix: str) -> None:
    sim = mlenergy.simulate_run(run, cond, cal)
    for k, col in (("itl_s", "itl"), ("gpu_power_w", "gpu_power"), ("j_per_token", "j_per_token"),
                   ("tok_s", "tok_s"), ("batch", "batch")):
        df.loc[df.index[i], f"{col}_{suffix}"] = sim[k]


def run(gpu: str, data: str | Path = "calibration/data", out: str | Path | None = None,
        report: str | Path | None = None, fast: bool = False,
        progress: bool = True) -> TransferResults:
    """Fit ``gpu``'s calibration (see the module docstring); writes ``out`` (default the
    profile's ``calibration.yaml``) and, optionally, the report folder ``report``."""
    from simulator.calibration.pipeline import (_progress, _rel, _round, _subsample_ops, _thin,
                                                _write_yaml, fit_timing_base, load_all)

    dev, src_dev = load_profile(gpu), load_profile(SOURCE_GPU)
    if dev.key == src_dev.key:
        raise ValueError("the H100 is calibrated by the full pipeline (fleetsim calibrate)")
    if dev.name not in IDLE_ANCHORS_W:
        raise ValueError(f"no idle-power anchor for {dev.name} (IDLE_ANCHORS_W)")
    data = Path(data)
    out = Path(out) if out is not None else profile_dir(dev.name) / "calibration.yaml"
    ml_gpu = mlenergy_gpu(dev)
    d = load_all(data)  # the H100 per-op and NCCL tables, conditions (validated)
    ops, ar, cond = d["ops"], d["all_reduce"], d["conditions"]
    if fast:
        ops = _subsample_ops(ops)
    ml, excluded, skipped = load_runs(data, ml_gpu)
    moe, moe_excluded, _ = load_runs(data, ml_gpu, moe=True)
    if fast:
        ml = ml.iloc[::3].reset_index(drop=True)
        excluded = excluded.iloc[::4].reset_index(drop=True)
        moe = moe.iloc[::8].reset_index(drop=True)
        moe_excluded = moe_excluded.iloc[::4].reset_index(drop=True)
    idle_w = IDLE_ANCHORS_W[dev.name]
    models = sorted(ml["model"].unique())
    moe_models = sorted(moe["model"].unique()) if len(moe) else []
    tick, close = _progress(progress, (len(models) if not fast else 0) + 3
                            + (len(moe_models) + 1 if len(moe) else 0), f"calibrate {gpu}")
    tick = tick or (lambda n=1: None)

    base = transfer_timing(fit_timing_base(ops, ar), src_dev, dev)
    ml = mlenergy.with_dense_protocol(ml, cond, base, idle_w, dev)
    nfev = 40 if fast else 300
    timing = mlenergy.fit_timing(ml, cond, base, max_nfev=nfev, robust=ROBUST)
    power = mlenergy.fit_power(ml, cond, timing, idle_w, robust=ROBUST)
    cal_core = Calibration(version="1.0", timing=timing, power=power)
    tick()
    res = ml.copy()
    for i, r in enumerate(ml.itertuples(index=False)):
        _simulate_into(res, i, r, cond, cal_core, "fit")
    for m in models:
        idx = np.flatnonzero((ml["model"] == m).to_numpy())
        if fast:
            cal_m = cal_core
        else:
            train = ml[ml["model"] != m]
            t_m = mlenergy.fit_timing(train, cond, base, max_nfev=nfev, robust=ROBUST)
            p_m = mlenergy.fit_power(train, cond, t_m, idle_w, robust=ROBUST)
            cal_m = Calibration(version="1.0", timing=t_m, power=p_m)
            tick()
        for i in idx:
            if fast:
                for c in ("itl", "gpu_power", "j_per_token", "tok_s", "batch"):
                    res.loc[res.index[i], f"{c}_lomo"] = res.loc[res.index[i], f"{c}_fit"]
            else:
                _simulate_into(res, int(i), ml.iloc[int(i)], cond, cal_m, "lomo")
    exc = excluded.copy()
    for i in range(len(excluded)):
        _simulate_into(exc, i, excluded.iloc[i], cond, cal_core, "fit")
    tick()

    # mixtures of experts, as on the H100: their terms on this GPU's MoE runs on top of every
    # dense coefficient (which never saw an MoE run); power is not refitted: MoE power is a check
    moe_res = moe_exc = None
    if len(moe):
        from simulator.calibration.pipeline import _simulate_runs

        dense_timing = timing
        precs = sorted(moe["precision"].unique())
        moe = mlenergy.with_moe_protocol(moe, cond, dense_timing, power)
        timing = mlenergy.fit_moe_timing(moe, cond, dense_timing, max_nfev=40 if fast else 200,
                                         robust=ROBUST)
        cal_core = Calibration(version="1.0", timing=timing, power=power)
        tick()
        moe_res = _simulate_runs(moe, cond, cal_core, lambda train: Calibration(
            version="1.0", timing=mlenergy.fit_moe_timing(train, cond, dense_timing, robust=ROBUST,
                                                          precisions=precs),
            power=power), not fast, tick)
        moe_exc = moe_excluded.copy()
        for i in range(len(moe_excluded)):
            _simulate_into(moe_exc, i, moe_excluded.iloc[i], cond, cal_core, "fit")

    how = "leave-one-model-out" if not fast else "in-sample (fast mode: no refits)"
    errors = _errors(res, exc, how, dev, src_dev)
    if moe_res is not None:
        errors["mlenergy_moe"] = _moe_errors(moe_res, moe_exc, how)
    errors["mlenergy"]["saturated_gemm_w"] = mlenergy.saturated_gemm_power_w(power, dev)
    h100_res = load_calibration(profile_dir(SOURCE_GPU) / "calibration.yaml").residuals
    residuals = {
        "itl": _thin(_rel(res["itl_lomo"], res["itl_s"])),
        "gpu_power": _thin(_rel(res["gpu_power_lomo"], res["gpu_power_w"])),
        "j_per_token": _thin(_rel(res["j_per_token_lomo"], res["j_per_token"])),
        "decode_time": _thin(_rel(res["itl_lomo"], res["itl_s"])),
        "prefill_time": list(h100_res.get("prefill_time", [])),
    }
    prov = {
        "generated_by": f"fleetsim calibrate --gpu {gpu}",
        "data_dir": str(data),
        "mode": "fast (subsampled, tests only)" if fast else "full",
        "sources": {"vidur": "per-op and NCCL tables of the H100 (transferred)",
                    "mlenergy": "ml-energy/leaderboard@0cd52dab:public/data/models/*.json,"
                                f" ML.ENERGY Benchmark v3 (Apache-2.0), {ml_gpu} rows"},
        "rows_used": {"per_op_h100": int(len(ops)), "all_reduce_h100": int(len(ar)),
                      "mlenergy_runs": int(len(ml)), "mlenergy_excluded": int(len(excluded)),
                      "mlenergy_moe_runs": int(len(moe)),
                      "mlenergy_moe_excluded": int(len(moe_excluded)),
                      "mlenergy_skipped": int(len(skipped))},
        "anchors": {"idle_w": idle_w, "peak_bf16_flops": dev.gpu.peak_bf16_flops,
                    "hbm_bw_bytes_per_s": dev.gpu.hbm_bw_bytes_per_s, "cap_w": dev.gpu.tdp_w},
        "assumptions": {
            "per_op": f"efficiencies fitted on {SOURCE_GPU} (Vidur) tables, applied as fractions"
                      f" of the {dev.name} datasheet peaks",
            "all_reduce": "H100 NCCL lines, per-byte cost x"
                          f" {src_dev.gpu.nvlink_bw_bytes_per_s / dev.gpu.nvlink_bw_bytes_per_s:g}"
                          " (NVLink bandwidth ratio), latency unchanged; not identified (TP 1 runs)",
            "custom_all_reduce_latency": "the prior (8.4 us, Vidur's 2-GPU NCCL latency); not"
                                         " identified (TP 1 runs)",
            "idle_w": "IDLE_ANCHORS_W in simulator/calibration/transfer.py",
            "mlenergy_conditions": "calibration/data/mlenergy_conditions.yaml (as the H100's)",
            "excluded": {f"{g} {t} {m}": r for (g, t, m), r in EXCLUDED.items() if g == ml_gpu},
            "loss": f"soft-L1, bend at {ROBUST:.0%} relative residual",
            "residuals": "decode_time = this GPU's held-out ITL residuals; prefill_time = the"
                         " H100's (per-op fits transferred)",
        },
        "timing_fields": {"gemm/elementwise": f"transferred from {SOURCE_GPU} (Vidur)",
                          "all_reduce": "transferred, scaled by NVLink bandwidth",
                          "iteration_fixed_s, per_seq_s, attn_decode, attn_prefill":
                          f"ML.ENERGY {ml_gpu} median ITL",
                          "experts, expert_parallel_layer_s": f"ML.ENERGY {ml_gpu} MoE median ITL"
                          " (dense coefficients fixed); a precision missing from a leave-one-"
                          "model-out fit takes the BF16 kernel's terms"},
        "power_fields": {"idle_w": "anchor (see assumptions)",
                         "p_busy_w, p_active_w, activity_flops_per_s, activity_bytes_per_s,"
                         " e_byte_j": f"ML.ENERGY {ml_gpu} per-GPU power, a saturated BF16 GEMM"
                                      f" bounded at {dev.gpu.tdp_w:.0f} W"},
    }
    cal = Calibration(
        version="1.0",
        description=f"{dev.name} timing and power: per-op efficiencies transferred from the"
                    f" {SOURCE_GPU} fit (Vidur tables); serving-stack constants and power fitted"
                    f" on ML.ENERGY v3 {ml_gpu} vLLM 0.11 serving runs. Generated by `fleetsim"
                    f" calibrate --gpu {gpu}`; do not edit by hand.",
        timing=timing, power=power, provenance=prov, errors=_round(errors), residuals=residuals)
    _write_yaml(cal, out)
    notes = [f"{len(excluded) + len(moe_excluded)} {ml_gpu} runs excluded from the fit: see the"
             " excluded tables."]
    out_res = TransferResults(dev.name, res, exc, skipped, cal, errors, notes, moe_res, moe_exc)
    if report is not None:
        write_report(out_res, Path(report), out)
        if out.resolve() == (profile_dir(dev.name) / "calibration.yaml").resolve():
            from simulator.calibration.report import sync_shipped_readmes

            sync_shipped_readmes(data.parent.parent)
    tick()
    close()
    return out_res


def _mape(df: pd.DataFrame, q: str, col: str, suffix: str) -> float:
    from simulator.calibration.pipeline import _ape

    return float(np.mean(_ape(df[f"{q}_{suffix}"], df[col]))) if len(df) else math.nan


QUANTITIES = (("itl", "itl_s"), ("gpu_power", "gpu_power_w"), ("j_per_token", "j_per_token"))


def _errors(res: pd.DataFrame, exc: pd.DataFrame, how: str, dev: DeviceProfile,
            src: DeviceProfile) -> dict[str, Any]:
    by_model = {m: {**{q: _mape(g, q, c, "lomo") for q, c in QUANTITIES}, "runs": int(len(g))}
                for m, g in res.groupby("model")}
    by_group = {f"{m} TP{int(tp)}": {**{q: _mape(g, q, c, "lomo") for q, c in QUANTITIES},
                                     "runs": int(len(g))}
                for (m, tp), g in res.groupby(["model", "tp"])}
    excluded = {}
    for (m, t), g in exc.groupby(["model", "task"]):
        excluded[f"{m} {t}"] = {**{q: _mape(g, q, c, "fit") for q, c in QUANTITIES},
                                "runs": int(len(g)), "reason": str(g["reason"].iloc[0])}
    return {
        "method": how,
        "gpu": dev.name,
        "per_op": {"transferred_from": src.name,
                   "note": "no per-op tables of this GPU: the H100 per-op fits apply as fractions"
                           " of its datasheet peaks (their H100 errors are in the H100 column)"},
        "all_reduce": {"transferred_from": src.name,
                       "note": "H100 NCCL lines scaled by the NVLink bandwidth ratio"},
        "mlenergy": {
            "target_mape": 0.10,
            "method": how + "; every run simulated with the engine (closed loop at max_num_seqs)",
            "itl_mape": _mape(res, "itl", "itl_s", "lomo"),
            "gpu_power_mape": _mape(res, "gpu_power", "gpu_power_w", "lomo"),
            "j_per_token_mape": _mape(res, "j_per_token", "j_per_token", "lomo"),
            "itl_mape_in_sample": _mape(res, "itl", "itl_s", "fit"),
            "gpu_power_mape_in_sample": _mape(res, "gpu_power", "gpu_power_w", "fit"),
            "j_per_token_mape_in_sample": _mape(res, "j_per_token", "j_per_token", "fit"),
            "runs": int(len(res)),
            "by_model": by_model,
            "by_group": by_group,
            "group_target_mape": 0.15,
            "excluded": excluded,
        },
    }


def _moe_errors(res: pd.DataFrame, exc: pd.DataFrame, how: str) -> dict[str, Any]:
    from simulator.calibration.pipeline import _ml_errors

    e = _ml_errors(res, how + "; MoE terms fitted on the other MoE models' runs; power and every"
                   " dense coefficient never saw an MoE run; every run simulated with the engine")
    e["excluded"] = {f"{m} {t}": {**{q: _mape(g, q, c, "fit") for q, c in QUANTITIES},
                                  "runs": int(len(g)), "reason": str(g["reason"].iloc[0])}
                     for (m, t), g in exc.groupby(["model", "task"])}
    return e


# ------------------------------------------------------------------ report
def write_report(res: TransferResults, d: Path, out_yaml: Path) -> Path:
    """Markdown report and the predicted-against-measured chart of a transfer calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simulator.calibration.report import _params_table, _pct, device_table, mlenergy_figure

    d.mkdir(parents=True, exist_ok=True)
    m = res.ml_runs
    fig = mlenergy_figure(m)
    fig.suptitle(f"{res.gpu}: ML.ENERGY v3 runs simulated with a calibration fitted without"
                 " their model; dotted: +-10 %")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.3, hspace=0.35)
    chart = "mlenergy.png"
    fig.savefig(d / chart, dpi=90)
    plt.close(fig)
    e = res.errors
    ml = e["mlenergy"]
    try:
        shown = out_yaml.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = out_yaml
    md = [f"# Calibration report: {res.gpu}", "",
          f"Generated by `fleetsim calibrate --gpu` ({res.cal.provenance.get('mode', 'full')} mode)."
          f" Calibration written to `{shown}`. Do not edit: rerun.", "",
          "Method (simulator/calibration/transfer.py): per-op efficiencies transferred from the"
          " H100 fit as fractions of this GPU's datasheet peaks; serving-stack constants and power"
          " fitted on this GPU's ML.ENERGY runs; every run simulated with the engine.", "",
          "## Errors", "", device_table(e), "",
          f"In-sample (all models in the fit): ITL {_pct(ml['itl_mape_in_sample'])}, power"
          f" {_pct(ml['gpu_power_mape_in_sample'])}, J/token {_pct(ml['j_per_token_mape_in_sample'])}.", "",
          "| model | task | TP | max_num_seqs | ITL ms meas / sim | W/GPU meas / sim | J/token meas / sim | batch meas / sim |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in m.itertuples():
        md.append(f"| {r.model} | {r.task} | {r.tp} | {r.max_num_seqs} | {r.itl_s * 1e3:.1f} / {r.itl_lomo * 1e3:.1f} |"
                  f" {r.gpu_power_w:.0f} / {r.gpu_power_lomo:.0f} | {r.j_per_token:.3f} / {r.j_per_token_lomo:.3f} |"
                  f" {r.avg_batch:.0f} / {r.batch_lomo:.0f} |")
    moe = res.moe_runs if res.moe_runs is not None else pd.DataFrame()
    if len(moe):
        mo = e["mlenergy_moe"]
        md += ["", "Mixtures of experts (expert terms fitted on the other MoE models' runs on top of the"
               " dense fit; power never fitted on an MoE run). In-sample: ITL"
               f" {_pct(mo['itl_mape_in_sample'])}, power {_pct(mo['gpu_power_mape_in_sample'])},"
               f" J/token {_pct(mo['j_per_token_mape_in_sample'])}.", "",
               "| model | precision | task | TP | EP | max_num_seqs | ITL ms meas / sim | W/GPU meas / sim | J/token meas / sim | batch meas / sim |",
               "|---|---|---|---:|:---:|---:|---:|---:|---:|---:|"]
        for r in moe.itertuples():
            md.append(f"| {r.model} | {r.precision} | {r.task} | {r.tp} | {'yes' if r.expert_parallel else ''} |"
                      f" {r.max_num_seqs} | {r.itl_s * 1e3:.1f} / {r.itl_lomo * 1e3:.1f} |"
                      f" {r.gpu_power_w:.0f} / {r.gpu_power_lomo:.0f} | {r.j_per_token:.3f} / {r.j_per_token_lomo:.3f} |"
                      f" {r.avg_batch:.0f} / {r.batch_lomo:.0f} |")
    ex_all = [x for x in (res.ml_excluded, res.moe_excluded) if x is not None and len(x)]
    if ex_all:
        md += ["", "Excluded from the fit, simulated with the shipped calibration (in-sample"
               " figures would be better than these; they are not held out either):", "",
               "| model | task | max_num_seqs | ITL ms meas / sim | W/GPU meas / sim | J/token meas / sim |",
               "|---|---|---:|---:|---:|---:|"]
        for r in pd.concat(ex_all, ignore_index=True).itertuples():
            md.append(f"| {r.model} | {r.task} | {r.max_num_seqs} | {r.itl_s * 1e3:.1f} / {r.itl_fit * 1e3:.1f} |"
                      f" {r.gpu_power_w:.0f} / {r.gpu_power_fit:.0f} | {r.j_per_token:.3f} / {r.j_per_token_fit:.3f} |")
        md += ["", "Why:", ""] + [f"* {k}: {v}" for k, v in
                                  {f"{t} ({m})": r for (_, t, m), r in EXCLUDED.items()}.items()]
    if len(res.ml_skipped):
        md += ["", "Runs left out of the fit and the checks (and why):", "", "| model | runs | reason |", "|---|---:|---|"]
        for (mod, reason), g in res.ml_skipped.groupby(["model", "reason"]):
            md.append(f"| {mod} | {len(g)} | {reason} |")
    md += ["", f"![ML.ENERGY]({chart})", "", "## Fitted parameters", "", _params_table(res.cal, load_profile(res.gpu)), ""]
    if res.notes:
        md += ["## Notes", ""] + [f"* {n}" for n in res.notes]
    path = d / "README.md"
    path.write_text("\n".join(md) + "\n")
    return path
