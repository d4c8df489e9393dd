"""Comparisons with published figures the model was not fitted on (``calibration/checks/``).

Each function returns a table: the published figure, fleetsim's, the difference, and the row's
role (``check``: compared only; ``constant``: the source of a documented constant, shown for
completeness and excluded from the pass/fail count). ``scripts/validation_page.py`` renders
them into ``docs/validation.md``; tests hold the page to the code and the checks to their
tolerances.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from simulator.catalog import CATALOG
from simulator.devices import load_profile
from simulator.errors import DataError
from simulator.physics.hardware import GIB
from simulator.physics.memory import plan_memory
from simulator.physics.timing import TimingModel

MEMORY_COLUMNS = ("row", "role", "stack", "model", "precision", "kv_precision", "tp",
                  "gpu_memory_utilization", "max_num_batched_tokens", "max_num_seqs", "block_size",
                  "checkpoint", "vllm_version", "weights_gib", "kv_cache_gib", "kv_cache_tokens",
                  "note", "source")
KV_TOLERANCE = 0.05  # KV capacity within 5 % of vLLM's own figure


def read_check_csv(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A checks table with at least ``columns``; a file that cannot be read or lacks one is a
    :class:`DataError` naming it."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror}", file=str(path)) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", file=str(path))
    return df


def memory_checks(path: str | Path, gpu: str = "H100-SXM5-80GB") -> pd.DataFrame:
    """vLLM start-up memory figures against the memory plan (one row per log)."""
    path = Path(path)
    df = read_check_csv(path, MEMORY_COLUMNS)
    prof = load_profile(gpu)
    out = []
    for i, r in enumerate(df.itertuples(index=False), start=2):
        if r.model not in CATALOG:
            raise DataError(f"unknown catalog model {r.model!r}", file=str(path), row=i, column="model")
        stack = prof.stack(r.stack)
        plan = plan_memory(CATALOG[r.model], int(r.tp), r.precision, r.kv_precision,
                           float(r.gpu_memory_utilization), int(r.max_num_batched_tokens),
                           int(r.max_num_seqs), int(r.block_size), stack.non_torch_gib(int(r.tp)),
                           stack.sampler_bytes_per_logit, prof.gpu)
        kv_gib = plan.kv_bytes / GIB
        meas_kv = float(r.kv_cache_gib)
        out.append({
            "row": r.row, "role": r.role, "checkpoint": r.checkpoint, "model": r.model,
            "precision": r.precision, "kv_precision": r.kv_precision, "tp": int(r.tp),
            "stack": r.stack, "vllm": r.vllm_version,
            "weights_gib_vllm": float(r.weights_gib), "weights_gib_sim": plan.weight_bytes / GIB,
            "kv_gib_vllm": meas_kv, "kv_gib_sim": kv_gib if meas_kv == meas_kv else float("nan"),
            "kv_error": kv_gib / meas_kv - 1.0 if meas_kv == meas_kv else float("nan"),
            "weights_error": plan.weight_bytes / GIB / float(r.weights_gib) - 1.0,
            "kv_tokens_vllm": r.kv_cache_tokens, "kv_tokens_sim": plan.kv_tokens,
            "note": r.note if isinstance(r.note, str) else "", "source": r.source})
    return pd.DataFrame(out)


MOE_KERNEL_COLUMNS = ("row", "model", "precision", "tp", "config", "tokens", "kernel_us", "table",
                      "source")


def moe_kernel_checks(path: str | Path, gpu: str = "H100-SXM5-80GB") -> pd.DataFrame:
    """Public fused-MoE kernel timings (vLLM's ``benchmark_moe.py``: one MoE layer's routing,
    grouped expert GEMMs and activation, random gating) against the fitted expert term of the
    timing model per MoE layer, under uniform routing as the benchmark's random gating (the
    fitted popularity exponent describes real routing, not the benchmark's)."""
    path = Path(path)
    df = read_check_csv(path, MOE_KERNEL_COLUMNS)
    prof = load_profile(gpu)
    timing = prof.calibration().timing.model_copy(update={"expert_popularity_exponent": 0.0})
    models: dict[tuple[str, int, str], TimingModel] = {}
    out = []
    for i, r in enumerate(df.itertuples(index=False), start=2):
        m = CATALOG.get(r.model)
        if m is None or not m.is_moe:
            raise DataError(f"not a catalog mixture of experts: {r.model!r}", file=str(path), row=i,
                            column="model")
        if not prof.gpu.supports(r.precision):
            raise DataError(f"precision {r.precision!r} not on {prof.gpu.name}", file=str(path),
                            row=i, column="precision")
        for col in ("tp", "tokens", "kernel_us"):
            if not getattr(r, col) > 0:
                raise DataError(f"{col} must be > 0", file=str(path), row=i, column=col)
        key = (r.model, int(r.tp), r.precision)
        tm = models.get(key)
        if tm is None:
            tm = models[key] = TimingModel(m, int(r.tp), r.precision, timing, "bf16", prof.gpu)
        sim_s = tm.experts(float(r.tokens)).time_s / m.moe_layers
        meas_s = float(r.kernel_us) * 1e-6
        out.append({"row": r.row, "model": r.model, "precision": r.precision, "tp": int(r.tp),
                    "config": r.config, "tokens": int(r.tokens), "kernel_us": float(r.kernel_us),
                    "sim_us": sim_s * 1e6, "ratio": sim_s / meas_s, "table": r.table,
                    "source": r.source})
    return pd.DataFrame(out)
