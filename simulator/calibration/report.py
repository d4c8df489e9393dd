"""Calibration report: markdown tables and PNG charts (predicted against measured, residuals).

Everything in the report is computed from :class:`~simulator.calibration.pipeline.Results`;
the error table is also written into ``calibration/README.md`` between marker comments, so no
figure is ever typed by hand.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simulator.calibration.mlenergy import SATURATED_GEMM_MAX_W, saturated_gemm_power_w  # noqa: E402


BEGIN = "<!-- BEGIN GENERATED ERROR TABLE (fleetsim calibrate) -->"
END = "<!-- END GENERATED ERROR TABLE -->"
OP_ORDER = ["qkv", "o", "up", "down", "norm", "rope", "act", "add", "emb"]


def _pct(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def _ok(x, target) -> str:
    return "" if x is None or not np.isfinite(x) else ("yes" if x <= target else "**no**")


def summary_table(e: dict, other: dict | None = None) -> str:
    """The headline error table (markdown) of the H100 calibration ``e``; with ``other`` (the
    errors of a GPU calibrated by transfer, e.g. the B200's) the two side by side."""
    if other is not None:
        return combined_table(e, other)
    po, sw, ml = e["per_op"], e["splitwise"], e["mlenergy"]
    ll, bl = sw["llama2_70b"], sw["bloom_176b_held_out"]
    rows = [
        ("Per-op time, GEMMs (qkv, o, up, down), 6 Vidur models x TP 1-8", po["gemm_mape"], 0.05),
        ("Per-op time, all 9 ops", po["all_ops_mape"], 0.05),
        ("Per-layer time (sum of ops)", po["layer_sum_mape"], 0.05),
        *((f"NCCL all-reduce time, {g} GPUs (in-sample: one fit per group size)", v["mape"], 0.05)
          for g, v in sorted(e.get("all_reduce", {}).items(), key=lambda kv: int(kv[0]))),
        ("Splitwise llama2-70b prefill time (TP 2/4/8)", ll["prefill_time_mape"], 0.10),
        ("Splitwise llama2-70b decode time per token", ll["decode_time_mape"], 0.10),
        ("Splitwise bloom-176b prefill time (model held out)", bl["prefill_time_mape"], 0.10),
        ("Splitwise bloom-176b decode time per token (held out)", bl["decode_time_mape"], 0.10),
        (f"ML.ENERGY median ITL ({ml['runs']} runs)", ml["itl_mape"], 0.10),
        ("ML.ENERGY per-GPU power", ml["gpu_power_mape"], 0.10),
        ("ML.ENERGY J per output token (simulated)", ml["j_per_token_mape"], 0.10),
    ]
    out = [f"Method: {e['method']}.", "",
           "| quantity | MAPE | target | met |", "|---|---:|---:|:---:|"]
    for name, v, t in rows:
        out.append(f"| {name} | {_pct(v)} | {_pct(t)} | {_ok(v, t)} |")
    moe = e.get("mlenergy_moe")
    if moe:
        out += [f"| ML.ENERGY MoE median ITL ({moe['runs']} runs; power never fitted on MoE) |"
                f" {_pct(moe['itl_mape'])} | {_pct(0.10)} | {_ok(moe['itl_mape'], 0.10)} |",
                f"| ML.ENERGY MoE per-GPU power | {_pct(moe['gpu_power_mape'])} | {_pct(0.10)} |"
                f" {_ok(moe['gpu_power_mape'], 0.10)} |",
                f"| ML.ENERGY MoE J per output token (simulated) | {_pct(moe['j_per_token_mape'])} |"
                f" {_pct(0.10)} | {_ok(moe['j_per_token_mape'], 0.10)} |"]
    for label, block in (("ML.ENERGY", ml), ("ML.ENERGY mixtures of experts", moe or {})):
        out += _group_table(label, block, e["method"])
    if "saturated_gemm_w" in ml:
        out += ["", f"Physics check: a saturated dense BF16 GEMM (0.8 x peak) demands"
                    f" {ml['saturated_gemm_w']:.0f} W in the fitted power model (bound:"
                    f" {SATURATED_GEMM_MAX_W:.0f} W, the board limit)."]
    return "\n".join(out)


def _group_table(label: str, ml: dict, method: str) -> list[str]:
    out: list[str] = []
    groups = ml.get("by_group") or {}
    if groups:
        gt = ml.get("group_target_mape", 0.15)
        out += ["", f"{label} by model and TP ({method.split(';')[0]}; target {_pct(gt)} each):", "",
                "| model | runs | ITL | power | J/token | met |", "|---|---:|---:|---:|---:|:---:|"]
        for name, g in groups.items():
            worst = max(g["itl"], g["gpu_power"], g["j_per_token"])
            out.append(f"| {name} | {g['runs']} | {_pct(g['itl'])} | {_pct(g['gpu_power'])} |"
                       f" {_pct(g['j_per_token'])} | {_ok(worst, gt)} |")
    return out


def _gpu_short(e: dict, default: str) -> str:
    return str(e.get("gpu", default)).split("-")[0]


def combined_table(h: dict, b: dict) -> str:
    """The H100 calibration's errors beside those of a GPU calibrated by transfer (``b``: per-op
    and NCCL fits transferred from the H100, its own ML.ENERGY runs held out model by model)."""
    g2 = _gpu_short(b, "B200")
    po, sw, ml, ml2 = h["per_op"], h["splitwise"], h["mlenergy"], b["mlenergy"]
    ll, bl = sw["llama2_70b"], sw["bloom_176b_held_out"]
    tr = "transferred from H100"
    rows = [
        ("Per-op time, GEMMs (qkv, o, up, down), 6 Vidur models x TP 1-8", po["gemm_mape"], tr, 0.05),
        ("Per-op time, all 9 ops", po["all_ops_mape"], tr, 0.05),
        ("Per-layer time (sum of ops)", po["layer_sum_mape"], tr, 0.05),
        *((f"NCCL all-reduce time, {g} GPUs (in-sample: one fit per group size)", v["mape"],
           "H100's, x NVLink ratio", 0.05)
          for g, v in sorted(h.get("all_reduce", {}).items(), key=lambda kv: int(kv[0]))),
        ("Splitwise llama2-70b prefill time (TP 2/4/8)", ll["prefill_time_mape"], "no data", 0.10),
        ("Splitwise llama2-70b decode time per token", ll["decode_time_mape"], "no data", 0.10),
        ("Splitwise bloom-176b prefill time (model held out)", bl["prefill_time_mape"], "no data", 0.10),
        ("Splitwise bloom-176b decode time per token (held out)", bl["decode_time_mape"], "no data", 0.10),
        (f"ML.ENERGY median ITL (H100 {ml['runs']} runs, {g2} {ml2['runs']})", ml["itl_mape"],
         ml2["itl_mape"], 0.10),
        ("ML.ENERGY per-GPU power", ml["gpu_power_mape"], ml2["gpu_power_mape"], 0.10),
        ("ML.ENERGY J per output token (simulated)", ml["j_per_token_mape"], ml2["j_per_token_mape"], 0.10),
    ]
    for e_name, key in (("MoE median ITL", "itl_mape"), ("MoE per-GPU power", "gpu_power_mape"),
                        ("MoE J per output token (simulated)", "j_per_token_mape")):
        moe, moe2 = h.get("mlenergy_moe"), b.get("mlenergy_moe")
        if moe:
            runs = ((f" (H100 {moe['runs']} runs" + (f", {g2} {moe2['runs']})" if moe2 else ")"))
                    if key == "itl_mape" else "")
            rows.append((f"ML.ENERGY {e_name}{runs}", moe[key],
                         moe2[key] if moe2 else "not fitted", 0.10))
    out = [f"Method: H100 {h['method']}; {g2} {b['method']} (per-op and NCCL fits transferred from"
           " the H100, serving constants and power fitted on its own ML.ENERGY runs).", "",
           f"| quantity | H100 MAPE | {g2} MAPE | target | met (H100 / {g2}) |",
           "|---|---:|---:|---:|:---:|"]
    for name, v, v2, t in rows:
        if isinstance(v2, str):
            out.append(f"| {name} | {_pct(v)} | {v2} | {_pct(t)} | {_ok(v, t)} |")
        else:
            out.append(f"| {name} | {_pct(v)} | {_pct(v2)} | {_pct(t)} | {_ok(v, t)} / {_ok(v2, t)} |")
    gt = ml.get("group_target_mape", 0.15)
    out += ["", f"ML.ENERGY by GPU, model and TP (leave-one-model-out; target {_pct(gt)} each):", "",
            "| GPU | model | runs | ITL | power | J/token | met |", "|---|---|---:|---:|---:|---:|:---:|"]
    for gpu, e in (("H100", h), ("H100 MoE", {"mlenergy": h.get("mlenergy_moe") or {}}), (g2, b),
                   (f"{g2} MoE", {"mlenergy": b.get("mlenergy_moe") or {}})):
        for name, g in (e["mlenergy"].get("by_group") or {}).items():
            worst = max(g["itl"], g["gpu_power"], g["j_per_token"])
            out.append(f"| {gpu} | {name} | {g['runs']} | {_pct(g['itl'])} | {_pct(g['gpu_power'])} |"
                       f" {_pct(g['j_per_token'])} | {_ok(worst, gt)} |")
    ex = [(f"{g2} {name}", g) for name, g in (ml2.get("excluded") or {}).items()]
    ex += [(f"{g2} MoE {name}", g) for name, g in ((b.get("mlenergy_moe") or {}).get("excluded") or {}).items()]
    if ex:
        out += ["", f"{g2} runs left out of the fit (reason: calibration/README.md), simulated with"
                " the shipped calibration:", "",
                "| GPU | runs | ITL | power | J/token |", "|---|---:|---:|---:|---:|"]
        for name, g in ex:
            out.append(f"| {name} | {g['runs']} | {_pct(g['itl'])} | {_pct(g['gpu_power'])} |"
                       f" {_pct(g['j_per_token'])} |")
    checks = []
    for gpu, e, bound in (("H100", h, SATURATED_GEMM_MAX_W), (g2, b, None)):
        w = e["mlenergy"].get("saturated_gemm_w")
        if w is not None:
            lim = bound if bound is not None else b.get("cap_w")
            checks.append(f"{gpu} {w:.0f} W" + (f" (bound {lim:.0f} W)" if lim else ""))
    if checks:
        out += ["", "Physics check: a saturated dense BF16 GEMM (0.8 x peak) demands, in the fitted"
                " power models, " + "; ".join(checks) + " (the bound is each GPU's board limit)."]
    return "\n".join(out)


def device_table(e: dict) -> str:
    """The error table of one GPU calibrated by transfer (its own report)."""
    ml = e["mlenergy"]
    moe = e.get("mlenergy_moe") or {}
    gt = ml.get("group_target_mape", 0.15)
    out = [f"Method: {e['method']}.", "", "| quantity | MAPE | target | met |", "|---|---:|---:|:---:|"]
    rows = [(f"ML.ENERGY median ITL ({ml['runs']} runs)", ml["itl_mape"]),
            ("ML.ENERGY per-GPU power", ml["gpu_power_mape"]),
            ("ML.ENERGY J per output token (simulated)", ml["j_per_token_mape"])]
    if moe:
        rows += [(f"ML.ENERGY MoE median ITL ({moe['runs']} runs; power never fitted on MoE)",
                  moe["itl_mape"]),
                 ("ML.ENERGY MoE per-GPU power", moe["gpu_power_mape"]),
                 ("ML.ENERGY MoE J per output token (simulated)", moe["j_per_token_mape"])]
    for name, v in rows:
        out.append(f"| {name} | {_pct(v)} | {_pct(0.10)} | {_ok(v, 0.10)} |")
    out += ["", f"By model and TP (target {_pct(gt)} each):", "",
            "| model | runs | ITL | power | J/token | met |", "|---|---:|---:|---:|---:|:---:|"]
    for block, tag in ((ml, ""), (moe, "MoE ")):
        for name, g in (block.get("by_group") or {}).items():
            worst = max(g["itl"], g["gpu_power"], g["j_per_token"])
            out.append(f"| {tag}{name} | {g['runs']} | {_pct(g['itl'])} | {_pct(g['gpu_power'])} |"
                       f" {_pct(g['j_per_token'])} | {_ok(worst, gt)} |")
    for block, tag in ((ml, ""), (moe, "MoE ")):
        for name, g in (block.get("excluded") or {}).items():
            out.append(f"| {tag}{name} (left out of the fit) | {g['runs']} | {_pct(g['itl'])} |"
                       f" {_pct(g['gpu_power'])} | {_pct(g['j_per_token'])} | |")
    return "\n".join(out)


def shipped_table() -> str:
    """The README error table from the shipped files: the H100's, and the B200's beside it
    when its profile has been calibrated."""
    from simulator.devices import load_calibration, profile_dir

    h = load_calibration(profile_dir("H100") / "calibration.yaml").errors
    b_path = profile_dir("B200") / "calibration.yaml"
    b = load_calibration(b_path).errors if b_path.exists() else None
    if b is not None:
        b = {**b, "cap_w": (load_calibration(b_path).provenance.get("anchors") or {}).get("cap_w")}
    return summary_table(h, b)


def sync_shipped_readmes(root: Path) -> list[Path]:
    """Rewrite the error tables of the project README and calibration/README.md from the
    shipped calibration files (after either GPU was recalibrated)."""
    done = []
    for readme in (root / "README.md", root / "calibration" / "README.md"):
        if _sync(readme, shipped_table()):
            done.append(readme)
    return done


# ------------------------------------------------------------------ charts
def _scatter(ax, meas, pred, labels, title, unit, log=True):
    meas, pred = np.asarray(meas, float), np.asarray(pred, float)
    for lab in pd.unique(labels):
        m = np.asarray(labels) == lab
        ax.scatter(meas[m], pred[m], s=6, alpha=0.6, label=str(lab))
    lo = np.nanmin([meas.min(), pred.min()])
    hi = np.nanmax([meas.max(), pred.max()])
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.plot([lo, hi], [lo * 1.1, hi * 1.1], "k:", lw=0.6)
    ax.plot([lo, hi], [lo / 1.1, hi / 1.1], "k:", lw=0.6)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"measured ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.set_title(title, fontsize=9)


def _charts(res, d: Path) -> list[str]:
    files = []
    ops = res.ops
    # per-op predicted vs measured
    fig, axs = plt.subplots(3, 3, figsize=(13, 12))
    for ax, op in zip(axs.flat, OP_ORDER):
        g = ops[ops["op"] == op]
        if len(g):
            _scatter(ax, g["t_s"] * 1e3, g["pred_lomo_s"] * 1e3, g["model"],
                     f"{op}: leave-one-model-out", "ms")
    axs[0, 0].legend(fontsize=6, markerscale=2)
    fig.suptitle("Per-op time, predicted (model held out) vs measured (Vidur H100); dotted: +-10 %")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.3, hspace=0.35)
    files.append("ops_predicted_vs_measured.png")
    fig.savefig(d / files[-1], dpi=90)
    plt.close(fig)
    # per-op residuals vs tokens
    fig, axs = plt.subplots(3, 3, figsize=(13, 12))
    for ax, op in zip(axs.flat, OP_ORDER):
        g = ops[ops["op"] == op]
        if len(g):
            for tp, h in g.groupby("tp"):
                ax.scatter(h["n_tokens"], h["pred_lomo_s"] / h["t_s"] - 1, s=3, alpha=0.4, label=f"TP {tp}")
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.set_ylim(-0.8, 0.8)
            ax.set_xlabel("tokens (rows)")
            ax.set_ylabel("predicted / measured - 1")
            ax.set_title(op, fontsize=9)
    axs[0, 0].legend(fontsize=6, markerscale=3)
    fig.suptitle("Per-op relative residuals against tokens (leave-one-model-out)")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.3, hspace=0.35)
    files.append("ops_residuals.png")
    fig.savefig(d / files[-1], dpi=90)
    plt.close(fig)
    # NCCL
    fig, ax = plt.subplots(1, 2, figsize=(12, 5))
    for p, g in res.nccl.groupby("workers"):
        g = g.sort_values("bytes")
        ax[0].scatter(g["bytes"], g["t_s"] * 1e3, s=4, alpha=0.5, label=f"{p} GPUs measured")
        ax[0].plot(g["bytes"], g["pred_s"] * 1e3, lw=1.2, label=f"{p} GPUs fit")
        ax[1].scatter(g["bytes"], g["pred_s"] / g["t_s"] - 1, s=4, alpha=0.5, label=f"{p} GPUs")
    ax[0].set_xscale("log"); ax[0].set_yscale("log")
    ax[0].set_xlabel("message (bytes)"); ax[0].set_ylabel("all-reduce time (ms)")
    ax[0].legend(fontsize=7); ax[0].set_title("NCCL all-reduce, DGX H100 (Vidur)")
    ax[1].set_xscale("log"); ax[1].axhline(0, color="k", lw=0.8)
    ax[1].set_xlabel("message (bytes)"); ax[1].set_ylabel("predicted / measured - 1")
    ax[1].set_title("all-reduce residuals"); ax[1].legend(fontsize=7)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.3, hspace=0.35)
    files.append("allreduce.png")
    fig.savefig(d / files[-1], dpi=90)
    plt.close(fig)
    # Splitwise
    p = res.sw_points
    lab = p["model"] + " TP" + p["tp"].astype(str)
    pre = np.where(p["model"] == "Llama-2-70B", p["prefill_lomo_s"], p["prefill_pred_s"])
    dec = np.where(p["model"] == "Llama-2-70B", p["decode_lomo_s"], p["decode_pred_s"])
    fig, ax = plt.subplots(1, 3, figsize=(16, 5))
    _scatter(ax[0], p["prefill_s"] * 1e3, pre * 1e3, lab, "Splitwise prefill time (2023 stack file)", "ms")
    _scatter(ax[1], p["decode_s_per_token"] * 1e3, dec * 1e3, lab, "Splitwise decode time per token", "ms", log=False)
    _scatter(ax[2], p["decode_s_per_token"] * 1e3, p["decode_default_s"] * 1e3, lab,
             "default calibration.yaml (vLLM 0.11 stack) vs Splitwise decode", "ms", log=False)
    ax[0].legend(fontsize=7)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.3, hspace=0.35)
    files.append("splitwise.png")
    fig.savefig(d / files[-1], dpi=90)
    plt.close(fig)
    # ML.ENERGY
    fig = mlenergy_figure(res.ml_runs)
    fig.axes[3].legend(fontsize=7)
    fig.suptitle("ML.ENERGY v3 runs simulated with a calibration fitted without their model;"
                 " dotted: +-10 %")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.93, wspace=0.3, hspace=0.35)
    files.append("mlenergy.png")
    fig.savefig(d / files[-1], dpi=90)
    plt.close(fig)
    return files


def mlenergy_figure(m: pd.DataFrame):
    """ML.ENERGY runs, each simulated with a calibration fitted without its model: predicted
    against measured (top: ITL, power, J per token) and the residual against concurrency."""
    lab = m["model"] + " " + m["task"]
    fig, ax = plt.subplots(2, 3, figsize=(16, 10))
    _scatter(ax[0, 0], m["itl_s"] * 1e3, m["itl_lomo"] * 1e3, lab, "median ITL (simulated, model held out)", "ms")
    _scatter(ax[0, 1], m["gpu_power_w"], m["gpu_power_lomo"], lab, "per-GPU power (simulated, held out)", "W", log=False)
    _scatter(ax[0, 2], m["j_per_token"], m["j_per_token_lomo"], lab, "J per output token (simulated, held out)", "J")
    ax[0, 0].legend(fontsize=7)
    for a, q, col in ((ax[1, 0], "itl_lomo", "itl_s"), (ax[1, 1], "gpu_power_lomo", "gpu_power_w"),
                      (ax[1, 2], "j_per_token_lomo", "j_per_token")):
        for name, g in m.groupby(lab):
            a.plot(g["max_num_seqs"], g[q] / g[col] - 1, "o-", ms=3, label=name)
        a.axhline(0, color="k", lw=0.8)
        a.axhspan(-0.1, 0.1, color="0.9")
        a.set_xscale("log", base=2)
        a.set_xlabel("max_num_seqs (concurrency)")
        a.set_ylabel("predicted / measured - 1")
        a.set_title(f"residual: {col}", fontsize=9)
    return fig


# ------------------------------------------------------------------ markdown
def _params_table(cal, dev=None) -> str:
    t, p = cal.timing, cal.power
    bound = dev.gpu.tdp_w if dev is not None else SATURATED_GEMM_MAX_W
    out = ["| op | eta_compute_max | m_half_tokens | eta_memory | overhead (us) |", "|---|---:|---:|---:|---:|"]
    for k, v in {**{f"gemm {k}": v for k, v in t.gemm.items()},
                 **{f"elementwise {k}": v for k, v in t.elementwise.items()},
                 "attn_prefill": t.attn_prefill, "attn_decode": t.attn_decode}.items():
        out.append(f"| {k} | {v.eta_compute_max:.3f} | {v.m_half_tokens:.1f} | {v.eta_memory:.3f} |"
                   f" {v.overhead_s * 1e6:.2f} |")
    out += ["", "| all-reduce TP | alpha (us) | beta (ps/byte) | effective GB/s |", "|---:|---:|---:|---:|"]
    for tp, f in sorted(t.all_reduce.items()):
        out.append(f"| {tp} | {f.alpha_s * 1e6:.2f} | {f.beta_s_per_byte * 1e12:.3f} |"
                   f" {1 / f.beta_s_per_byte / 1e9 if f.beta_s_per_byte else float('inf'):.0f} |")
    out += ["", f"iteration_fixed_s = {t.iteration_fixed_s * 1e3:.3f} ms; per_seq_s = {t.per_seq_s * 1e6:.2f} us;"
            f" attn_expanded_kv = {t.attn_expanded_kv}", "",
            "| power | value |", "|---|---:|",
            f"| idle_w | {p.idle_w:.1f} W |", f"| p_busy_w | {p.p_busy_w:.1f} W |",
            f"| p_active_w | {p.p_active_w:.1f} W |",
            f"| activity_flops_per_s | {p.activity_flops_per_s / 1e12:.0f} TFLOP/s |",
            f"| activity_bytes_per_s | {p.activity_bytes_per_s / 1e12:.2f} TB/s |",
            f"| e_byte_j | {p.e_byte_j * 1e12:.2f} pJ/byte |",
            f"| saturated BF16 GEMM (derived, bound {bound:.0f} W) |"
            f" {saturated_gemm_power_w(p, dev):.0f} W |"]
    return "\n".join(out)


def write_report(res, d: Path, out_yaml: Path, readmes: list[Path] = ()) -> Path:
    """The markdown report and charts in ``d``; the generated error tables of ``readmes``
    (calibration/README.md and, for the shipped calibration, the project README) refreshed."""
    d.mkdir(parents=True, exist_ok=True)
    files = _charts(res, d)
    e = res.errors
    md = ["# Calibration report", "",
          f"Generated by `fleetsim calibrate` ({res.cal.provenance.get('mode', 'full')} mode)."
          f" Calibration written to `{out_yaml}` (version {res.cal.version}). Do not edit: rerun.", "",
          "## Error summary", "", summary_table(e), ""]
    # per-op
    md += ["## Per-op time (Vidur H100 tables)", "",
           "MAPE over every measured (model, TP, tokens) point; `lomo` = the model was left out"
           " of the fit that predicts it; `time-weighted` = sum |error| / sum time.", "",
           "| op | points | MAPE (lomo) | MAPE (in-sample) | time-weighted error |", "|---|---:|---:|---:|---:|"]
    for op in OP_ORDER:
        v = e["per_op"]["ops"].get(op)
        if v:
            md.append(f"| {op} | {v['points']} | {_pct(v['mape'])} | {_pct(v['mape_in_sample'])} |"
                      f" {_pct(v['time_weighted_error'])} |")
    byg = res.ops.assign(a=np.abs(res.ops["pred_lomo_s"] / res.ops["t_s"] - 1))
    md += ["", "By held-out model (all ops):", "", "| model | MAPE |", "|---|---:|"]
    for m, v in byg.groupby("model")["a"].mean().items():
        md.append(f"| {m} | {_pct(v)} |")
    md += ["", "By token range (GEMMs):", "", "| tokens | MAPE |", "|---|---:|"]
    gm = byg[byg["op"].isin(["qkv", "o", "up", "down"])]
    for b, v in gm.groupby(pd.cut(gm["n_tokens"], [0, 16, 64, 256, 1024, 4096]), observed=True)["a"].mean().items():
        md.append(f"| {b} | {_pct(v)} |")
    md += ["", f"![per-op]({files[0]})", "", f"![per-op residuals]({files[1]})", ""]
    md += ["## NCCL all-reduce", "", "| GPUs | points | MAPE |", "|---:|---:|---:|"]
    for p, v in e["all_reduce"].items():
        md.append(f"| {p} | {v['points']} | {_pct(v['mape'])} |")
    md += ["", f"![all-reduce]({files[2]})", ""]
    sw = e["splitwise"]
    md += ["## Splitwise end to end (H100, 2023 stack)", "",
           f"Calibration: `{sw['calibration']}`. Llama2-70b: {sw['llama2_70b']['method']}.", "",
           "| | prefill MAPE | decode/token MAPE | points |", "|---|---:|---:|---:|",
           f"| llama2-70b | {_pct(sw['llama2_70b']['prefill_time_mape'])} | {_pct(sw['llama2_70b']['decode_time_mape'])} | {sw['llama2_70b']['points']} |",
           f"| bloom-176b (held out entirely) | {_pct(sw['bloom_176b_held_out']['prefill_time_mape'])} | {_pct(sw['bloom_176b_held_out']['decode_time_mape'])} | {sw['bloom_176b_held_out']['points']} |",
           f"| default calibration.yaml (vLLM 0.11 constants) vs llama2-70b | {_pct(sw['default_calibration_vs_splitwise']['prefill_time_mape'])} | {_pct(sw['default_calibration_vs_splitwise']['decode_time_mape'])} | |",
           ""]
    p = res.sw_points
    tab = p.assign(err_pre=(np.where(p["model"] == "Llama-2-70B", p["prefill_lomo_s"], p["prefill_pred_s"]) / p["prefill_s"] - 1),
                   err_dec=(np.where(p["model"] == "Llama-2-70B", p["decode_lomo_s"], p["decode_pred_s"]) / p["decode_s_per_token"] - 1))
    md += ["Per-point residuals (prefill, decode):", "",
           "| model | TP | prompt | batch | output | prefill ms | residual | decode ms/token | residual |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in tab.itertuples():
        md.append(f"| {r.model} | {r.tp} | {r.prompt_tokens} | {r.batch} | {r.output_tokens} |"
                  f" {r.prefill_s * 1e3:.1f} | {100 * r.err_pre:+.1f} % | {r.decode_s_per_token * 1e3:.2f} |"
                  f" {100 * r.err_dec:+.1f} % |")
    if len(res.sw_excluded):
        md += ["", "Excluded points:", ""]
        for r in res.sw_excluded.itertuples():
            md.append(f"* {r.model} TP {r.tp}, prompt {r.prompt_tokens}, batch {r.batch}: {r.reason}")
    md += ["", "The `h100-80gb-pcap` rows are synthetic (H100 row x 1.3 prompt time) and never used.",
           "", f"![splitwise]({files[3]})", ""]
    ml = e["mlenergy"]
    md += ["## ML.ENERGY v3 (vLLM 0.11.1, H100): simulated at the benchmark's conditions", "",
           f"Method: {ml['method']}. In-sample (all models in the fit): ITL {_pct(ml['itl_mape_in_sample'])},"
           f" power {_pct(ml['gpu_power_mape_in_sample'])}, J/token {_pct(ml['j_per_token_mape_in_sample'])}.", "",
           "| held-out model | runs | ITL MAPE | power MAPE | J/token MAPE |", "|---|---:|---:|---:|---:|"]
    for m, v in ml["by_model"].items():
        md.append(f"| {m} | {v['runs']} | {_pct(v['itl'])} | {_pct(v['gpu_power'])} | {_pct(v['j_per_token'])} |")
    for title, m in (("Dense runs", res.ml_runs), ("Mixture-of-experts runs", res.moe_runs)):
        if m is None or not len(m):
            continue
        md += ["", f"{title} (sim: leave-one-model-out):", "",
               "| model | precision | task | TP | EP | max_num_seqs | ITL ms meas / sim | W/GPU meas / sim | J/token meas / sim | batch meas / sim |",
               "|---|---|---|---:|:---:|---:|---:|---:|---:|---:|"]
        for r in m.itertuples():
            md.append(f"| {r.model} | {r.precision} | {r.task} | {r.tp} | {'yes' if r.expert_parallel else ''} |"
                      f" {r.max_num_seqs} | {r.itl_s * 1e3:.1f} / {r.itl_lomo * 1e3:.1f} |"
                      f" {r.gpu_power_w:.0f} / {r.gpu_power_lomo:.0f} | {r.j_per_token:.3f} / {r.j_per_token_lomo:.3f} |"
                      f" {r.avg_batch:.0f} / {r.batch_lomo:.0f} |")
    if len(res.ml_skipped):
        md += ["", "Runs not used (and why):", "", "| model | runs | reason |", "|---|---:|---|"]
        for (mod, reason), g in res.ml_skipped.groupby(["model", "reason"]):
            md.append(f"| {mod} | {len(g)} | {reason} |")
    if res.sensitivity is not None:
        md += ["", "Sensitivity to the assumed prompt length (refit, closed-form steady state, in-sample):", "",
               "| prompt x | ITL MAPE | power MAPE | J/token MAPE | p_busy W | p_active W | activity TFLOP/s | activity TB/s | pJ/byte |",
               "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in res.sensitivity.itertuples():
            md.append(f"| {r.prompt_scale:g} | {_pct(r.itl_mape)} | {_pct(r.gpu_power_mape)} | {_pct(r.j_per_token_mape)} |"
                      f" {r.p_busy_w:.0f} | {r.p_active_w:.0f} | {r.activity_tflops:.0f} | {r.activity_tbps:.2f} | {r.e_byte_pj:.1f} |")
    md += ["", f"![ML.ENERGY]({files[4]})", ""]
    md += ["## Fitted parameters (calibration.yaml)", "", _params_table(res.cal), "",
           "## Fitted parameters (h100-splitwise2023.yaml), serving-stack part", "",
           _params_table(res.cal_splitwise), ""]
    if res.profiles_meta:
        md += ["## H100 profiles used (outrank Vidur)", ""]
        for pm in res.profiles_meta:
            md.append(f"* {pm['file']}: {pm['model']} on {pm['device']}, {pm['date']}, driver {pm['driver']},"
                      f" CUDA {pm['cuda']}, torch {pm['torch']}")
    if res.notes:
        md += ["", "## Notes", ""] + [f"* {n}" for n in res.notes]
    path = d / "README.md"
    path.write_text("\n".join(md) + "\n")
    for readme in readmes:  # the shipped READMEs: H100 (and B200, when calibrated) side by side
        _sync(readme, shipped_table())
    return path


def sync_readme(readme: Path, errors: dict) -> bool:
    """Rewrite the error table between the markers of ``readme`` (if it has them)."""
    return _sync(readme, summary_table(errors))


def _sync(readme: Path, table: str) -> bool:
    if not readme.exists():
        return False
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    a, rest = text.split(BEGIN, 1)
    _, b = rest.split(END, 1)
    readme.write_text(a + BEGIN + "\n" + table + "\n" + END + b)
    return True
