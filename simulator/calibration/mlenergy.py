"""ML.ENERGY v3 runs: simulate the benchmark's conditions, and a fast steady-state model.

Two views of one run (model, TP, ``max_num_seqs`` = B, mean output O, assumed mean prompt I):

* :func:`simulate_run` runs the fleetsim engine on the benchmark's conditions (closed loop with
  B clients, vLLM 0.11 defaults, see ``calibration/data/mlenergy_conditions.yaml``) and reads
  median ITL, per-GPU power and J per output token from the run summary. This is what the
  error report uses: J per token always comes out of simulation, it is never fitted.
* :func:`steady_state` is a closed-form approximation of the same steady state, used inside
  the least-squares fits (the engine is too slow to sit in an optimiser loop). Per iteration,
  B sequences decode with mean context ``I + 2 O / 3`` (outputs uniform on ``0..2 O``: a live
  sequence has generated on average ``E[O^2] / (2 E[O]) = 2 O / 3`` tokens), and ``B / O`` requests complete, so
  ``B I / O`` prompt tokens are prefilled (chunked into the same iterations). A fraction
  ``q = min(1, B / O)`` of iterations carry a prefill chunk of ``I max(1, B / O)`` tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from simulator.calibration.anchors import h100, h100_gpu
from simulator.calibration.extra_shapes import EXTRA_SHAPES, shape
from simulator.errors import DataError
from simulator.physics.memory import plan_memory
from simulator.physics.params import Calibration, PowerParams, TimingParams
from simulator.physics.power import iteration_cost
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel

CAP_W = 700.0


def load_conditions(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        c = yaml.safe_load(path.read_text())
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror}", file=str(path)) from None
    except yaml.YAMLError as e:
        raise DataError(f"malformed YAML: {' '.join(str(e).split())}", file=str(path)) from None
    for key in ("server", "tasks", "simulation"):
        if not isinstance(c, dict) or key not in c:
            raise DataError("missing section", file=str(path), column=key)
    return c


def input_mean(cond: dict, task: str, path: str = "mlenergy_conditions.yaml") -> float:
    t = cond["tasks"].get(task)
    if t is None or "input_tokens_mean" not in t:
        raise DataError(f"no input_tokens_mean for task {task!r}", file=path, column=f"tasks.{task}")
    return float(t["input_tokens_mean"])


# ------------------------------------------------------------------ steady state (fits)
@dataclass(frozen=True)
class SteadyState:
    batch: int
    q_mixed: float
    decode: IterationShape
    mixed: IterationShape


def run_memory(model: str, tp: int, cond: dict, max_num_seqs: int):
    """The memory plan of one run's replica on the H100 profile (vLLM's budget)."""
    s = cond["server"]
    stack = h100().stack(s["stack"])
    return plan_memory(shape(model), tp, "bf16", "bf16", float(s["gpu_memory_fraction"]),
                       int(s["max_batched_tokens"]), int(max_num_seqs), int(s["block_size_tokens"]),
                       stack.non_torch_gib(tp), stack.sampler_bytes_per_logit, h100_gpu())


def kv_batch_limit(model: str, tp: int, cond: dict, ctx_tokens: float, max_num_seqs: int) -> int:
    """Sequences whose KV cache fits (vLLM admits no more; it preempts beyond)."""
    plan = run_memory(model, tp, cond, max_num_seqs)
    return max(1, int(plan.kv_tokens / max(ctx_tokens, 1.0)))


def steady_state(run: pd.Series | Any, cond: dict, input_scale: float = 1.0) -> SteadyState:
    I = input_mean(cond, run.task) * input_scale
    O = float(run.avg_out_len)
    ctx = I + 2.0 * O / 3.0  # mean context of a live sequence (uniform outputs, length-biased)
    B = min(int(run.max_num_seqs), kv_batch_limit(run.model, int(run.tp), cond, ctx * 1.1,
                                                   int(run.max_num_seqs)))
    rate = B / O  # completions (= new prefills) per iteration
    q = min(1.0, rate)
    chunk = min(I * max(1.0, rate), float(cond["server"]["max_batched_tokens"]) - B)
    n_pre = max(1, int(round(max(1.0, rate))))
    dec = IterationShape(sampled_seqs=B, decode_seqs=B, decode_ctx_tokens=int(B * ctx))
    per = chunk / n_pre
    mix = IterationShape(prefill_tokens=int(chunk), prefill_seqs=n_pre,
                         prefill_attn_pairs=n_pre * IterationShape.causal_pairs(int(per), 0),
                         sampled_seqs=B + n_pre, decode_seqs=B, decode_ctx_tokens=int(B * ctx))
    return SteadyState(B, q, dec, mix)


def steady_metrics(run, cond: dict, timing: TimingParams, power: PowerParams | None,
                   input_scale: float = 1.0) -> dict[str, float]:
    """Approximate median ITL, per-GPU power and J/token of a run (closed form)."""
    ss = steady_state(run, cond, input_scale)
    tm = TimingModel(shape(run.model), int(run.tp), "bf16", timing, "bf16", h100_gpu())
    wd, wm = tm.work(ss.decode), tm.work(ss.mixed)
    if power is None:
        td, tmix, ed, em = wd.time_s, wm.time_s, 0.0, 0.0
    else:
        d = h100().dvfs()
        cd, cm = iteration_cost(power, wd, CAP_W, d), iteration_cost(power, wm, CAP_W, d)
        td, tmix, ed, em = cd.time_s, cm.time_s, cd.energy_j, cm.energy_j
    q = ss.q_mixed
    # median of the two-point mixture of iteration times, smoothed around q = 0.5
    w = 1.0 / (1.0 + math.exp(-(q - 0.5) / 0.05))
    itl = (1 - w) * td + w * tmix
    t_mean = (1 - q) * td + q * tmix
    out = {"itl_s": itl, "iter_s_mean": t_mean, "batch": ss.batch,
           "tok_s": ss.batch / t_mean}
    if power is not None:
        p = ((1 - q) * ed + q * em) / t_mean
        out["gpu_power_w"] = p
        out["j_per_token"] = p * int(run.tp) / out["tok_s"]
    return out


def power_basis(run, cond: dict, timing: TimingParams, input_scale: float = 1.0) -> np.ndarray:
    """Time-averaged (1, FLOP/s, byte/s) of the busy GPU in the steady state: the uncapped
    per-GPU power is ``basis @ (p_busy_w, e_flop_j, e_byte_j)``."""
    ss = steady_state(run, cond, input_scale)
    tm = TimingModel(shape(run.model), int(run.tp), "bf16", timing, "bf16", h100_gpu())
    wd, wm = tm.work(ss.decode), tm.work(ss.mixed)
    q = ss.q_mixed
    T = (1 - q) * wd.time_s + q * wm.time_s
    F = (1 - q) * wd.flops + q * wm.flops
    B = (1 - q) * wd.hbm_bytes + q * wm.hbm_bytes
    return np.array([1.0, F / T, B / T])


# ------------------------------------------------------------------ engine simulation
def output_dist(mean: float, max_tokens: int) -> dict[str, Any]:
    """Output lengths uniform on ``1 .. 2 mean - 1`` (mean = the run's ``avg_out_len``): the
    shape of ML.ENERGY's published output-length histograms (flat, then a short tail), and
    with it the mean context of live sequences (2/3 of the mean output) that decides how many
    long gpqa sequences the KV cache holds."""
    hi = max(1, min(int(round(2 * mean)) - 1, max_tokens))
    return {"dist": "uniform", "low": 1, "high": hi}
def scenario_dict(run, cond: dict, input_scale: float = 1.0) -> dict[str, Any]:
    """The fleetsim scenario of one ML.ENERGY run: one node, one replica of ``tp`` GPUs."""
    s, sim = cond["server"], cond["simulation"]
    B = int(run.max_num_seqs)
    n = int(min(sim["max_requests"], max(sim["min_requests"], sim["requests_per_client"] * B)))
    m = run.model
    if m in EXTRA_SHAPES:
        sh = EXTRA_SHAPES[m]
        model: Any = {"name": sh.name, "layers": sh.layers, "hidden_size": sh.hidden_size,
                      "heads": sh.heads, "kv_heads": sh.kv_heads, "ffn_size": sh.ffn_size,
                      "vocab_size": sh.vocab_size, "gated_mlp": sh.gated_mlp, "head_dim": sh.head_dim,
                      "tied_embeddings": sh.tied_embeddings}
    else:
        model = m
    I = max(1, int(round(input_mean(cond, run.task) * input_scale)))
    # the longest sequence: the configured one, or what the KV cache of this replica holds
    # (ML.ENERGY lowered max-model-len where a model barely fits, e.g. Gemma-3-27B on 1 GPU)
    plan = run_memory(m, int(run.tp), cond, B)
    max_len = int(min(int(s["max_model_len"]), plan.kv_tokens)) // 1024 * 1024
    return {
        "name": f"mlenergy-{m}-{run.task}-tp{int(run.tp)}-b{B}",
        "model": model,
        "deployment": {"nodes": 1, "tp": int(run.tp), "replicas_per_node": 1, "precision": "bf16"},
        "serving": {"max_batch_size": B, "max_batched_tokens": int(s["max_batched_tokens"]),
                    "chunked_prefill": bool(s["chunked_prefill"]),
                    "block_size_tokens": int(s["block_size_tokens"]),
                    "gpu_memory_fraction": float(s["gpu_memory_fraction"]),
                    "stack": s["stack"], "max_model_len": max_len},
        "workload": {"arrival": "closed_loop", "clients": B, "classes": {run.task: {
            "input_tokens": {"dist": "fixed", "value": I},
            "output_tokens": output_dist(float(run.avg_out_len), max_len - I)}}},
        "simulation": {"requests": n, "warmup_requests": int(n * sim["warmup_fraction"]),
                       "seed": int(sim["seed"])},
    }


def simulate_run(run, cond: dict, cal: Calibration, input_scale: float = 1.0) -> dict[str, float]:
    """Simulate one run with the engine; per-GPU figures of the replica's own GPUs.

    The engine's node has 8 GPUs; the unused ones idle at ``idle_w`` and are removed here:
    per-GPU power of the run's GPUs = (node GPU power - idle power of the unused GPUs) / tp,
    and J per output token = that power x tp / output tokens per second (what ML.ENERGY
    reports, GPU energy of the run's GPUs only).
    """
    from simulator.api import simulate
    from simulator.scenario.load import scenario_from_dict

    sc = scenario_from_dict(scenario_dict(run, cond, input_scale))
    res = simulate(sc, calibration=cal)
    s = res.summary
    n_gpus, tp = int(s["gpus"]), int(run.tp)
    total_w = s["gpu_power_w_mean"] * n_gpus
    p = (total_w - cal.power.idle_w * (n_gpus - tp)) / tp
    tok_s = s["throughput_output_tokens_per_s"]
    return {"itl_s": s["itl_s_p50"], "gpu_power_w": p, "j_per_token": p * tp / tok_s,
            "tok_s": tok_s, "batch": s["mean_batch_size"]}


# ------------------------------------------------------------------ fits
def _timing_with(base: TimingParams, x: np.ndarray) -> TimingParams:
    from simulator.physics.params import RooflineOp

    return base.model_copy(update={
        "iteration_fixed_s": float(x[0]),
        "per_seq_s": float(x[1]),
        "attn_decode": RooflineOp(eta_compute_max=0.5, eta_memory=float(x[3]), overhead_s=float(x[2])),
        "attn_prefill": RooflineOp(eta_compute_max=float(x[4]), eta_memory=0.8, overhead_s=float(x[2])),
    })


def fit_timing(runs: pd.DataFrame, cond: dict, base: TimingParams, max_nfev: int = 300,
               input_scale: float = 1.0) -> TimingParams:
    """Fit the serving stack's constants to the runs' median ITL (steady-state model).

    Free: per-iteration CPU cost, per-sequence cost (sampling, scheduling), per-layer attention
    kernel overhead (launch gaps of the small per-layer kernels: KV-cache write, QK norm), the
    decode attention's HBM efficiency and the prefill attention's compute efficiency. Each run
    weighs the same; each model's runs together weigh the same.
    """
    meas = runs["itl_s"].to_numpy()
    per_model = runs.groupby("model")["model"].transform("size").to_numpy()
    sw = np.sqrt(1.0 / per_model)
    x0 = np.array([1e-3, 2e-5, 2e-5, 0.8, 0.6])
    lb = np.array([0.0, 0.0, 0.0, 0.05, 0.05])
    ub = np.array([0.05, 1e-3, 5e-4, 1.0, 1.0])
    sc = np.array([5e-4, 1e-5, 1e-5, 0.1, 0.1])
    rows = list(runs.itertuples(index=False))

    def resid(x):
        p = _timing_with(base, x)
        pred = np.array([steady_metrics(r, cond, p, None, input_scale)["itl_s"] for r in rows])
        return (pred / meas - 1.0) * sw

    r = least_squares(resid, x0, bounds=(lb, ub), x_scale=sc, method="trf", xtol=1e-10,
                      ftol=1e-10, max_nfev=max_nfev)
    return _timing_with(base, r.x)


def fit_power(runs: pd.DataFrame, cond: dict, timing: TimingParams, idle_w: float,
              input_scale: float = 1.0) -> PowerParams:
    """Fit ``p_busy_w, e_flop_j, e_byte_j`` to the runs' per-GPU power (steady-state model).

    Power of a busy GPU: ``p_busy + e_flop FLOP/s + e_byte byte/s`` at the achieved rates of the
    timing model, clamped at the 700 W limit (the capped runs of small models at large batch
    read 685-690 W). Idle power is the datasheet anchor (no idle rows in the data).
    """
    meas = runs["gpu_power_w"].to_numpy()
    basis = np.array([power_basis(r, cond, timing, input_scale) for r in runs.itertuples(index=False)])
    per_model = runs.groupby("model")["model"].transform("size").to_numpy()
    sw = np.sqrt(1.0 / per_model)
    # achieved rates span FLOP/s ~1e14 and byte/s ~1e12: fit in scaled units
    scale = np.array([1.0, 1e-12, 1e-10])

    def model(x):  # smooth min(p, cap): the run average of iterations clamped at the cap
        p = basis @ (x * scale)
        return CAP_W - 15.0 * np.logaddexp(0.0, (CAP_W - p) / 15.0)

    def resid(x):
        return (model(x) / meas - 1.0) * sw

    x0 = np.array([250.0, 0.4, 0.6])
    r = least_squares(resid, x0, bounds=([idle_w, 0.0, 0.0], [CAP_W, 2.0, 50.0]),
                      x_scale=np.array([50.0, 0.1, 1.0]), method="trf", xtol=1e-12, ftol=1e-12)
    x = r.x * scale
    return PowerParams(idle_w=idle_w, p_busy_w=float(x[0]), e_flop_j=float(x[1]), e_byte_j=float(x[2]))
