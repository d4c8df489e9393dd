"""Write docs/validation.md: every external figure fleetsim is compared with, from the code.

    python scripts/validation_page.py            # rewrite docs/validation.md
    python scripts/validation_page.py --check    # exit 1 if the page is not current

A test runs the check, so the page cannot drift from the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.calibration.checks import KV_TOLERANCE, memory_checks, moe_kernel_checks  # noqa: E402
from simulator.calibration.generation_checks import section as generations_section  # noqa: E402

PAGE = ROOT / "docs" / "validation.md"


def _pct(x: float) -> str:
    return "" if x != x else f"{100 * x:+.1f} %"


def memory_section() -> list[str]:
    df = memory_checks(ROOT / "calibration" / "checks" / "vllm_memory.csv")
    checks = df[df["role"] == "check"]
    kv = checks["kv_error"].dropna()
    ok = int((kv.abs() <= KV_TOLERANCE).sum())
    lines = [
        "## GPU memory: KV-cache capacity against vLLM's start-up logs", "",
        "Source: `calibration/checks/vllm_memory.csv` (each row cites its log). fleetsim's memory"
        " plan (`simulator/physics/memory.py`) of the same model, checkpoint precision, TP degree,"
        " `gpu_memory_utilization`, `max_num_batched_tokens` and `max_num_seqs` on the H100"
        " profile, with the serving stack of the log's vLLM version. Rows marked *constant* are"
        " the source of a documented serving-stack constant (non-torch memory, sampler bytes per"
        " logit) and are not checks; rows marked *unresolved* are checks fleetsim does not"
        " reproduce, shown with what is known about why.", "",
        f"**{ok} of {len(kv)} checks within {100 * KV_TOLERANCE:.0f} %** of vLLM's KV capacity;"
        f" mean absolute error {100 * kv.abs().mean():.1f} %, worst {_pct(kv.loc[kv.abs().idxmax()])}."
        + "".join(f" Unresolved: {r.row} ({r.model}, TP {r.tp}): {_pct(r.kv_error)}."
                  for r in df[df["role"] == "unresolved"].itertuples(index=False)), "",
        "| row | checkpoint | TP | precision (KV) | stack | role | weights GiB vLLM / sim | KV GiB vLLM / sim | KV error | note |",
        "|---|---|---:|---|---|---|---|---|---:|---|"]
    for r in df.itertuples(index=False):
        kv_cell = ("" if r.kv_gib_vllm != r.kv_gib_vllm
                   else f"{r.kv_gib_vllm:.2f} / {r.kv_gib_sim:.2f}")
        lines.append(
            f"| [{r.row}]({r.source}) | {r.checkpoint} | {r.tp} | {r.precision} ({r.kv_precision}) |"
            f" {r.stack} | {r.role} | {r.weights_gib_vllm:.2f} / {r.weights_gib_sim:.2f} | {kv_cell} |"
            f" {_pct(r.kv_error) or _pct(r.weights_error) + ' (weights)'} | {r.note} |")
    return lines + [""]


def serving_section() -> list[str]:
    """ML.ENERGY (leave-one-model-out) and Splitwise (bloom-176b held out of every fit) from the
    shipped calibration's error report, and the power-cap anchor from dvfs.yaml."""
    import yaml

    from simulator.devices import load_profile

    prof = load_profile("H100")
    e = prof.calibration().errors
    lines = ["## Serving: measured runs the coefficients were not fitted on", "",
             "From the H100 calibration's error report (`fleetsim calibrate`; per run and per group:"
             " [calibration/report/README.md](../calibration/report/README.md)). Leave-one-model-out:"
             " each model is predicted by a fit that never saw it, every run simulated by the engine.", "",
             "| source | what is compared | runs | fleetsim error (MAPE) | why it misses, where it does |",
             "|---|---|---:|---|---|"]
    ml = e["mlenergy"]
    lines.append(f"| [ML.ENERGY v3](https://ml.energy/leaderboard), dense, H100 | median ITL, per-GPU"
                 f" power, J per output token | {ml['runs']} | ITL {_mape(ml['itl_mape'])}, power"
                 f" {_mape(ml['gpu_power_mape'])}, J/token {_mape(ml['j_per_token_mape'])} | within the"
                 " 10 % target; worst group Llama-3.1-8B power (runs at the 700 W cap from batch 192) |")
    moe = e.get("mlenergy_moe")
    if moe:
        lines.append(f"| ML.ENERGY v3, mixtures of experts, H100 | the same | {moe['runs']} | ITL"
                     f" {_mape(moe['itl_mape'])}, power {_mape(moe['gpu_power_mape'])}, J/token"
                     f" {_mape(moe['j_per_token_mape'])} | three expert kernels with one or two models"
                     " each; Llama-4's vLLM path slower than its shape (so its power over-predicted);"
                     " Qwen3-235B's block-scaled FP8 experts draw more power than the model gives"
                     " (calibration/README.md) |")
    sw = e["splitwise"]
    bl = sw["bloom_176b_held_out"]
    lines.append(f"| Splitwise (ISCA 2024) `perf_model.csv`, bloom-176b TP8 (in no fit) | prefill time,"
                 f" decode time per token | {bl['points']} | prefill {_mape(bl['prefill_time_mape'])},"
                 f" decode {_mape(bl['decode_time_mape'])} | prefill: that stack's all-reduce cost per"
                 " byte rises above ~50 MB messages, which a linear all-reduce model cannot follow |")
    dv = yaml.safe_load((ROOT / "simulator" / "devices" / "h100" / "dvfs.yaml").read_text())
    fit = dv["fit"]
    long = [fit["prefill_slowdown"][n] for n in (2048, 4096, 8192)]
    lines += ["", "Power capping is an anchor, not a check: the DVFS model's static fraction is fitted"
              f" so that a DGX H100 capped to 70 % of its rating ({fit['gpu_cap_w']:.0f} W per GPU"
              f" through the host model) slows long prefills {sum(long) / len(long):.2f}x on average"
              " (Splitwise: about 1.3x) while decode stays at"
              f" {max(fit['decode_slowdown'].values()):.2f}x (about 1.0x).", ""]
    return lines


def moe_kernel_section() -> list[str]:
    """The fitted expert term per MoE layer against public H100 fused-MoE kernel timings."""
    df = moe_kernel_checks(ROOT / "calibration" / "checks" / "moe_kernels.csv")
    lines = ["## Mixture-of-experts kernels: the expert term against kernel timings", "",
             "Source: `calibration/checks/moe_kernels.csv` (vLLM's `benchmarks/kernels/benchmark_moe.py`"
             " on an H100, as posted in the cited pull request: one MoE layer's routing, grouped expert"
             " GEMMs and activation, random gating, kernels only). fleetsim's fitted expert term of"
             " the same layer (`TimingModel.experts`, H100 calibration) under uniform routing, as the"
             " benchmark's random gating: the fitted popularity exponent describes real routing. The"
             " expert term is fitted on whole ML.ENERGY MoE iterations, never on these timings;"
             " what the differences mean: calibration/README.md (mixtures of experts).", "",
             "| model (expert precision, TP) | kernel config | tokens | ratio fleetsim / kernel,"
             " 2-512 tokens | ratio, 1,024 tokens and more | MAPE |",
             "|---|---|---|---:|---:|---:|"]
    for (model, prec, tp, cfg, table), g in df.groupby(["model", "precision", "tp", "config", "table"],
                                                       sort=False):
        small = g[(g["tokens"] >= 2) & (g["tokens"] <= 512)]["ratio"]
        large = g[g["tokens"] >= 1024]["ratio"]
        src = g["source"].iloc[0]
        lines.append(f"| [{model} ({prec}, TP {tp})]({src}) | {cfg} (`{table}`) | {g['tokens'].min()}-{g['tokens'].max()}"
                     f" | {small.min():.2f}-{small.max():.2f} | {large.min():.2f}-{large.max():.2f}"
                     f" | {_mape((g['ratio'] - 1).abs().mean())} |")
    lines += ["", "| row | model | tokens | kernel us | fleetsim us | ratio |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r.row} | {r.model} ({r.precision}, TP {r.tp}) | {r.tokens} | {r.kernel_us:.1f} |"
              f" {r.sim_us:.1f} | {r.ratio:.2f} |" for r in df.itertuples(index=False)]
    return lines + [""]


def _mape(x: float) -> str:
    return f"{100 * x:.1f} %"


def comparisons_section() -> list[str]:
    """Published estimates fleetsim is compared with (not fitted on): Oviedo et al. and Google's
    per-prompt boundaries, from the data files the bridge and reference scripts write."""
    import json

    lines = ["## Published estimates", ""]
    ov = ROOT / "docs" / "data" / "oviedo.json"
    if ov.exists():
        d = json.loads(ov.read_text())
        lines += ["Oviedo et al., arXiv:2509.20241 (v1 2025 / v2 2026 abstracts), in its own setting"
                  " (`scenarios/oviedo-*.yaml`; the path from it to each reference scenario:"
                  " [oviedo.md](oviedo.md)):", "",
                  "| figure | paper v1 / v2 | fleetsim | difference (v2) | reason |", "|---|---|---|---:|---|"]
        for r in d["rows"]:
            diff = f"{100 * (r['fleetsim'] / r['paper_v2'] - 1):+.0f} %" if r.get("paper_v2") else ""
            lines.append(f"| {r['figure']} | {r['paper']} | {r['fleetsim']:.3g} | {diff} | {r['reason']} |")
        lines.append("")
    ref = ROOT / "docs" / "data" / "reference.json"
    b = json.loads(ref.read_text()).get("1b-chat", {}).get("energy_boundaries") if ref.exists() else None
    if b:
        d = b["wh_per_query"]["overall"]
        lines += ["Google (Elsworth et al., arXiv:2508.15734), median Gemini Apps text prompt, May 2025:"
                  " 0.10 Wh counting active accelerators only, 0.24 Wh in its comprehensive boundary"
                  " (ratio 2.4). fleetsim's `1b-chat` reference (a 405B model on H100s, not Gemini on"
                  " TPUs: the absolute figures are not comparable, the boundaries are), mean per query:", "",
                  "| boundary | Google | fleetsim `1b-chat` | fleetsim / its narrow figure |",
                  "|---|---:|---:|---:|",
                  f"| accelerators active (narrow) | 0.10 Wh | {d['accelerators_active']:.3f} Wh | 1.00 |",
                  f"| + idle accelerators | | {d['accelerators']:.3f} Wh |"
                  f" {d['accelerators'] / d['accelerators_active']:.2f} |",
                  f"| + host | | {d['it']:.3f} Wh | {d['it'] / d['accelerators_active']:.2f} |",
                  f"| + facility overhead (comprehensive) | 0.24 Wh | {d['facility']:.3f} Wh |"
                  f" {d['facility'] / d['accelerators_active']:.2f} (Google: 2.4) |", "",
                  "Google's comprehensive boundary counts idle machines kept for reliability and"
                  " latency across its fleet (10 % of its 0.24 Wh); fleetsim's reference fleet idles"
                  " only what the daily curve and the 20 % headroom leave idle, at the engine's"
                  " iteration granularity.", ""]
    return lines


def render() -> str:
    lines = ["# Validation: fleetsim against published figures", "",
             "Generated by `python scripts/validation_page.py`; do not edit (a test fails when the"
             " page and the code disagree). Every figure here is a check: none of them was used to"
             " fit a coefficient, except rows marked *constant*, which say which constant they set.",
             ""]
    lines += memory_section()
    lines += serving_section()
    lines += moe_kernel_section()
    lines += generations_section(ROOT)  # GPU generations (issue 13): KV capacity, MLPerf
    lines += comparisons_section()
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        return 0 if PAGE.exists() and PAGE.read_text() == text else 1
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
