"""Metrics of a run: the per-request table and ``summary.json``.

Definitions (all exclude warm-up requests; windowed quantities use the steady-state window
``[window_start_s, window_end_s]``: end of warm-up to the last arrival):

* ttft_s = first token time - arrival; e2e_s = finish - arrival; queue_s = first scheduled -
  arrival; tpot_s = (e2e - ttft) / (output tokens - 1) (0 for one-token outputs).
* itl_s_*: quantiles over every generated token after the first of the gap since the previous
  token of the same request (exact: computed from the iteration durations).
* energy_*_j: exact integrals over the whole run [0, simulated_time_s] of piecewise-constant
  power (the engine's :class:`~simulator.engine.ledger.Ledger`); GPU idle power fills every
  interval a GPU has no work.
* throughput_requests_per_s: measured requests completed / (last measured completion -
  window_start_s), as serving benchmarks report it (vLLM's benchmark_serving: completed /
  duration up to the last completion): the drain counts, so a short overloaded run reports
  its service rate, not 0. At a load the fleet sustains it tends to the offered rate as runs
  get longer (the drain tail weighs less); above capacity, to the capacity.
  offered_requests_per_s: measured arrivals / window length. throughput_output_tokens_per_s
  stays output tokens generated inside the window / window length.
* facility_power_w_mean: the fleet's mean facility power over the window (IT x PUE), W;
  energy_facility_wh_per_day: that power held for 24 h, Wh/day (energy per day at the
  simulated load, steady state: no start-up or drain tail).
* energy_per_output_token_j: GPU energy / output tokens, inside the window (what GPU-metered
  benchmarks report). energy_per_query_wh_*: facility energy (GPU + host busy share, times PUE)
  attributed to each query by the tokens it had in each iteration.
* ``pools``: the same power, energy, batch and KV figures per pool of the fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from simulator.engine.control import Controller
from simulator.engine.fleet import Pool
from simulator.engine.ledger import Window
from simulator.engine.run import EngineRun
from simulator.metrics.requests import (COMPLETED, DROPPED_CODE, IN_FLIGHT, J_PER_WH,
                                        STATE_CATEGORIES, RequestTable, request_table)
from simulator.result import RunResult

__all__ = ["collect", "summarise", "request_table", "measurement_window", "STATE_CATEGORIES"]
SECONDS_PER_DAY = 86400.0


def measurement_window(run: EngineRun, table: RequestTable) -> tuple[float, float]:
    """Steady-state window: from the end of warm-up to the last arrival (or the duration)."""
    spec = run.scenario.simulation
    measured = table["arrival_s"][~table["warmup"]]
    w0 = float(measured.min()) if measured.size else 0.0
    w0 = max(w0, spec.warmup_s)
    w1 = run.last_arrival_s if spec.drain else float(spec.duration_s or run.end_s)
    if w1 <= w0:
        w1 = run.end_s
    return w0, max(w1, w0)


def collect(run: EngineRun, controllers: Sequence[Controller] = (),
            summary: bool = True) -> RunResult:
    """The run's result: request table, window, ``summary.json`` (with each controller's
    part under its name; ``summary=False`` leaves it empty, for callers that measure the
    run themselves, as a projection's levels do)."""
    table = request_table(run)
    res = RunResult(run.scenario, run.fleet, run.ledger, table, run.end_s,
                    measurement_window(run, table), list(run.workload.class_names),
                    controllers={c.name: c for c in controllers})
    if run.mover is not None:
        from simulator.metrics.transfer import add_phase_columns, transfer_columns

        res.transfers = transfer_columns(run.mover.rows)
        add_phase_columns(table, res.transfers)
    if not summary:
        return res
    res.summary = summarise(res)
    from simulator.metrics.boundaries import run_boundaries

    res.summary["energy_boundaries"] = run_boundaries(res.summary, table)
    if run.scenario.cost is not None:
        from simulator.metrics.cost import run_cost

        res.summary["cost"] = run_cost(run.scenario.cost, res.summary,
                                       [(p.nodes, p.gpus // p.nodes) for p in run.fleet.pools])
    for c in controllers:
        part = c.summary(run.ledger)
        if part is not None:
            res.summary[c.name] = part
    return res


#: up to this many iterations the ITL quantiles are found by sorting every iteration's latency;
#: above, by the exact selection on closed-form counts (memory per piece, not per iteration)
MATERIALISE_MAX_ITERATIONS = 2_000_000


def _itl_pieces(rec_list, t_from_s: float) -> tuple[np.ndarray, ...] | None:
    """The ITL pieces ``(a, b, k, w)`` of the iterations that start at or after ``t_from_s``
    (a piece's iteration j lasts ``a + b j`` and gives ``w`` tokens that latency)."""
    a = np.concatenate([r.array("itl_a") for r in rec_list]) if rec_list else np.zeros(0)
    if a.size == 0:
        return None
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
    return (a, b, k, w) if a.size else None


def weighted_itl_quantiles(rec_list, t_from_s: float, qs: list[float]) -> list[float]:
    """Exact quantiles of inter-token latency from arithmetic-progression pieces.

    The q-quantile is the smallest latency x such that the tokens with ITL <= x weigh at least
    q of all. Up to ``MATERIALISE_MAX_ITERATIONS`` iterations, every iteration's latency is
    materialised and sorted; beyond, :func:`_select_itl` finds the same value from
    closed-form counts (a test checks that both agree)."""
    pieces = _itl_pieces(rec_list, t_from_s)
    if pieces is None:
        return [float("nan")] * len(qs)
    a, b, k, w = pieces
    if int(k.sum()) <= MATERIALISE_MAX_ITERATIONS:
        return _sorted_itl(a, b, k, w, qs)
    return _select_itl(a, b, k, w, qs)


def _sorted_itl(a, b, k, w, qs: list[float]) -> list[float]:
    """Every iteration's latency, sorted, with cumulative token weights (integers: exact)."""
    total = float((k * w).sum())
    n_iter = int(k.sum())
    kk = k.astype(np.int64)
    piece = np.repeat(np.arange(a.size), kk)
    j = np.arange(n_iter) - np.repeat(np.cumsum(kk) - kk, kk)
    vals = a[piece] + b[piece] * j
    order = np.argsort(vals, kind="stable")
    cw = np.cumsum(w[piece][order])
    pos = np.minimum(np.searchsorted(cw, np.asarray(qs) * total, side="left"), n_iter - 1)
    return [float(v) for v in vals[order[pos]]]


def _select_itl(a, b, k, w, qs: list[float]) -> list[float]:
    """:func:`_sorted_itl`'s values without materialising the iterations: the smallest latency
    whose count of tokens at or below it reaches q of all, by bisection on counts that are
    exact (each piece's iterations at or below x, rounding corrected on the values
    ``a + b j`` themselves), then snapped to that latency itself."""
    total = float((k * w).sum())
    const = (b == 0) | (k == 1)  # a piece whose iterations all last a
    ca = a[const]
    corder = np.argsort(ca, kind="stable")
    ca = ca[corder]
    ccum = np.cumsum((k * w)[const][corder])
    pa, pb, pk, pw = a[~const], b[~const], k[~const], w[~const]

    def n_at_or_below(x: float) -> np.ndarray:
        """Per progression piece, iterations j < k with a + b j <= x."""
        j = np.floor((x - pa) / pb)
        j = np.where(pa + pb * (j + 1) <= x, j + 1, j)  # floor rounded down a step
        j = np.where(pa + pb * j > x, j - 1, j)         # ... or up
        return np.clip(j + 1, 0, pk)

    def count(x: float) -> float:
        i = int(np.searchsorted(ca, x, side="right"))
        c = float(ccum[i - 1]) if i else 0.0
        if pa.size:
            c += float((n_at_or_below(x) * pw).sum())
        return c

    def next_above(x: float) -> float:
        """The smallest latency of any iteration above x (inf when none)."""
        i = int(np.searchsorted(ca, x, side="right"))
        best = float(ca[i]) if i < ca.size else np.inf
        if pa.size:
            j = n_at_or_below(x)  # the first iteration above x, per piece
            ok = j < pk
            if ok.any():
                best = min(best, float((pa[ok] + pb[ok] * j[ok]).min()))
        return best

    lo0 = np.nextafter(float(a.min()), -np.inf)
    out = []
    for q in qs:
        target = q * total
        lo, hi = lo0, float((a + b * (k - 1)).max())  # count(lo) < target <= count(hi)
        while True:
            s = next_above(lo)
            if count(s) >= target:
                out.append(s)
                break
            lo = s  # s is below the quantile: so is everything up to it
            mid = 0.5 * (lo + hi)
            if lo < mid < hi:
                if count(mid) >= target:
                    hi = mid
                else:
                    lo = mid
    return out


def _pct(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.percentile(x, q)) if x.size else float("nan")


def completion_rate_per_s(finish_s: np.ndarray, w0: float) -> float:
    """Measured completions per second: completed measured requests / (last completion - w0)
    (0 when none completed); ``finish_s``: their completion times."""
    if not finish_s.size:
        return 0.0
    span = float(finish_s.max()) - w0
    return finish_s.size / span if span > 0 else float("nan")


def _power_figures(w: Window, peak_w: float) -> dict[str, float]:
    """Power, energy, batch and KV figures of a window (a pool's or the fleet's)."""
    win = max(w.duration_s, 1e-12)
    return {
        "mean_batch_size": w.batch_s / w.replica_busy_s if w.replica_busy_s > 0 else 0.0,
        "kv_utilisation_mean": w.kv_fraction_s / w.replica_busy_s if w.replica_busy_s > 0 else 0.0,
        "gpu_busy_fraction": w.busy_gpu_s / (win * w.gpus),
        "gpu_power_w_mean": w.gpu_j / (win * w.gpus),
        "node_power_w_mean": w.it_j / (win * w.nodes),
        "node_power_w_peak": peak_w,
    }


def _energy_figures(total: Window, pue: float) -> dict[str, float]:
    """Whole-run energy by part, J."""
    return {
        "energy_gpu_j": total.gpu_j,
        "energy_gpu_prefill_j": total.prefill_gpu_j,
        "energy_gpu_decode_j": total.decode_gpu_j,
        "energy_gpu_idle_j": total.idle_gpu_j,
        "energy_host_j": total.host_j,
        "energy_it_j": total.it_j,
        "energy_facility_j": total.it_j * pue,
    }


def _pool_summary(res: RunResult, pool: Pool, w0: float, w1: float, pue: float) -> dict[str, Any]:
    led = res.ledger
    w = led.window(w0, w1, pool)
    total = led.window(pool=pool)
    win = max(w1 - w0, 1e-12)
    t = res.table
    mine = np.isin(t["replica"], np.array([r.index for r in pool.replicas]))
    completed = mine & (t["state"] == COMPLETED)
    done = completed & ~t["warmup"]
    return {
        "model": pool.spec.model_shape().name, "gpu": pool.profile.name,
        "nodes": pool.nodes, "gpus": pool.gpus, "tp": pool.tp, "replicas": len(pool.replicas),
        "kv_capacity_tokens_per_replica": pool.kv.capacity_tokens,
        "memory": pool.memory.as_gib(),
        "requests_completed": int(completed.sum()),
        "throughput_requests_per_s": completion_rate_per_s(t["finish_s"][done], w0),
        "throughput_output_tokens_per_s": w.tokens_out / win,
        **_power_figures(w, led.peak_node_power_w(pool)),
        **_energy_figures(total, pue),
        "energy_per_output_token_j": w.gpu_j / w.tokens_out if w.tokens_out > 0 else float("nan"),
    }


def _warnings(sc: Any, t: RequestTable, measured: np.ndarray, done: np.ndarray) -> list[str]:
    """Why figures of the summary are null (they are never null silently); ``measured`` and
    ``done`` are masks of the table's rows."""
    if len(t) == 0:
        return ["no request arrived: latency, throughput and energy-per-query figures are null"]
    n_measured = int(measured.sum())
    if n_measured == 0:
        sim = sc.simulation
        return [f"every one of the {len(t)} requests arrived during the warm-up"
                f" (simulation.warmup_s = {sim.warmup_s:g} s, warmup_requests ="
                f" {sim.warmup_requests}): latency and energy-per-query figures are null"]
    if not done.any():
        dropped = int((measured & (t["state"] == DROPPED_CODE)).sum())
        if dropped == n_measured:
            limit = min(p.serving.max_model_len for p in sc.pool_specs())
            return [f"every measured request was dropped (prompt + output longer than"
                    f" serving.max_model_len = {limit} tokens): latency and energy-per-query"
                    " figures are null"]
        return ["no measured request completed (they were still in flight when the run"
                " stopped): latency and energy-per-query figures are null"]
    return []


def summarise(res: RunResult) -> dict[str, Any]:
    sc, fleet, t, led = res.scenario, res.fleet, res.table, res.ledger
    w0, w1 = res.window_s
    win = max(w1 - w0, 1e-12)
    pue = sc.facility.pue
    pools = fleet.pools
    w = led.window(w0, w1)
    total = led.window()
    # ---- requests (masks over the table's rows, in request order)
    state = t["state"]
    m = ~t["warmup"]
    done = m & (state == COMPLETED)
    itl = weighted_itl_quantiles([r.rec for r in fleet.replicas], w0, [0.5, 0.9, 0.99])
    wh = t["energy_facility_wh"][done]
    ttft, tpot, e2e, queue = (t[k][done] for k in ("ttft_s", "tpot_s", "e2e_s", "queue_s"))
    one = len(pools) == 1
    models = list(dict.fromkeys(p.spec.model_shape().name for p in pools))
    cal_versions = list(dict.fromkeys(p.calibration.version for p in pools))
    n_measured = int(m.sum())
    s: dict[str, Any] = {
        "schema_version": 1,
        "scenario": sc.name,
        "model": " + ".join(models),
        "nodes": fleet.nodes, "gpus": fleet.gpus, "tp": pools[0].tp if one else None,
        "replicas": len(fleet.replicas),
        "calibration_version": " + ".join(cal_versions),
        "simulated_time_s": res.end_s,
        "window_start_s": w0, "window_end_s": w1,
        "requests_arrived": len(t),
        "requests_completed": int((state == COMPLETED).sum()),
        "requests_dropped": int((state == DROPPED_CODE).sum()),
        "requests_in_flight": int((state == IN_FLIGHT).sum()),
        "requests_measured": n_measured,
        "preemptions": int(sum(r.preemptions for r in fleet.replicas)),
        "offered_requests_per_s": n_measured / win,
        "throughput_requests_per_s": completion_rate_per_s(t["finish_s"][done], w0),
        "throughput_output_tokens_per_s": w.tokens_out / win,
        "ttft_s_p50": _pct(ttft, 50),
        "ttft_s_p90": _pct(ttft, 90),
        "ttft_s_p99": _pct(ttft, 99),
        "tpot_s_p50": _pct(tpot, 50),
        "tpot_s_p99": _pct(tpot, 99),
        "itl_s_p50": itl[0], "itl_s_p90": itl[1], "itl_s_p99": itl[2],
        "e2e_s_p50": _pct(e2e, 50),
        "e2e_s_p99": _pct(e2e, 99),
        "queue_s_p50": _pct(queue, 50),
        "queue_s_p99": _pct(queue, 99),
        "kv_capacity_tokens_per_replica": pools[0].kv.capacity_tokens if one else None,
        "memory": pools[0].memory.as_gib() if one else None,
        **_power_figures(w, led.peak_node_power_w()),
        **_energy_figures(total, pue),
        "pue": pue,
        "facility_power_w_mean": w.it_j / win * pue,
        "energy_facility_wh_per_day": w.it_j / win * pue * SECONDS_PER_DAY / J_PER_WH,
        "energy_per_query_wh_mean": float(wh.mean()) if wh.size else float("nan"),
        "energy_per_query_wh_p50": _pct(wh, 50),
        "energy_per_query_wh_p25": _pct(wh, 25),
        "energy_per_query_wh_p75": _pct(wh, 75),
        "energy_per_output_token_j": w.gpu_j / w.tokens_out if w.tokens_out > 0 else float("nan"),
        "slo_attainment": {},
        "classes": {},
        "pools": {p.name: _pool_summary(res, p, w0, w1, pue) for p in pools},
    }
    if res.transfers is not None:
        from simulator.metrics.transfer import transfer_summary

        s["kv_transfer"] = transfer_summary(res.transfers, t, done)
        for p in pools:
            s["pools"][p.name]["role"] = p.role
            if p.role == "prefill":
                src = np.isin(res.transfers["src_replica"], [r.index for r in p.replicas])
                s["pools"][p.name]["requests_prefilled"] = int(src.sum())
    warnings = _warnings(sc, t, m, done)
    if warnings:
        s["warnings"] = warnings
    cls = t["class"]
    slo_met = t["slo_met"]
    for i, name in enumerate(res.class_names):
        c = m & (cls == i)
        cd = c & (state == COMPLETED)
        considered = c & (state != IN_FLIGHT)
        cwh = t["energy_facility_wh"][cd]
        n_considered = int(considered.sum())
        att = float(slo_met[considered].mean()) if n_considered else float("nan")
        s["slo_attainment"][name] = att
        s["classes"][name] = {
            "requests_completed": int(cd.sum()),
            "requests_dropped": int((c & (state == DROPPED_CODE)).sum()),
            "slo_attainment": att,
            "ttft_s_p50": _pct(t["ttft_s"][cd], 50),
            "ttft_s_p99": _pct(t["ttft_s"][cd], 99),
            "tpot_s_p50": _pct(t["tpot_s"][cd], 50),
            "tpot_s_p99": _pct(t["tpot_s"][cd], 99),
            "e2e_s_p50": _pct(t["e2e_s"][cd], 50),
            "energy_per_query_wh_mean": float(cwh.mean()) if cwh.size else float("nan"),
            "energy_per_query_wh_p25": _pct(cwh, 25),
            "energy_per_query_wh_p50": _pct(cwh, 50),
            "energy_per_query_wh_p75": _pct(cwh, 75),
        }
    return s
