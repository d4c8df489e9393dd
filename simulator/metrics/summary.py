"""Metrics of a run: the per-request table, the energy ledger and ``summary.json``.

Definitions (all exclude warm-up requests; windowed quantities use the steady-state window
``[window_start_s, window_end_s]``: end of warm-up to the last arrival):

* ttft_s = first token time - arrival; e2e_s = finish - arrival; queue_s = first scheduled -
  arrival; tpot_s = (e2e - ttft) / (output tokens - 1) (0 for one-token outputs).
* itl_s_*: quantiles over every generated token after the first of the gap since the previous
  token of the same request (exact: computed from the iteration durations).
* energy_*_j: exact integrals over the whole run [0, simulated_time_s] of piecewise-constant
  power; GPU idle power fills every interval a GPU has no work.
* energy_per_output_token_j: GPU energy / output tokens, inside the window (what GPU-metered
  benchmarks report). energy_per_query_wh_*: facility energy (GPU + host busy share, times PUE)
  attributed to each query by the tokens it had in each iteration.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.engine.request import DECODE, DONE, DROPPED, PREFILL, QUEUED

if TYPE_CHECKING:
    from simulator.engine.run import RunResult, Simulation

STATE_NAMES = {DONE: "completed", DROPPED: "dropped", QUEUED: "in_flight", PREFILL: "in_flight",
               DECODE: "in_flight"}
STATE_CATEGORIES = ["completed", "dropped", "in_flight"]
# engine state -> index in STATE_CATEGORIES
STATE_CODES = np.array([STATE_CATEGORIES.index(STATE_NAMES[k]) for k in sorted(STATE_NAMES)])
J_PER_WH = 3600.0


def request_table(sim: "Simulation") -> pd.DataFrame:
    """One row per request (struct of arrays built once from the Request objects)."""
    reqs = sim.requests
    sc = sim.sc
    pue = sc.facility.pue
    rpn = sim.fleet.replicas_per_node
    n = len(reqs)
    g = lambda name, dt=float: np.fromiter(map(attrgetter(name), reqs), dtype=dt, count=n)  # noqa: E731
    arrival = g("arrival_s")
    first = g("first_token_s")
    finish = g("finish_s")
    out = g("output_tokens", np.int64)
    replica = g("replica", np.int64)
    state_code = STATE_CODES[g("state", np.int64)] if n else np.zeros(0, np.int64)
    ttft = first - arrival
    e2e = finish - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (finish - first) / np.maximum(out - 1, 1), 0.0)
    rid = np.arange(n)
    warm = (arrival < sc.simulation.warmup_s) | (rid < sc.simulation.warmup_requests)
    classes = np.array(sim.workload.class_names, dtype=object)
    cls = g("cls", np.int64)
    slo_ttft = np.array([s.ttft_s for s in sim.workload.slos])[cls] if n else np.zeros(0)
    slo_tpot = np.array([s.tpot_s for s in sim.workload.slos])[cls] if n else np.zeros(0)
    energy = g("energy_j")
    done = state_code == 0
    return pd.DataFrame({
        "request_id": rid,
        "class": pd.Categorical.from_codes(cls, categories=list(classes)),
        "state": pd.Categorical.from_codes(state_code, categories=STATE_CATEGORIES),
        "warmup": warm,
        "replica": replica,
        "node": np.where(replica >= 0, replica // rpn, -1),
        "arrival_s": arrival,
        "input_tokens": g("input_tokens", np.int64),
        "output_tokens": out,
        "queue_s": g("first_sched_s") - arrival,
        "ttft_s": ttft,
        "tpot_s": np.where(done, tpot, np.nan),
        "e2e_s": np.where(done, e2e, np.nan),
        "finish_s": finish,
        "preemptions": g("preemptions", np.int64),
        "energy_j": energy,
        "energy_facility_wh": energy * pue / J_PER_WH,
        "slo_met": done & (ttft <= slo_ttft) & (np.where(out > 1, tpot, 0.0) <= slo_tpot),
    })


MATERIALISE_MAX_ITERATIONS = 20_000_000  # above this, bisection on counts instead of a sort


def weighted_itl_quantiles(rec_list, t_from_s: float, qs: list[float]) -> list[float]:
    """Exact quantiles of inter-token latency from arithmetic-progression pieces.

    The q-quantile is the smallest latency x such that the tokens with ITL <= x weigh at least
    q of all. Up to ``MATERIALISE_MAX_ITERATIONS`` iterations, every iteration's latency is
    materialised and sorted; beyond, a bisection on closed-form counts finds the same value."""
    a = np.concatenate([r.array("itl_a") for r in rec_list]) if rec_list else np.zeros(0)
    if a.size == 0:
        return [float("nan")] * len(qs)
    b = np.concatenate([r.array("itl_b") for r in rec_list])
    k = np.concatenate([r.array("itl_k") for r in rec_list])
    w = np.concatenate([r.array("itl_w") for r in rec_list])
    t = np.concatenate([r.array("itl_t_s") for r in rec_list])
    # keep the iterations that start at or after t_from_s: in piece (t, a, b, k), iteration j
    # starts at t + j a + b j (j - 1) / 2
    gap = t_from_s - t
    j0 = np.zeros_like(a)
    part = gap > 0
    if part.any():
        ap, bp, gp = a[part], b[part], gap[part]
        lin = np.ceil(gp / np.maximum(ap, 1e-300))
        with np.errstate(invalid="ignore", divide="ignore"):
            h = ap - bp / 2.0
            root = (-h + np.sqrt(h * h + 2.0 * bp * gp)) / bp
        jj = np.where(bp > 0, np.ceil(root), lin)
        start = lambda j: j * ap + bp * j * (j - 1) / 2.0  # noqa: E731
        jj = np.where(start(jj - 1) >= gp, jj - 1, jj)  # correct rounding either way
        jj = np.where(start(jj) < gp, jj + 1, jj)
        j0[part] = jj
    k = k - j0
    a = a + b * j0
    keep = k > 0
    a, b, k, w = a[keep], b[keep], k[keep], w[keep]
    if a.size == 0:
        return [float("nan")] * len(qs)
    total = float((k * w).sum())
    n_iter = int(k.sum())
    if n_iter <= MATERIALISE_MAX_ITERATIONS:
        # every iteration's latency, sorted, with cumulative token weights (integers: exact)
        kk = k.astype(np.int64)
        piece = np.repeat(np.arange(a.size), kk)
        j = np.arange(n_iter) - np.repeat(np.cumsum(kk) - kk, kk)
        vals = a[piece] + b[piece] * j
        order = np.argsort(vals, kind="stable")
        cw = np.cumsum(w[piece][order])
        pos = np.minimum(np.searchsorted(cw, np.asarray(qs) * total, side="left"), n_iter - 1)
        return [float(v) for v in vals[order[pos]]]
    lo0, hi0 = float(a.min()), float((a + b * (k - 1)).max())
    safe_b = np.where(b > 0, b, 1.0)

    def count_le(x: float) -> float:
        # iterations j < k with a + b j <= x
        cnt = np.where(b > 0, np.floor((x - a) / safe_b) + 1, np.where(a <= x, k, 0.0))
        return float((np.clip(cnt, 0, k) * w).sum())

    out = []
    for q in qs:
        target = q * total
        lo, hi = lo0, hi0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if count_le(mid) >= target:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-12 * max(hi, 1e-9):
                break
        out.append(hi)
    return out


def records_frame(replica) -> pd.DataFrame:
    r = replica.rec
    return pd.DataFrame({"t0_s": r.t0_s, "t1_s": r.t1_s, "energy_j": r.energy_j, "peak_w": r.peak_w,
                         "batch": r.batch, "tokens_out": r.tokens_out, "prefill_j": r.prefill_j,
                         "kv_tokens": r.kv_tokens})


def _clip_sum(t0: np.ndarray, t1: np.ndarray, vals: np.ndarray, w0: float, w1: float) -> float:
    """Sum of interval values prorated by their overlap with [w0, w1]."""
    dur = t1 - t0
    ov = np.clip(np.minimum(t1, w1) - np.maximum(t0, w0), 0.0, None)
    frac = np.divide(ov, dur, out=np.zeros_like(ov), where=dur > 0)
    return float((vals * frac).sum())


def node_timeline(res: "RunResult", node: int) -> pd.DataFrame:
    """Piecewise-constant power of one node: GPUs (busy at their interval mean, idle at idle
    power, unused GPUs idle) plus host (idle + busy share). Exact integral of the ledger.
    Computed once per node and kept in ``res.timelines`` (the ledger is final after a run)."""
    hit = res.timelines.get(node)
    if hit is None:
        hit = res.timelines[node] = _node_timeline(res, node)
    return hit


def _node_timeline(res: "RunResult", node: int) -> pd.DataFrame:
    fleet, sc = res.fleet, res.scenario
    idle_w = res.calibration.power.idle_w
    gpn, tp = fleet.gpus_per_node, fleet.tp
    host_idle = sc.facility.host_idle_w
    host_busy_per_gpu = sc.facility.host_active_w / gpn
    reps = [r for r in fleet.replicas if r.node == node]
    bounds = [np.array([0.0, res.end_s])]
    for r in reps:
        bounds += [r.rec.array("t0_s"), r.rec.array("t1_s")]
    edges = np.unique(np.concatenate(bounds))
    edges = edges[(edges >= 0) & (edges <= res.end_s)]
    if edges.size < 2:
        edges = np.array([0.0, max(res.end_s, 0.0)])
    mids = 0.5 * (edges[:-1] + edges[1:])
    gpu_w = np.full(mids.size, idle_w * (gpn - len(reps) * tp))
    peak_w = gpu_w.copy()
    busy_gpus = np.zeros(mids.size)
    for r in reps:
        t0 = r.rec.array("t0_s")
        t1 = r.rec.array("t1_s")
        p = np.divide(r.rec.array("energy_j"), t1 - t0, out=np.zeros(t0.size), where=t1 > t0)
        pk = r.rec.array("peak_w") * tp
        idx = np.searchsorted(t0, mids, side="right") - 1
        inside = (idx >= 0) & (mids < t1[np.clip(idx, 0, None)]) if t0.size else np.zeros(mids.size, bool)
        gi = np.clip(idx, 0, None)
        gpu_w += np.where(inside, p[gi] if t0.size else 0.0, idle_w * tp)
        peak_w += np.where(inside, pk[gi] if t0.size else 0.0, idle_w * tp)
        busy_gpus += np.where(inside, tp, 0)
    host_w = host_idle + host_busy_per_gpu * busy_gpus
    return pd.DataFrame({"t_start_s": edges[:-1], "t_end_s": edges[1:], "gpu_power_w": gpu_w,
                         "host_power_w": host_w, "node_power_w": gpu_w + host_w,
                         "node_power_w_peak": peak_w + host_w, "busy_gpus": busy_gpus})


def _pct(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if x.size else float("nan")


def summarise(res: "RunResult") -> dict[str, Any]:
    sc, fleet, df = res.scenario, res.fleet, res.requests
    w0, w1 = res.window_s
    win = max(w1 - w0, 1e-12)
    pue = sc.facility.pue
    idle_w = res.calibration.power.idle_w
    n_gpus = fleet.nodes * fleet.gpus_per_node
    end = res.end_s
    # ---- energy ledger, whole run
    busy_gpu_j = prefill_j = 0.0
    busy_gpu_s = 0.0  # GPU-seconds busy
    win_gpu_j = win_tokens = win_batch_s = win_busy_s = win_kv = 0.0
    for r in fleet.replicas:
        rf = r.rec
        if not rf.t0_s:
            continue
        t0, t1 = rf.array("t0_s"), rf.array("t1_s")
        e = rf.array("energy_j")
        dur = t1 - t0
        busy_gpu_j += float(e.sum())
        prefill_j += float(rf.array("prefill_j").sum())
        busy_gpu_s += float(dur.sum()) * r.tp
        win_gpu_j += _clip_sum(t0, t1, e, w0, w1) + idle_w * r.tp * (
            win - _clip_sum(t0, t1, dur, w0, w1))
        win_tokens += _clip_sum(t0, t1, rf.array("tokens_out"), w0, w1)
        win_batch_s += _clip_sum(t0, t1, rf.array("batch") * dur, w0, w1)
        win_busy_s += _clip_sum(t0, t1, dur, w0, w1)
        win_kv += _clip_sum(t0, t1, rf.array("kv_tokens") * dur, w0, w1)
    unused_gpus = n_gpus - len(fleet.replicas) * fleet.tp
    win_gpu_j += idle_w * unused_gpus * win * (0 if not fleet.replicas else 1)
    idle_gpu_j = idle_w * (n_gpus * end - busy_gpu_s)
    energy_gpu_j = busy_gpu_j + idle_gpu_j
    host_busy_per_gpu = sc.facility.host_active_w / fleet.gpus_per_node
    energy_host_j = sc.facility.host_idle_w * fleet.nodes * end + host_busy_per_gpu * busy_gpu_s
    win_host_j = sc.facility.host_idle_w * fleet.nodes * win
    for r in fleet.replicas:
        if r.rec.t0_s:
            t0, t1 = r.rec.array("t0_s"), r.rec.array("t1_s")
            win_host_j += host_busy_per_gpu * r.tp * _clip_sum(t0, t1, t1 - t0, w0, w1)
    energy_it_j = energy_gpu_j + energy_host_j
    # ---- peak node power
    node_peak = max((float(node_timeline(res, i)["node_power_w_peak"].max())
                     for i in range(fleet.nodes)), default=0.0)
    # ---- requests
    m = df[~df["warmup"]]
    done = m[m["state"] == "completed"]
    in_win = done[(done["finish_s"] >= w0) & (done["finish_s"] <= w1)]
    itl = weighted_itl_quantiles([r.rec for r in fleet.replicas], w0, [0.5, 0.9, 0.99])
    wh = done["energy_facility_wh"].to_numpy()
    s: dict[str, Any] = {
        "schema_version": 1,
        "scenario": sc.name,
        "model": sc.model_shape().name,
        "nodes": fleet.nodes, "gpus": n_gpus, "tp": fleet.tp, "replicas": len(fleet.replicas),
        "calibration_version": res.calibration.version,
        "simulated_time_s": end,
        "window_start_s": w0, "window_end_s": w1,
        "requests_arrived": int(len(df)),
        "requests_completed": int((df["state"] == "completed").sum()),
        "requests_dropped": int((df["state"] == "dropped").sum()),
        "requests_in_flight": int((df["state"] == "in_flight").sum()),
        "requests_measured": int(len(m)),
        "preemptions": int(sum(r.preemptions for r in fleet.replicas)),
        "throughput_requests_per_s": len(in_win) / win,
        "throughput_output_tokens_per_s": win_tokens / win,
        "ttft_s_p50": _pct(done["ttft_s"].to_numpy(), 50),
        "ttft_s_p90": _pct(done["ttft_s"].to_numpy(), 90),
        "ttft_s_p99": _pct(done["ttft_s"].to_numpy(), 99),
        "tpot_s_p50": _pct(done["tpot_s"].to_numpy(), 50),
        "tpot_s_p99": _pct(done["tpot_s"].to_numpy(), 99),
        "itl_s_p50": itl[0], "itl_s_p90": itl[1], "itl_s_p99": itl[2],
        "e2e_s_p50": _pct(done["e2e_s"].to_numpy(), 50),
        "e2e_s_p99": _pct(done["e2e_s"].to_numpy(), 99),
        "queue_s_p50": _pct(done["queue_s"].to_numpy(), 50),
        "queue_s_p99": _pct(done["queue_s"].to_numpy(), 99),
        "mean_batch_size": win_batch_s / win_busy_s if win_busy_s > 0 else 0.0,
        "kv_utilisation_mean": (win_kv / win_busy_s / fleet.memory.kv_tokens) if win_busy_s > 0 else 0.0,
        "kv_capacity_tokens_per_replica": fleet.memory.kv_tokens,
        "gpu_busy_fraction": win_busy_s * fleet.tp / (win * n_gpus),
        "gpu_power_w_mean": win_gpu_j / (win * n_gpus),
        "node_power_w_mean": (win_gpu_j + win_host_j) / (win * fleet.nodes),
        "node_power_w_peak": node_peak,
        "energy_gpu_j": energy_gpu_j,
        "energy_gpu_prefill_j": prefill_j,
        "energy_gpu_decode_j": busy_gpu_j - prefill_j,
        "energy_gpu_idle_j": idle_gpu_j,
        "energy_host_j": energy_host_j,
        "energy_it_j": energy_it_j,
        "energy_facility_j": energy_it_j * pue,
        "energy_per_query_wh_mean": float(wh.mean()) if wh.size else float("nan"),
        "energy_per_query_wh_p50": _pct(wh, 50),
        "energy_per_query_wh_p25": _pct(wh, 25),
        "energy_per_query_wh_p75": _pct(wh, 75),
        "energy_per_output_token_j": win_gpu_j / win_tokens if win_tokens > 0 else float("nan"),
        "slo_attainment": {},
        "classes": {},
    }
    for name in res.class_names:
        c = m[m["class"] == name]
        cd = c[c["state"] == "completed"]
        considered = c[c["state"] != "in_flight"]
        cwh = cd["energy_facility_wh"].to_numpy()
        att = float(considered["slo_met"].mean()) if len(considered) else float("nan")
        s["slo_attainment"][name] = att
        s["classes"][name] = {
            "requests_completed": int(len(cd)),
            "requests_dropped": int((c["state"] == "dropped").sum()),
            "slo_attainment": att,
            "ttft_s_p50": _pct(cd["ttft_s"].to_numpy(), 50),
            "ttft_s_p99": _pct(cd["ttft_s"].to_numpy(), 99),
            "tpot_s_p50": _pct(cd["tpot_s"].to_numpy(), 50),
            "tpot_s_p99": _pct(cd["tpot_s"].to_numpy(), 99),
            "e2e_s_p50": _pct(cd["e2e_s"].to_numpy(), 50),
            "energy_per_query_wh_mean": float(cwh.mean()) if cwh.size else float("nan"),
            "energy_per_query_wh_p25": _pct(cwh, 25),
            "energy_per_query_wh_p50": _pct(cwh, 50),
            "energy_per_query_wh_p75": _pct(cwh, 75),
        }
    return s
