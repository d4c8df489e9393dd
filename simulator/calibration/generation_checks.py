"""GPU generations against published figures: KV-cache capacity per GPU type, and MLPerf
Inference throughput (checks only: nothing here was fitted to them).

* :func:`kv_capacity` tabulates the memory plan (``simulator/physics/memory.py``) of reference
  deployments on every device profile: driver-reported total, weights, KV cache, tokens;
* :func:`mlperf_checks` simulates MLPerf Inference's Llama-2-70B Offline scenario on each GPU
  type (a closed loop that keeps every replica at ``MLPERF_BATCH`` sequences; prompts of
  ``MLPERF_INPUT_TOKENS``, outputs exponential with the dataset's mean of 265 tokens; the
  smallest TP degree whose memory plan holds the model, the node's GPUs split into replicas of
  it) and compares output tokens/s per 8-GPU node with the published systems, absolutely and as
  ratios to the H100 of the same round.

``scripts/validation_page.py`` renders both into ``docs/validation.md``; a test holds the page
to the code.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from simulator.calibration.checks import read_check_csv
from simulator.devices import load_profile
from simulator.errors import DataError
from simulator.physics.hardware import GIB

GPUS = ("H100", "H200", "B200")
#: MLPerf's Llama-2-70B dataset: 265 output tokens per sample on average (TOKENS_PER_SAMPLE
#: 265.005 in the benchmark definition); its prompts' mean is not in the collected figures:
#: 300 tokens is an assumption (the OpenOrca questions are a few hundred tokens)
MLPERF_OUTPUT_MEAN = 265.0
MLPERF_INPUT_TOKENS = 300
#: sequences per replica the offline closed loop keeps (serving.max_batch_size): a serving
#: choice of this check, not MLPerf's (TensorRT-LLM batches as the memory allows)
MLPERF_BATCH = 512
MLPERF_COLUMNS = ("round", "system", "gpu", "gpus", "benchmark", "scenario", "tokens_per_s",
                  "precision", "source")

#: reference deployments of the KV-capacity table: (label, model, precision, tp, why)
KV_DEPLOYMENTS = (
    ("Llama-3.1-405B FP8, TP 8", "Llama-3.1-405B", "fp8", 8,
     "the 1b-chat reference fleets (scenarios/1b-chat*.yaml)"),
    ("Llama-3.1-70B BF16, TP 8", "Llama-3.1-70B", "bf16", 8, "scenarios/default.yaml"),
    ("Llama-3.1-70B FP8, TP 2", "Llama-3.1-70B", "fp8", 2, "a 70B model on two GPUs"),
    ("Llama-3.1-8B BF16, TP 1", "Llama-3.1-8B", "bf16", 1, "a small model on one GPU"),
)


def _scenario(model: str, gpu: str, precision: str, tp: int, clients: int, requests: int,
              warmup: int, max_model_len: int = 4096):
    from simulator.scenario.load import scenario_from_dict

    return scenario_from_dict({
        "name": f"check-{gpu}-{model}-{precision}-tp{tp}", "model": model,
        "hardware": {"gpu": gpu},
        "deployment": {"nodes": 1, "tp": tp, "replicas_per_node": 1, "precision": precision},
        "serving": {"max_batch_size": MLPERF_BATCH, "max_batched_tokens": 8192,
                    "max_model_len": max_model_len},
        "workload": {"arrival": "closed_loop", "clients": clients, "classes": {"sample": {
            "input_tokens": {"dist": "fixed", "value": MLPERF_INPUT_TOKENS},
            "output_tokens": {"dist": "exponential", "mean": MLPERF_OUTPUT_MEAN}}}},
        "simulation": {"requests": requests, "warmup_requests": warmup, "seed": 0}})


def kv_capacity() -> pd.DataFrame:
    """The memory plan of each reference deployment on each GPU type (serving defaults: vLLM
    0.19, 90 % of memory, 8,192 batched tokens, 256 sequences)."""
    from simulator.engine.fleet import plan_pool_memory

    rows = []
    for label, model, prec, tp, why in KV_DEPLOYMENTS:
        base = None
        for g in GPUS:
            sc = _scenario(model, g, prec, tp, 1, 10, 0)
            sc = sc.derive(serving=sc.serving.model_copy(update={"max_batch_size": 256}))
            plan = plan_pool_memory(sc.pool_specs()[0])
            tokens = max(plan.kv_tokens, 0)
            base = tokens if base is None else base
            rows.append({"deployment": label, "why": why, "gpu": load_profile(g).name,
                         "total_gib": plan.total_bytes / GIB, "weights_gib": plan.weight_bytes / GIB,
                         "kv_gib": max(plan.kv_bytes, 0.0) / GIB, "kv_tokens": tokens,
                         "vs_h100": tokens / base if base else float("nan")})
    return pd.DataFrame(rows)


def load_mlperf(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    df = read_check_csv(path, MLPERF_COLUMNS)
    for i, r in enumerate(df.itertuples(index=False), start=2):
        if r.gpu not in GPUS:
            raise DataError(f"unknown GPU {r.gpu!r}", file=str(path), row=i, column="gpu")
        if not r.tokens_per_s > 0:
            raise DataError("tokens_per_s must be > 0", file=str(path), row=i, column="tokens_per_s")
    return df


def node_throughput(gpu: str, precision: str, model: str = "Llama-2-70B",
                    gpus_per_node: int = 8) -> tuple[float, int]:
    """(output tokens/s of an 8-GPU node, TP degree): the smallest TP whose memory plan holds
    the model with room for a full batch of MLPerf-length sequences; one replica simulated
    (replicas of a closed loop are independent), times the replicas a node holds."""
    from simulator.api import simulate
    from simulator.engine.fleet import plan_pool_memory

    need = MLPERF_BATCH * (MLPERF_INPUT_TOKENS + MLPERF_OUTPUT_MEAN) / 4  # a quarter of a batch
    for tp in (1, 2, 4, 8):
        sc = _scenario(model, gpu, precision, tp, MLPERF_BATCH, 4 * MLPERF_BATCH, MLPERF_BATCH)
        if plan_pool_memory(sc.pool_specs()[0]).kv_tokens < need:
            continue
        s = simulate(sc).summary
        return s["throughput_output_tokens_per_s"] * (gpus_per_node // tp), tp
    raise ValueError(f"{model} in {precision} fits no TP degree on {gpu}")


def mlperf_checks(path: str | Path) -> pd.DataFrame:
    """Published Llama-2-70B Offline tokens/s per 8-GPU system against fleetsim's node."""
    df = load_mlperf(path)
    sims: dict[tuple[str, str], tuple[float, int]] = {}
    rows = []
    for r in df.itertuples(index=False):
        key = (r.gpu, r.precision)
        if key not in sims:
            sims[key] = node_throughput(r.gpu, r.precision)
        tok, tp = sims[key]
        rows.append({"round": r.round, "system": r.system, "gpu": r.gpu,
                     "precision": r.precision, "published": float(r.tokens_per_s),
                     "fleetsim": tok, "tp": tp, "ratio": tok / float(r.tokens_per_s),
                     "source": r.source})
    out = pd.DataFrame(rows)
    for col in ("published", "fleetsim"):
        h100 = out[out["gpu"] == "H100"].set_index("round")[col]
        out[f"{col}_vs_h100"] = [v / h100.get(rd, float("nan")) for rd, v in zip(out["round"], out[col])]
    return out


def section(root: Path) -> list[str]:
    """The generations part of ``docs/validation.md`` (markdown lines)."""
    kv = kv_capacity()
    lines = ["## GPU generations: KV-cache capacity per GPU type", "",
             "The memory plan of reference deployments on each device profile (vLLM 0.19"
             " stack, `gpu_memory_utilization` 0.9, 8,192 batched tokens, 256 sequences). The"
             " total is what the CUDA driver reports, which vLLM budgets against: H100 79.22 GiB"
             " (vLLM start-up logs, table above); H200 139.81 GiB (`total_gpu_memory` in a vLLM"
             " start-up log on an 8 x H200 node); B200 178.35 GiB (CUDA device query,"
             " pytorch/ao PR 4002). The H200 and B200 totals are the sources of those profiles'"
             " constants, not checks; no vLLM start-up log of a dense model on an H200 or a B200"
             " with its KV-cache size was found, so their KV capacity rests on the H100-validated"
             " memory plan and these totals.", "",
             "| deployment | GPU | total GiB | weights GiB/GPU | KV cache GiB/GPU | KV tokens per replica | vs H100 |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in kv.itertuples(index=False):
        lines.append(f"| {r.deployment} | {r.gpu} | {r.total_gib:.2f} | {r.weights_gib:.2f} |"
                     f" {r.kv_gib:.2f} | {r.kv_tokens:,} | {r.vs_h100:.2f}x |")
    ml = mlperf_checks(root / "calibration" / "checks" / "mlperf_inference.csv")
    lines += ["", "## GPU generations: MLPerf Inference Llama-2-70B (checks, not fitted)", "",
              "Source: `calibration/checks/mlperf_inference.csv` (Offline, Closed division,"
              " NVIDIA systems, TensorRT-LLM; output tokens/s per 8-GPU system). fleetsim: one"
              f" replica of the smallest TP degree that holds the model, a closed loop of"
              f" {MLPERF_BATCH} sequences, prompts of {MLPERF_INPUT_TOKENS} tokens (assumed),"
              f" outputs exponential with the dataset's mean of {MLPERF_OUTPUT_MEAN:.0f}, the"
              " vLLM 0.11 serving constants of each profile; node = replica x replicas per node."
              " The absolute gap is the serving stack (TensorRT-LLM's in-flight batching and"
              " kernels against vLLM 0.11); the ratios between GPU types are what the check is"
              " about. The H200 is derived from the H100 (no H200 data in any fit); the B200 is"
              " fitted on ML.ENERGY B200 runs at BF16, so its FP4 row also tests the"
              " FP4-as-fraction-of-peak assumption.", "",
              "| round | system | precision | published tok/s | fleetsim tok/s (TP) | fleetsim / published | vs the round's H100: published / fleetsim |",
              "|---|---|---|---:|---:|---:|---|"]
    for r in ml.itertuples(index=False):
        vs = ("" if r.gpu == "H100" or r.published_vs_h100 != r.published_vs_h100
              else f"{r.published_vs_h100:.2f}x / {r.fleetsim_vs_h100:.2f}x")
        lines.append(f"| {r.round} | {r.system} | {r.precision} | {r.published:,.0f} |"
                     f" {r.fleetsim:,.0f} (TP {r.tp}) | {r.ratio:.2f} | {vs} |")
    return lines + [""]
