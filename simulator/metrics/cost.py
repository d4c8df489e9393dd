"""Money from energy and nodes: the ``cost`` part of run and projection summaries.

Definitions (every price is the scenario's ``cost`` section, a user input):

* ``usd_per_day_hardware``: every node of the fleet paid all day — GPUs x ``gpu_hour_usd`` x
  24 h, or ``node_capital_usd / (amortisation_years x 365)`` per node.
* ``usd_per_day_electricity``: facility energy per day (IT x PUE) x the electricity price. A
  run's energy per day is its steady-state window held for 24 h (``energy_facility_wh_per_day``)
  at the mean of the prices; a projection integrates its 24 hours at each hour's price.
* ``usd_per_day`` = hardware + electricity.
* ``usd_per_million_output_tokens`` = ``usd_per_day`` / output tokens per day x 1e6.
* ``usd_per_1000_queries`` = ``usd_per_day`` / queries per day x 1000; by class, the day's
  cost is shared among classes in proportion to the facility energy attributed to their
  queries (``energy_per_query_wh_mean`` x queries), then divided by each class's queries.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.scenario.cost import CostSpec

SECONDS_PER_DAY = 86400.0
WH_PER_KWH = 1000.0


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _by_class(usd_per_day: float, queries_per_day: dict[str, float],
              wh_per_query: dict[str, float]) -> dict[str, float]:
    energy = {c: queries_per_day[c] * wh_per_query.get(c, math.nan) for c in queries_per_day}
    finite = {c: e for c, e in energy.items() if math.isfinite(e) and queries_per_day[c] > 0}
    total = sum(finite.values())
    out = {}
    for c, q in queries_per_day.items():
        if c in finite and total > 0:
            out[c] = usd_per_day * finite[c] / total / q * 1000.0
        else:
            out[c] = math.nan
    return out


def _parts(hardware: float | None, electricity: float | None) -> dict[str, float]:
    total = (hardware or 0.0) + (electricity or 0.0)
    return {"usd_per_day": total, "usd_per_day_hardware": _nan(hardware),
            "usd_per_day_electricity": _nan(electricity)}


def run_cost(spec: CostSpec, summary: dict[str, Any], pools: list[tuple[int, int]]) -> dict[str, Any]:
    """Cost of a run's fleet at its simulated load, held for a day. ``pools``: (nodes, GPUs
    per node) of each pool."""
    per_node = [spec.node_usd_per_day(gpn) for _, gpn in pools]
    hardware = None if per_node[0] is None else sum(n * u for (n, _), u in zip(pools, per_node))
    prices = spec.hourly_price_usd_per_kwh()
    electricity = None if prices is None else \
        summary["energy_facility_wh_per_day"] / WH_PER_KWH * float(np.mean(prices))
    out = _parts(hardware, electricity)
    usd = out["usd_per_day"]
    tokens = summary["throughput_output_tokens_per_s"] * SECONDS_PER_DAY
    queries = summary["throughput_requests_per_s"] * SECONDS_PER_DAY
    out["usd_per_million_output_tokens"] = usd / tokens * 1e6 if tokens > 0 else math.nan
    out["usd_per_1000_queries"] = usd / queries * 1000.0 if queries > 0 else math.nan
    done = {c: v["requests_completed"] for c, v in summary["classes"].items()}
    n = sum(done.values())
    q_class = {c: queries * d / n if n else 0.0 for c, d in done.items()}
    wh = {c: v["energy_per_query_wh_mean"] for c, v in summary["classes"].items()}
    out["usd_per_1000_queries_by_class"] = _by_class(usd, q_class, wh)
    return out


def projection_cost(spec: CostSpec, summary: dict[str, Any], hourly_facility_j: list[float],
                    gpus_per_node: int, mean_output_tokens: dict[str, float],
                    draws_gwh: list[float]) -> dict[str, Any]:
    """Cost of a projected fleet-day: hardware for the whole fleet, electricity hour by hour;
    P5/P50/P95 of ``usd_per_day`` over the Monte Carlo draws (each draw's facility energy at the
    nominal day's energy-weighted price)."""
    u = spec.node_usd_per_day(gpus_per_node)
    hardware = None if u is None else summary["nodes_fleet"] * u
    prices = spec.hourly_price_usd_per_kwh()
    e_kwh = np.asarray(hourly_facility_j, float) / 3.6e6
    electricity = None if prices is None else float((e_kwh * np.asarray(prices)).sum())
    out = _parts(hardware, electricity)
    usd = out["usd_per_day"]
    nominal_kwh = float(e_kwh.sum())
    price = electricity / nominal_kwh if electricity is not None and nominal_kwh > 0 else 0.0
    band = [(hardware or 0.0) + g * 1e6 * price for g in draws_gwh if math.isfinite(g)]
    if band:
        out["usd_per_day_p5"], out["usd_per_day_p50"], out["usd_per_day_p95"] = (
            float(np.percentile(band, q)) for q in (5, 50, 95))
    else:
        out["usd_per_day_p5"] = out["usd_per_day_p50"] = out["usd_per_day_p95"] = usd
    qpd = summary["queries_per_day"]
    shares = summary["class_shares"]
    tokens = qpd * sum(shares[c] * mean_output_tokens.get(c, math.nan) for c in shares)
    out["usd_per_million_output_tokens"] = usd / tokens * 1e6 if tokens > 0 else math.nan
    out["usd_per_1000_queries"] = usd / qpd * 1000.0
    q_class = {c: qpd * s for c, s in shares.items()}
    out["usd_per_1000_queries_by_class"] = _by_class(usd, q_class, summary["wh_per_query_mean"])
    return out
