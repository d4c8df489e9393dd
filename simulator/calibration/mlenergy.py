"""ML.ENERGY v3 runs: simulate the benchmark's protocol, and a fast steady-state model.

Two views of one run (model, TP, ``max_num_seqs`` = B, mean output O, assumed mean prompt I):

* :func:`simulate_run` runs the fleetsim engine under the benchmark's protocol (its N requests
  submitted at once to a server that runs B at a time, vLLM 0.11 defaults, see
  ``calibration/data/mlenergy_conditions.yaml``) and reads median ITL over every token, and
  per-GPU power and J per output token over the benchmark's steady-state window. This is what
  the error report uses: J per token always comes out of simulation, it is never fitted.
* :func:`steady_state` is a closed-form approximation, used inside the least-squares fits (the
  engine is too slow to sit in an optimiser loop): a renewal steady state where, per
  iteration, B sequences decode with mean context ``I + E[O^2] / (2 E[O])`` (a live sequence
  has generated that many tokens on average, length-biased, from the run's measured
  output-length histogram), and ``B / O`` requests complete, so ``B I / O`` prompt tokens are
  prefilled (chunked into the same iterations). A fraction ``q = min(1, B / O)`` of iterations
  carry a prefill chunk of ``I max(1, B / O)`` tokens. The benchmark is no renewal steady
  state (N is 1-128 x B; its window opens on young contexts and a full batch, its ITL median
  counts ramp-up and drain): :func:`with_protocol_factors` simulates, per run, how far the
  protocol moves ITL and power from the formula at a data-free reference, and the fits divide
  each measurement by that factor.

Output lengths are each run's measured histogram (``output_lengths.csv``); prompt lengths are
not in the data and stay an assumption (``mlenergy_conditions.yaml``, with a sensitivity check
in the report).
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

from simulator.calibration.anchors import h100
from simulator.calibration.extra_shapes import EXTRA_SHAPES, shape
from simulator.devices import DeviceProfile, load_profile
from simulator.errors import DataError
from simulator.physics.memory import plan_memory
from simulator.physics.params import Calibration, PowerParams, TimingParams
from simulator.physics.power import iteration_cost
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel

CAP_W = 700.0  # the H100's board limit (each run is modelled at its own GPU's: run_device)


def run_device(run) -> DeviceProfile:
    """The device profile of the GPU a run was measured on (its ``gpu`` column: H100, B200)."""
    return load_profile(str(getattr(run, "gpu", "H100")))


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


def _precision(run) -> str:
    return getattr(run, "precision", "bf16")


def timing_model(run, timing: TimingParams) -> TimingModel:
    """The timing model of one run's replica (its device, model, TP, checkpoint precision,
    experts)."""
    return TimingModel(shape(run.model), int(run.tp), _precision(run), timing, "bf16",
                       run_device(run).gpu, bool(getattr(run, "expert_parallel", False)))


def run_memory(model: str, tp: int, cond: dict, max_num_seqs: int, precision: str = "bf16",
               dev: DeviceProfile | None = None):
    """The memory plan of one run's replica on its device profile (default the H100's; vLLM's
    budget)."""
    dev = dev or h100()
    s = cond["server"]
    stack = dev.stack(s["stack"])
    return plan_memory(shape(model), tp, precision, "bf16", float(s["gpu_memory_fraction"]),
                       int(s["max_batched_tokens"]), int(max_num_seqs), int(s["block_size_tokens"]),
                       stack.non_torch_gib(tp), stack.sampler_bytes_per_logit, dev.gpu)


def kv_batch_limit(model: str, tp: int, cond: dict, ctx_tokens: float, max_num_seqs: int,
                   precision: str = "bf16", dev: DeviceProfile | None = None) -> int:
    """Sequences whose KV cache fits (vLLM admits no more; it preempts beyond)."""
    plan = run_memory(model, tp, cond, max_num_seqs, precision, dev)
    return max(1, int(plan.kv_tokens / max(ctx_tokens, 1.0)))


def length_moments(hist: np.ndarray) -> tuple[float, float]:
    """``E[O]`` and ``E[O^2]`` of a histogram (``low, high, count`` rows; uniform in a bin)."""
    lo, hi, n = hist[:, 0], hist[:, 1], hist[:, 2]
    p = n / n.sum()
    return float((p * (lo + hi) / 2).sum()), float((p * (lo * lo + lo * hi + hi * hi) / 3).sum())


def steady_state(run: pd.Series | Any, cond: dict, input_scale: float = 1.0) -> SteadyState:
    I = input_mean(cond, run.task) * input_scale
    O = float(run.avg_out_len)
    e1, e2 = length_moments(run.lengths)
    ctx = I + e2 / (2.0 * e1)  # mean context of a live sequence (length-biased)
    B = min(int(run.max_num_seqs), kv_batch_limit(run.model, int(run.tp), cond, ctx * 1.1,
                                                   int(run.max_num_seqs), _precision(run),
                                                   run_device(run)))
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
    tm = timing_model(run, timing)
    wd, wm = tm.work(ss.decode), tm.work(ss.mixed)
    if power is None:
        td, tmix, ed, em = wd.time_s, wm.time_s, 0.0, 0.0
    else:
        dev = run_device(run)
        d, cap = dev.dvfs(), dev.gpu.tdp_w
        cd, cm = iteration_cost(power, wd, cap, d), iteration_cost(power, wm, cap, d)
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


@dataclass(frozen=True)
class PowerBasis:
    """What the uncapped steady-state power of a run depends on, per GPU, time-averaged over its
    decode and mixed iterations: total time ``T``, HBM bytes ``B`` and the phases as rows of
    ``(weight x time_s, FLOP rate, byte rate)``. Power is ``p_busy + p_active A / T + e_byte B / T``
    (:mod:`simulator.physics.power`)."""

    time_s: float
    hbm_bytes: float
    phases: np.ndarray

    def activity_fraction(self, activity_flops_per_s: float, activity_bytes_per_s: float) -> float:
        w, rf, rb = self.phases.T
        u = -np.expm1(-rf / activity_flops_per_s - rb / activity_bytes_per_s)
        return float(np.sum(w * u) / self.time_s)


def power_basis(run, cond: dict, timing: TimingParams, input_scale: float = 1.0) -> PowerBasis:
    """The run's steady state as :class:`PowerBasis` (timing model at ``timing``)."""
    ss = steady_state(run, cond, input_scale)
    tm = timing_model(run, timing)
    wd, wm = tm.work(ss.decode), tm.work(ss.mixed)
    q = ss.q_mixed
    rows = [((1 - q) * t, f / t, b / t) for t, f, b in wd.phases if t > 0]
    rows += [(q * t, f / t, b / t) for t, f, b in wm.phases if t > 0 and q > 0]
    return PowerBasis((1 - q) * wd.time_s + q * wm.time_s, (1 - q) * wd.hbm_bytes + q * wm.hbm_bytes,
                      np.array(rows))


# ------------------------------------------------------------------ engine simulation
def output_dist(hist: np.ndarray, max_tokens: int) -> dict[str, Any]:
    """The run's measured output-length histogram as a scenario length distribution."""
    return {"dist": "histogram", "max_tokens": max(1, int(max_tokens)),
            "bins": [[float(a), float(b), float(c)] for a, b, c in hist]}


def scenario_dict(run, cond: dict, input_scale: float = 1.0) -> dict[str, Any]:
    """The fleetsim scenario of one ML.ENERGY run: one node, one replica of ``tp`` GPUs."""
    s, sim = cond["server"], cond["simulation"]
    B = int(run.max_num_seqs)
    n = responses(run)
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
    dev = run_device(run)
    plan = run_memory(m, int(run.tp), cond, B, _precision(run), dev)
    max_len = int(min(int(s["max_model_len"]), plan.kv_tokens)) // 1024 * 1024
    return {
        "name": f"mlenergy-{m}-{run.task}-tp{int(run.tp)}-b{B}",
        "model": model,
        "hardware": {"gpu": dev.name},
        "deployment": {"nodes": 1, "tp": int(run.tp), "replicas_per_node": 1,
                       "precision": _precision(run),
                       "expert_parallel": bool(getattr(run, "expert_parallel", False))},
        "serving": {"max_batch_size": B, "max_batched_tokens": int(s["max_batched_tokens"]),
                    "chunked_prefill": bool(s["chunked_prefill"]),
                    "block_size_tokens": int(s["block_size_tokens"]),
                    "gpu_memory_fraction": float(s["gpu_memory_fraction"]),
                    "stack": s["stack"], "max_model_len": max_len},
        "workload": {"arrival": "closed_loop", "clients": B, "classes": {run.task: {
            "input_tokens": {"dist": "fixed", "value": I},
            "output_tokens": output_dist(run.lengths, max_len - I)}}},
        "simulation": {"requests": n, "warmup_requests": 0, "seed": int(sim["seed"])},
    }


def responses(run) -> int:
    """The run's request count N: the responses its measured output-length histogram counts
    (the benchmark's requests x repeats, every one completed)."""
    return max(1, int(round(float(np.asarray(run.lengths)[:, 2].sum()))))


def benchmark_window(first_token_s: np.ndarray, finish_s: np.ndarray, batch: int) -> tuple[float, float]:
    """ML.ENERGY's steady-state window of a run of ``N`` requests at ``max_num_seqs = batch``:
    from the moment ``batch`` requests have their first token (the prefill burst is over) to
    the moment ``N - batch - 1`` have finished (the drain begins). ``(nan, nan)`` when that
    leaves no window (N below about 2 x batch with short outputs)."""
    n = len(finish_s)
    k = n - batch - 1
    if n < batch or k < 1:
        return float("nan"), float("nan")
    w0 = float(np.partition(first_token_s, batch - 1)[batch - 1])
    w1 = float(np.partition(finish_s, k - 1)[k - 1])
    return (w0, w1) if w1 > w0 else (float("nan"), float("nan"))


def simulate_run(run, cond: dict, cal: Calibration, input_scale: float = 1.0) -> dict[str, float]:
    """Simulate one run with the engine under the benchmark's protocol; per-GPU figures of the
    replica's own GPUs.

    The benchmark submits its ``N`` requests at once to a server that runs ``max_num_seqs`` of
    them at a time (:func:`responses`). Median ITL is over every token of every request, as the
    benchmark's client measures it (ramp-up and drain included). Power, J per output token,
    token rate and batch are over its steady-state window (:func:`benchmark_window`; the whole
    run after the prefill burst where a simulated run leaves none). The engine's node has 8
    GPUs; the unused ones idle at ``idle_w`` and are removed: per-GPU power of the run's GPUs =
    (node GPU energy - idle energy of the unused GPUs) / window / tp, and J per output token =
    that energy / output tokens in the window (what ML.ENERGY reports: GPU energy of the run's
    GPUs only).
    """
    from simulator.api import simulate
    from simulator.metrics.summary import weighted_itl_quantiles
    from simulator.scenario.load import scenario_from_dict

    sc = scenario_from_dict(scenario_dict(run, cond, input_scale))
    res = simulate(sc, calibration=cal, summary=False)
    t = res.table
    B = int(run.max_num_seqs)
    first = t["arrival_s"] + t["ttft_s"]
    w0, w1 = benchmark_window(first, t["finish_s"], B)
    if w0 != w0:  # no window: after the prefill burst to the end
        k = min(B, len(first)) - 1
        w0, w1 = float(np.partition(first, k)[k]), float(np.nanmax(t["finish_s"]))
    win = res.ledger.window(w0, w1, host=False)
    dur = w1 - w0
    tp = int(run.tp)
    gpu_j = win.gpu_j - cal.power.idle_w * (res.fleet.gpus - tp) * dur
    itl = weighted_itl_quantiles([r.rec for r in res.fleet.replicas], 0.0, [0.5])[0]
    return {"itl_s": itl, "gpu_power_w": gpu_j / dur / tp, "j_per_token": gpu_j / win.tokens_out,
            "tok_s": win.tokens_out / dur, "batch": win.batch_s / dur}


#: the steady-state figures the protocol factors scale, and their simulate_run keys
PROTOCOL_FIGURES = {"itl": "itl_s", "power": "gpu_power_w"}


def protocol_factor(runs: pd.DataFrame, figure: str) -> np.ndarray:
    """Each run's protocol factor for ``figure`` (column ``protocol_<figure>``; 1 where absent)."""
    col = f"protocol_{figure}"
    return runs[col].to_numpy(dtype=float) if col in runs else np.ones(len(runs))


def with_protocol_factors(runs: pd.DataFrame, cond: dict, ref: Calibration) -> pd.DataFrame:
    """``runs`` with ``protocol_itl`` and ``protocol_power``: the engine's figure under the
    benchmark's protocol (:func:`simulate_run`) over the steady-state formula's
    (:func:`steady_metrics`), both at the reference calibration ``ref``.

    The fits use the closed-form steady state (the engine is too slow inside an optimiser); it
    assumes every run in a renewal steady state at a KV-bounded batch, while the benchmark
    measures N requests submitted at once, median ITL over ramp-up and drain, power in a
    window that opens after the prefill burst (young contexts, the full batch). Dividing each
    measurement by its run's factor fits the formula to what it can represent; the factors
    are simulated at a reference that saw no measurement of these runs (the fits' starting
    points), so leaving a model out stays clean.
    """
    out = runs.copy()
    for k in PROTOCOL_FIGURES:
        out[f"protocol_{k}"] = 1.0
    for i, r in enumerate(runs.itertuples(index=False)):
        sim = simulate_run(r, cond, ref)
        ss = steady_metrics(r, cond, ref.timing, ref.power)
        for k, key in PROTOCOL_FIGURES.items():
            out.iloc[i, out.columns.get_loc(f"protocol_{k}")] = sim[key] / ss[key]
    return out


def with_dense_protocol(runs: pd.DataFrame, cond: dict, base: TimingParams, idle_w: float,
                        dev: DeviceProfile) -> pd.DataFrame:
    """:func:`with_protocol_factors` of dense runs at the dense fits' data-free starting point
    (:func:`reference_timing` on ``base``, :func:`reference_power` of ``dev``)."""
    return with_protocol_factors(runs, cond, Calibration(
        version="1.0", timing=reference_timing(base), power=reference_power(idle_w, dev)))


def with_moe_protocol(runs: pd.DataFrame, cond: dict, dense: TimingParams,
                      power: PowerParams) -> pd.DataFrame:
    """:func:`with_protocol_factors` of MoE runs at the MoE fit's starting point on the fitted
    dense timing and power (:func:`reference_moe_timing`)."""
    return with_protocol_factors(runs, cond, Calibration(
        version="1.0", power=power,
        timing=reference_moe_timing(dense, sorted(runs["precision"].unique()))))


# ------------------------------------------------------------------ fits
#: prior of the custom all-reduce latency (s): Vidur's NCCL table at 2 GPUs for small messages
#: (8.4 us), with a 4 us spread; the TP 2 runs of the data refine it, TP 4/8 inherit it
AR_PRIOR_S, AR_PRIOR_SD_S = 8.4e-6, 4e-6
#: prior of the prefill attention's compute efficiency: the ML.ENERGY prompts (~300 tokens)
#: leave it unidentified, so it is held near a FlashAttention-2-like 0.6 of the BF16 peak
#: (+-0.15) instead of wandering with rounding
ATTN_PREFILL_PRIOR, ATTN_PREFILL_PRIOR_SD = 0.6, 0.15
#: a saturated dense BF16 GEMM at the DVFS model's sustained rate (0.8 x the BF16 peak) must
#: fit the board power limit: a real H100 sustains 750-800 TFLOP/s within 700 W
SATURATED_GEMM_MAX_W = 700.0


#: the serving-stack fit's starting point (iteration, per-sequence and attention overheads, s;
#: decode attention HBM and prefill attention compute efficiencies; all-reduce latency, s):
#: also the data-free reference the protocol factors of the dense runs are simulated at
TIMING_X0 = (1e-3, 2e-5, 2e-5, 0.8, 0.6, AR_PRIOR_S)


def reference_timing(base: TimingParams) -> TimingParams:
    """``base`` with the serving-stack constants at the fit's starting point (no data)."""
    return _timing_with(base, np.array(TIMING_X0))


def _timing_with(base: TimingParams, x: np.ndarray) -> TimingParams:
    from simulator.physics.params import CustomAllReduce, RooflineOp

    return base.model_copy(update={
        "iteration_fixed_s": float(x[0]),
        "per_seq_s": float(x[1]),
        "attn_decode": RooflineOp(eta_compute_max=0.5, eta_memory=float(x[3]), overhead_s=float(x[2])),
        "attn_prefill": RooflineOp(eta_compute_max=float(x[4]), eta_memory=0.8, overhead_s=float(x[2])),
        "custom_all_reduce": CustomAllReduce(latency_s=float(x[5])),
    })


def fit_timing(runs: pd.DataFrame, cond: dict, base: TimingParams, max_nfev: int = 300,
               input_scale: float = 1.0, robust: float | None = None) -> TimingParams:
    """Fit the serving stack's constants to the runs' median ITL (steady-state model).

    Free: per-iteration CPU cost, per-sequence cost (sampling, scheduling), per-layer attention
    kernel overhead (launch gaps of the small per-layer kernels: KV-cache write, QK norm), the
    decode attention's HBM efficiency, the prefill attention's compute efficiency, and the
    custom all-reduce's latency (constrained by the TP > 1 runs and a prior, AR_PRIOR_S). Each
    run weighs the same; each model's runs together weigh the same. ``robust``: see
    :func:`_loss`.
    """
    meas = runs["itl_s"].to_numpy() / protocol_factor(runs, "itl")
    per_model = runs.groupby("model")["model"].transform("size").to_numpy()
    sw = np.sqrt(1.0 / per_model)
    x0 = np.array(TIMING_X0)
    lb = np.array([0.0, 0.0, 0.0, 0.05, 0.05, 0.0])
    ub = np.array([0.05, 1e-3, 5e-4, 1.0, 1.0, 1e-4])
    sc = np.array([5e-4, 1e-5, 1e-5, 0.1, 0.1, 4e-6])
    rows = list(runs.itertuples(index=False))

    def resid(x):
        p = _timing_with(base, x)
        pred = np.array([steady_metrics(r, cond, p, None, input_scale)["itl_s"] for r in rows])
        prior = (x[5] - AR_PRIOR_S) / AR_PRIOR_SD_S
        prior_attn = (x[4] - ATTN_PREFILL_PRIOR) / ATTN_PREFILL_PRIOR_SD
        return np.r_[(pred / meas - 1.0) * sw, 0.05 * prior, 0.05 * prior_attn]

    r = least_squares(resid, x0, bounds=(lb, ub), x_scale=sc, method="trf", xtol=1e-10,
                      ftol=1e-10, max_nfev=max_nfev, **_loss(robust))
    return _timing_with(base, r.x)


def _moe_timing_with(base: TimingParams, x: np.ndarray, precisions: list[str]) -> TimingParams:
    from simulator.physics.params import RooflineOp

    n = len(precisions)
    experts = {p: RooflineOp(eta_compute_max=MOE_ETA_COMPUTE, m_half_tokens=float(x[2 * i]),
                             eta_memory=float(x[2 * i + 1])) for i, p in enumerate(precisions)}
    return base.model_copy(update={"experts": experts, "expert_parallel_layer_s": float(x[2 * n]),
                                   "expert_popularity_exponent": float(x[2 * n + 1])})


def _moe_x0(n_precisions: int) -> np.ndarray:
    """The MoE fit's starting point: per precision (rows per expert at half compute
    efficiency, HBM efficiency), then the EP layer time (s) and the popularity exponent."""
    return np.array([64.0, 0.7] * n_precisions + [2e-5, 0.5])


def reference_moe_timing(dense: TimingParams, precisions: list[str] | tuple[str, ...]) -> TimingParams:
    """``dense`` with the mixture-of-experts terms at the MoE fit's starting point (no MoE
    data): the reference the MoE runs' protocol factors are simulated at."""
    return _moe_timing_with(dense, _moe_x0(len(precisions)), list(precisions))


#: upper bound of the fitted Zipf exponent of expert popularity
MAX_POPULARITY_EXPONENT = 3.0
#: compute efficiency of the grouped expert GEMM with many rows per expert (as the dense GEMMs'
#: fitted 0.75-0.8; the MoE runs hardly reach it: their rows per expert are few)
MOE_ETA_COMPUTE = 0.8


def fit_moe_timing(runs: pd.DataFrame, cond: dict, base: TimingParams, max_nfev: int = 200,
                   input_scale: float = 1.0, robust: float | None = None,
                   precisions: list[str] | tuple[str, ...] = ()) -> TimingParams:
    """Fit the mixture-of-experts terms to the MoE runs' median ITL (steady-state model), with
    every dense coefficient (per-op, serving stack) fixed at ``base``.

    Free, per expert weight precision present (BF16, FP8 block-scaled, MXFP4: three different
    kernels in vLLM): the grouped expert GEMM's HBM efficiency and the rows per expert at which
    its compute efficiency is half its maximum; shared by all: one time per MoE layer under
    expert parallelism (dispatch and combine) and the Zipf exponent of the experts' routing
    popularity (how many distinct experts a batch touches, so how many expert weights it
    reads). Each model's runs together weigh the same. ``robust``:
    see :func:`_loss`. ``precisions``: expert precisions that must get an entry; one without a
    run in ``runs`` (a held-out model that is its GPU's only one in that precision) takes the
    BF16 kernel's fitted terms (as fractions of its own precision's peak), an assumption.
    """
    meas = runs["itl_s"].to_numpy() / protocol_factor(runs, "itl")
    per_model = runs.groupby("model")["model"].transform("size").to_numpy()
    sw = np.sqrt(1.0 / per_model)
    fitted = sorted(runs["precision"].unique())
    n = len(fitted)
    x0 = _moe_x0(n)
    lb = np.array([0.0, 0.05] * n + [0.0, 0.0])
    ub = np.array([8192.0, 1.0] * n + [1e-3, MAX_POPULARITY_EXPONENT])
    sc = np.array([32.0, 0.1] * n + [1e-5, 0.2])
    rows = list(runs.itertuples(index=False))

    def resid(x):
        p = _moe_timing_with(base, x, fitted)
        pred = np.array([steady_metrics(r, cond, p, None, input_scale)["itl_s"] for r in rows])
        return (pred / meas - 1.0) * sw

    r = least_squares(resid, x0, bounds=(lb, ub), x_scale=sc, method="trf", xtol=1e-10,
                      ftol=1e-10, max_nfev=max_nfev, **_loss(robust))
    t = _moe_timing_with(base, r.x, fitted)
    missing = [p for p in precisions if p not in t.experts]
    if missing:
        if "bf16" not in t.experts:
            raise ValueError(f"no runs to fit the expert terms of {missing}")
        t = t.model_copy(update={"experts": {**t.experts, **{p: t.experts["bf16"] for p in missing}}})
    return t


def _loss(robust: float | None) -> dict[str, Any]:
    """Least-squares loss: plain squares, or (``robust``: the relative residual at which it
    bends) soft-L1, which grows linearly beyond it so a few runs far off every model's trend
    (host-bound gaps on the B200, calibration/README.md) do not pull the fit."""
    return {} if robust is None else {"loss": "soft_l1", "f_scale": float(robust)}


def saturated_gemm(dev: DeviceProfile | None = None) -> tuple[float, float]:
    """(FLOP/s, byte/s) of one GPU running a large square BF16 GEMM at the DVFS model's
    sustained rate (8192 x 8192 x 8192: arithmetic intensity ~2,700 FLOP/byte)."""
    dev = dev or h100()
    n = 8192.0
    flops = 2 * n ** 3
    nbytes = 3 * n * n * 2.0
    rate = dev.dvfs().sustained_flops_per_s
    return rate, nbytes * rate / flops


def saturated_gemm_power_w(power: PowerParams, dev: DeviceProfile | None = None) -> float:
    """Power the fitted model demands for a saturated dense BF16 GEMM, W (reported; bounded by
    the board limit in the fit)."""
    f, b = saturated_gemm(dev)
    act = -math.expm1(-f / power.activity_flops_per_s - b / power.activity_bytes_per_s)
    return power.p_busy_w + power.p_active_w * act + power.e_byte_j * b


#: ranges of the activity rates searched by the fit: FLOP/s, byte/s
ACTIVITY_FLOPS_RANGE = (2e13, 3e15)
ACTIVITY_BYTES_RANGE = (1e11, 1e14)


#: the power fit's starting activity rates (FLOP/s, byte/s); the first is also the data-free
#: reference of the dense runs' protocol factors
POWER_STARTS = ((1e14, 3e12), (3e14, 1e13), (1e15, 3e13))


def _power_x0(f0_start: float, b0_start: float) -> np.ndarray:
    # x = (p_busy W, e_byte in 1e-10 J, u in [0, 1], log F0, log B0)
    return np.array([150.0, 0.5, 0.8, np.log(f0_start), np.log(b0_start)])


def _power_coeffs(x: np.ndarray, cap_w: float, f_sat: float, b_sat: float) -> tuple[float, ...]:
    """``(p_busy_w, p_active_w, F0, B0, e_byte_j)`` of the power fit's vector ``x``
    (``p_active_w`` as a fraction ``x[2]`` of what a saturated GEMM leaves below the cap, and
    never more than a fully active phase could draw below it)."""
    p_busy, e_byte, f0, b0 = x[0], x[1] * 1e-10, float(np.exp(x[3])), float(np.exp(x[4]))
    room = max(cap_w - p_busy - e_byte * b_sat, 0.0)
    p_active = min(x[2] * room / -math.expm1(-f_sat / f0 - b_sat / b0), cap_w - p_busy)
    return p_busy, p_active, f0, b0, e_byte


def reference_power(idle_w: float, dev: DeviceProfile) -> PowerParams:
    """The power fit's first starting point as coefficients (no data): the reference the
    dense runs' protocol factors are simulated at."""
    f_sat, b_sat = saturated_gemm(dev)
    p_busy, p_active, f0, b0, e_byte = _power_coeffs(_power_x0(*POWER_STARTS[0]), dev.gpu.tdp_w,
                                                     f_sat, b_sat)
    return PowerParams(idle_w=idle_w, p_busy_w=max(float(p_busy), idle_w), p_active_w=float(p_active),
                       activity_flops_per_s=f0, activity_bytes_per_s=b0, e_byte_j=float(e_byte))


def fit_power(runs: pd.DataFrame, cond: dict, timing: TimingParams, idle_w: float,
              input_scale: float = 1.0, robust: float | None = None) -> PowerParams:
    """Fit ``p_busy_w, p_active_w, activity_flops_per_s, activity_bytes_per_s, e_byte_j`` to the
    runs' per-GPU power (steady-state model, :mod:`simulator.physics.power`).

    Modelled power is clamped at the runs' GPU's board limit (H100: 700 W; the capped runs of
    small models at large batch read 685-690 W). Idle power is the datasheet anchor (no idle
    rows in the data) and bounds ``p_busy_w`` from below. Physics bound: a saturated BF16 GEMM
    may demand at most the board limit (``SATURATED_GEMM_MAX_W`` on an H100; ``p_active_w`` is
    parameterised as a fraction of what that leaves). Each run weighs the same; each model's
    runs together weigh the same. Every run must be of one GPU type.
    """
    gpus = sorted({str(g) for g in runs["gpu"]}) if "gpu" in runs else ["H100"]
    if len(gpus) != 1:
        raise ValueError(f"fit_power needs runs of one GPU type, got {gpus}")
    dev = load_profile(gpus[0])
    cap_w = dev.gpu.tdp_w
    meas = runs["gpu_power_w"].to_numpy() / protocol_factor(runs, "power")
    bases = [power_basis(r, cond, timing, input_scale) for r in runs.itertuples(index=False)]
    T = np.array([b.time_s for b in bases])
    byte_rate = np.array([b.hbm_bytes for b in bases]) / T
    per_model = runs.groupby("model")["model"].transform("size").to_numpy()
    sw = np.sqrt(1.0 / per_model)
    f_sat, b_sat = saturated_gemm(dev)

    def coeffs(x):
        return _power_coeffs(x, cap_w, f_sat, b_sat)

    def model(x):  # smooth min(p, cap): the run average of iterations clamped at the cap
        p_busy, p_active, f0, b0, e_byte = coeffs(x)
        act = np.array([b.activity_fraction(f0, b0) for b in bases])
        p = p_busy + p_active * act + e_byte * byte_rate
        return cap_w - 15.0 * np.logaddexp(0.0, (cap_w - p) / 15.0)

    def resid(x):
        return (model(x) / meas - 1.0) * sw

    lb = [idle_w, 0.0, 0.0, np.log(ACTIVITY_FLOPS_RANGE[0]), np.log(ACTIVITY_BYTES_RANGE[0])]
    ub = [cap_w, 50.0, 1.0, np.log(ACTIVITY_FLOPS_RANGE[1]), np.log(ACTIVITY_BYTES_RANGE[1])]
    best = None
    for f0_start, b0_start in POWER_STARTS:  # not convex: starts
        x0 = _power_x0(f0_start, b0_start)
        r = least_squares(resid, x0, bounds=(lb, ub), x_scale=np.array([50.0, 1.0, 0.1, 0.3, 0.3]),
                          method="trf", xtol=1e-12, ftol=1e-12, **_loss(robust))
        if best is None or r.cost < best.cost:
            best = r
    p_busy, p_active, f0, b0, e_byte = coeffs(best.x)
    return PowerParams(idle_w=idle_w, p_busy_w=float(p_busy), p_active_w=float(p_active),
                       activity_flops_per_s=float(f0), activity_bytes_per_s=float(b0),
                       e_byte_j=float(e_byte))
