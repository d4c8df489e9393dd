"""A fleet-day of several pools behind one router (e.g. H100 nodes kept, B200 nodes added).

Pools of different GPU types (or models, parallelism) serve one query stream. Behind a router
that balances load, each pool is statistically many copies of a few of its own nodes, so the
projection (:func:`simulator.projection.project.project_pools`) runs pool by pool (a one-pool
projection each) at the share of each hour's queries the split gives it, then adds the pools
up; this module holds its pure parts (sizing, the split, the one-pool scenarios, the sum):

1. **capacity**: every pool's per-node capacity at the SLO (the projection's search, on the
   pool's sampled nodes, its own stream);
2. **size**: pools with a given node count keep it; the one ``auto`` pool (if any) gets the
   smallest count with ``sum(nodes x capacity) >= headroom x peak rate``; without an auto pool
   the given pools must serve the peak (else an error names the nodes that would);
3. **split** of hour h's rate ``Q_h``: ``capacity`` gives pool p the share
   ``N_p c_p / sum(N c)`` every hour (a router that balances by capacity leaves every pool
   equally loaded); a fill order gives each pool in turn up to ``N_p c_p / headroom`` and the
   last one the rest (the first pools run fuller, the later ones idle or, with the autoscaler,
   switch off first);
4. each pool's day is projected with its nodes and its hourly rates (its own calibration,
   host model and Monte Carlo residuals; the draws share one seed, so draw i of every pool is
   the same draw of the shared inputs: PUE, host factors, length scales), and the fleet's day is
   the sum, hour by hour and draw by draw.

``summary.json`` has the fleet's figures under the usual keys and each pool's under
``pools.<name>`` (nodes, capacity, share of queries, energy with its band, J per output token,
Wh per query by class).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import ScenarioError
from simulator.projection.day import HOURS, J_PER_GWH, SECONDS_PER_HOUR, DayPlan
from simulator.projection.stats import energy_keys
from simulator.projection.stats import pct as _pct
from simulator.projection.stats import per_token as _per_token
from simulator.projection.stats import weighted_quantiles as _weighted_quantiles
from simulator.scenario.schema import PoolSpec, Scenario
from simulator.strict import replace


def pool_scenario(sc: Scenario, pool: PoolSpec, nodes: int | str, queries_per_day: float,
                  curve: list[float] | np.ndarray) -> Scenario:
    """The one-pool scenario of ``pool`` with its own nodes, daily volume and hourly curve."""
    p = sc.projection
    assert p is not None
    dep = replace(pool.deployment, nodes=nodes if isinstance(nodes, int) else 1)
    proj = replace(p, fleet=replace(p.fleet, nodes=nodes, split="capacity"),
                   queries_per_day=float(queries_per_day),
                   hourly_multipliers=[float(x) for x in curve], curve_trace=None)
    return sc.derive(pools=[replace(pool, deployment=dep)], projection=proj)


def size_pools(nodes: dict[str, int | str], caps: dict[str, float], q_peak: float,
               headroom: float, file: str | None = None) -> dict[str, int]:
    """Nodes of every pool: the given ones, and the auto pool's smallest count such that the
    fleet's capacity covers ``headroom x q_peak`` (0 when the given pools already do)."""
    fixed = {n: int(v) for n, v in nodes.items() if v != "auto"}
    have = sum(fixed[n] * caps[n] for n in fixed)
    autos = [n for n, v in nodes.items() if v == "auto"]
    out = dict(fixed)
    for a in autos:
        out[a] = max(0, math.ceil((headroom * q_peak - have) / caps[a] - 1e-9))
    if not autos and have < q_peak:
        short = {n: math.ceil((q_peak - have) / caps[n]) for n in fixed}
        hint = ", ".join(f"{k}: +{v}" for k, v in short.items())
        raise ScenarioError(
            f"the pools serve {have:.4g} queries/s at the SLO, less than the peak hour's"
            f" {q_peak:.4g}: add nodes ({hint} would each do) or make one pool 'auto'",
            file=file, field="projection.fleet.nodes")
    return {n: out[n] for n in nodes}


def split_hours(q: np.ndarray, order: list[str], sizes: dict[str, int], caps: dict[str, float],
                split: str | list[str], headroom: float) -> dict[str, np.ndarray]:
    """Queries/s of every pool in every hour (the pools' rates add up to ``q``)."""
    active = [n for n in order if sizes[n] > 0]
    if split == "capacity":
        total = sum(sizes[n] * caps[n] for n in active)
        return {n: (q * sizes[n] * caps[n] / total if n in active else np.zeros_like(q))
                for n in order}
    out = {n: np.zeros_like(q) for n in order}
    rest = q.astype(float).copy()
    fill = [n for n in split if n in active]
    for i, n in enumerate(fill):
        take = rest if i == len(fill) - 1 else np.minimum(rest, sizes[n] * caps[n] / headroom)
        out[n] = take
        rest = rest - take
    return out


def combine(sc: Scenario, projs: dict[str, Any], sizes: dict[str, int],
            caps: dict[str, float], rates: dict[str, np.ndarray], q: np.ndarray, m: np.ndarray,
            curve_source: str, schema_version: int) -> dict[str, Any]:
    """The fleet's day from its pools' projections (``projs``: name -> Projection): hours and
    draws added up, the levels side by side, the summary; as the pieces of a Projection
    (``plan``, ``hourly``, ``levels``, ``draws``, ``summary``, ``hourly_draws``)."""

    p = sc.projection
    assert p is not None
    names = list(projs)
    first = projs[names[0]]
    # hours: energies and nodes add up; rates are the fleet's
    energy_cols = [c for c in first.hourly.columns if c.startswith("energy_")]
    hourly = pd.DataFrame({"hour": np.arange(HOURS), "multiplier": m, "queries_per_s": q})
    hourly["nodes_on"] = sum(projs[n].hourly["nodes_on"].to_numpy() for n in names)
    hourly["nodes_warming"] = sum(projs[n].hourly["nodes_warming"].to_numpy() for n in names)
    hourly["queries_per_s_per_node"] = q / hourly["nodes_on"].to_numpy()
    for c in energy_cols:
        hourly[c] = sum(projs[n].hourly[c].to_numpy() for n in names)
    hourly["it_power_w"] = hourly["energy_it_j"] / SECONDS_PER_HOUR
    hourly["facility_power_w"] = hourly["energy_facility_j"] / SECONDS_PER_HOUR
    for n in names:
        hourly[f"queries_per_s.{n}"] = rates[n]
        hourly[f"nodes_on.{n}"] = projs[n].hourly["nodes_on"].to_numpy()
    draws_h = [projs[n].hourly_draws for n in names]
    if all(d is not None for d in draws_h):
        hd = sum(draws_h)
        hourly["facility_power_w_p5"] = np.percentile(hd, 5, axis=0)
        hourly["facility_power_w_p95"] = np.percentile(hd, 95, axis=0)
    else:
        hd = None
        hourly["facility_power_w_p5"] = hourly["facility_power_w"]
        hourly["facility_power_w_p95"] = hourly["facility_power_w"]
    # draws: draw i of every pool shares the seeds of the shared inputs
    result_cols = ["gwh_per_day_facility", "gwh_per_day_it", "co2_t_per_day"]
    d0 = first.draws
    draws = pd.DataFrame({"draw": d0["draw"].to_numpy()})
    for c in ("pue", "input_length_scale", "output_length_scale"):
        if c in d0:
            draws[c] = d0[c].to_numpy()
    for n in names:
        for c in ("compute_time_factor", "memory_time_factor", "gpu_power_factor", "host_idle_w",
                  "host_load_factor"):
            if c in projs[n].draws:
                draws[f"{n}.{c}"] = projs[n].draws[c].to_numpy()
    for c in result_cols:
        draws[c] = sum(projs[n].draws[c].to_numpy() for n in names) if len(d0) else []
    draws["slo_attainment_min"] = (np.min([projs[n].draws["slo_attainment_min"].to_numpy()
                                           for n in names], axis=0) if len(d0) else [])
    levels = pd.concat([projs[n].levels.assign(pool=n) for n in names], ignore_index=True)
    tot = {c: float(hourly[c].sum()) for c in energy_cols}
    co2 = sum(projs[n].summary.get("tco2_per_day_nominal", math.nan) for n in names)
    classes = list(sc.workload.classes)
    queries = p.queries_per_day
    # energy per query: every pool's hours, each weighted by the queries it serves
    wq: dict[str, dict[str, float]] = {k: {} for k in ("p25", "p50", "p75", "iqr", "mean")}
    for c in classes:
        vals, wts = [], []
        for n in names:
            pr = projs[n]
            for h in range(HOURS):
                li = pr.plan.level_of_hour[h]
                if li < 0:
                    continue
                vals.append(pr.nominal_levels[li].request_energy_j.get(c, np.zeros(0))
                            * sc.facility.pue / 3600.0)
                wts.append(float(rates[n][h]))
        q25, q50, q75 = _weighted_quantiles(vals, wts, [0.25, 0.5, 0.75])
        means = [(a.mean(), w) for a, w in zip(vals, wts) if a.size]
        wq["p25"][c], wq["p50"][c], wq["p75"][c], wq["iqr"][c] = q25, q50, q75, q75 - q25
        wq["mean"][c] = (sum(a * w for a, w in means) / sum(w for _, w in means)) if means else math.nan
    share = {n: float(rates[n].sum() / q.sum()) for n in names}
    slo = {c: sum(share[n] * projs[n].summary["slo_attainment"][c] for n in names
                  if not math.isnan(projs[n].summary["slo_attainment"].get(c, math.nan)))
           for c in classes}

    def band(col: str, nominal: float) -> tuple[float, float, float]:
        if not len(draws):
            return nominal, nominal, nominal
        return _pct(draws[col], 5), _pct(draws[col], 50), _pct(draws[col], 95)

    g = lambda key: tot[key] / J_PER_GWH  # noqa: E731
    f5, f50, f95 = band("gwh_per_day_facility", g("energy_facility_j"))
    i5, i50, i95 = band("gwh_per_day_it", g("energy_it_j"))
    nodes_on = hourly["nodes_on"].to_numpy()
    gpus_on = sum(projs[n].hourly["nodes_on"].to_numpy() * projs[n].scenario.pool_specs()[0].gpus_per_node
                  for n in names)
    fleet_nodes = sum(sizes[n] for n in names)
    s0 = first.summary
    summary: dict[str, Any] = {
        "projection_schema_version": schema_version,
        "scenario": sc.name,
        "model": ", ".join(sorted({projs[n].summary["model"] for n in names})),
        "calibration_version": ", ".join(f"{n}: {projs[n].summary['calibration_version']}" for n in names),
        "queries_per_day": queries,
        "daily_curve": curve_source,
        "class_shares": s0["class_shares"],
        "gwh_per_day_facility_p5": f5, "gwh_per_day_facility_p50": f50,
        "gwh_per_day_facility_p95": f95,
        "gwh_per_day_it_p5": i5, "gwh_per_day_it_p50": i50, "gwh_per_day_it_p95": i95,
        **energy_keys(g),
        "wh_per_query_p50": wq["p50"], "wh_per_query_p25": wq["p25"],
        "wh_per_query_p75": wq["p75"], "wh_per_query_iqr": wq["iqr"],
        "wh_per_query_mean": wq["mean"],
        "wh_per_query_all_in": tot["energy_facility_j"] / 3600.0 / queries,
        **_per_token(sc, tot, queries),
        "nodes_fleet": fleet_nodes,
        "nodes_peak": int(nodes_on.max()),
        "nodes_mean": float(nodes_on.mean()),
        "nodes_min": int(nodes_on.min()),
        "gpus_peak": int(gpus_on.max()),
        "capacity_queries_per_s_per_node": (sum(sizes[n] * caps[n] for n in names) / fleet_nodes),
        "capacity_ci_queries_per_s_per_node": None,
        "peak_queries_per_s": float(q.max()),
        "facility_power_w_peak": float(hourly["facility_power_w"].max()),
        "facility_power_w_mean": float(hourly["facility_power_w"].mean()),
        "facility_power_w_peak_p5": float(hourly["facility_power_w_p5"].max()),
        "facility_power_w_peak_p95": float(hourly["facility_power_w_p95"].max()),
        "slo_target": p.fleet.slo_target,
        "slo_attainment": slo,
        "idle_policy": p.idle.policy,
        "hourly": {"nodes_on": [int(x) for x in nodes_on],
                   "facility_power_w": [float(x) for x in hourly["facility_power_w"]]},
        "uncertainty": {
            **{k: v for k, v in s0["uncertainty"].items()
               if k in ("draws", "inputs")},
            "slo_attainment_min_p5": _pct(draws["slo_attainment_min"], 5) if len(draws) else math.nan,
            "slo_attainment_min_worst": float(draws["slo_attainment_min"].min()) if len(draws) else math.nan,
            "draws_below_slo_target": int((draws["slo_attainment_min"] < p.fleet.slo_target).sum())
            if len(draws) else 0,
        },
        "sampling": {"nodes": p.sample.nodes, "requests_per_level": p.sample.requests,
                     "levels": int(sum(projs[n].summary["sampling"]["levels"] for n in names)),
                     "simulations": int(sum(projs[n].summary["sampling"]["simulations"]
                                            for n in names)),
                     "capacity_search_trials": int(sum(projs[n].summary["sampling"]
                                                       ["capacity_search_trials"] for n in names))},
        "fleet_split": p.fleet.split if isinstance(p.fleet.split, str) else list(p.fleet.split),
        "pools": {n: _pool_summary(projs[n], sizes[n], caps[n], share[n]) for n in names},
    }
    for n in (set(sizes) - set(names)):
        summary["pools"][n] = {"gpu": sc.pool_specs()[[x.name for x in sc.pool_specs()].index(n)].profile().name,
                               "nodes_fleet": 0, "capacity_queries_per_s_per_node": caps[n],
                               "share_of_queries": 0.0}
    if p.carbon is not None:
        c5, c50, c95 = band("co2_t_per_day", co2)
        summary.update({"tco2_per_day_p5": c5, "tco2_per_day_p50": c50, "tco2_per_day_p95": c95,
                        "tco2_per_day_nominal": co2})
    if sc.cost is not None:
        gpns = {projs[n].scenario.pool_specs()[0].gpus_per_node for n in names}
        if len(gpns) == 1:
            from simulator.metrics.cost import projection_cost
            from simulator.projection.sample import mean_output_tokens

            summary["cost"] = projection_cost(sc.cost, summary, list(hourly["energy_facility_j"]),
                                              gpns.pop(), mean_output_tokens(sc),
                                              list(draws["gwh_per_day_facility"]))
    plan = DayPlan(m, q, fleet_nodes, nodes_on.astype(int), q / nodes_on,
                   np.full(HOURS, -1), [], np.roll(hourly["nodes_warming"].to_numpy(), 1))
    return {"plan": plan, "hourly": hourly, "levels": levels, "draws": draws, "summary": summary,
            "hourly_draws": hd}


def _pool_summary(pr, nodes: int, cap: float, share: float) -> dict[str, Any]:
    s = pr.summary
    keys = ("nodes_peak", "nodes_mean", "gpus_peak", "capacity_ci_queries_per_s_per_node",
            "gwh_per_day_facility_nominal", "gwh_per_day_facility_p5", "gwh_per_day_facility_p50",
            "gwh_per_day_facility_p95", "gwh_per_day_gpu", "gwh_per_day_host",
            "facility_power_w_peak", "j_per_output_token_gpu", "j_per_output_token_facility",
            "wh_per_query_p50", "wh_per_query_mean", "slo_attainment")
    return {"gpu": pr.scenario.pool_specs()[0].profile().name, "nodes_fleet": nodes,
            "capacity_queries_per_s_per_node": cap, "share_of_queries": share,
            "queries_per_day": s["queries_per_day"], **{k: s[k] for k in keys if k in s}}
