"""``fleetsim size``: the smallest fleet that serves a load within every class's SLO.

It answers "how many nodes for this load at this SLO" with the projection's capacity search
(:func:`~simulator.projection.project.search_capacity`): the largest rate per *unit* whose
sampled simulation meets every class's SLO target. A unit is one node for a one-pool fleet
(``sample.nodes`` of them simulated together behind the router), or, with ``pools:``, the
pools as the scenario gives them (their ``deployment.nodes`` are the proportions kept; the
whole unit is simulated). Then

    units = ceil(headroom x rate / capacity per unit),   nodes per pool = units x its nodes.

The search runs ``replications`` times on independent random streams; the capacity is their
mean with a Student-t confidence interval (90 % by default), and the nodes' interval is the
size at either end of it. A last simulation at the chosen size, on a stream of its own, checks
the answer (``slo_attainment_at_size``).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.errors import ScenarioError
from simulator.projection.day import daily_curve, fleet_rate
from simulator.scenario.projection import SampleSpec
from simulator.scenario.schema import Scenario
from simulator.strict import replace

#: confidence level of the capacity interval
CONFIDENCE = 0.90
SECONDS_PER_DAY = 86400.0


def _seed(root: int, *key: int) -> int:
    return int(np.random.SeedSequence(root, spawn_key=key).generate_state(1)[0])


def unit_pools(sc: Scenario, sample_nodes: int) -> tuple[list[tuple[str, int]], int]:
    """[(pool, nodes in one unit)] and how many units are simulated together."""
    specs = sc.pool_specs()
    if len(specs) == 1:
        return [(specs[0].name, 1)], sample_nodes
    return [(p.name, p.deployment.nodes) for p in specs], 1


def unit_scenario(sc: Scenario, rate_per_unit: float, units: int, requests: int,
                  warmup_s: float, seed: int) -> Scenario:
    """``units`` units behind the router at ``rate_per_unit`` each, steady (no daily curve)."""
    wl = replace(sc.workload, hourly_multipliers=None, rate_per_s=rate_per_unit * units)
    warm = int(math.ceil(rate_per_unit * units * warmup_s))
    sim = replace(sc.simulation, requests=warm + requests, duration_s=None, warmup_s=warmup_s,
                  warmup_requests=0, drain=True, seed=int(seed))
    if sc.pools is None:
        fleet = {"deployment": replace(sc.deployment, nodes=units)}
    else:
        fleet = {"pools": [replace(p, deployment=replace(p.deployment, nodes=p.deployment.nodes * units))
                           for p in sc.pools]}
    return sc.derive(projection=None, workload=wl, simulation=sim, **fleet)


@dataclass(frozen=True)
class Trial:
    """One replication of the capacity search (picklable)."""

    scenario: Scenario
    units: int
    sample: SampleSpec
    warmup_s: float
    target: float
    tolerance: float
    seed: int
    start: float


def min_attainment(sc: Scenario, rate_per_unit: float, units: int, requests: int,
                   warmup_s: float, seed: int) -> float:
    """The worst class's SLO attainment of one sampled simulation."""
    from simulator.api import simulate

    from simulator.metrics.requests import IN_FLIGHT

    res = simulate(unit_scenario(sc, rate_per_unit, units, requests, warmup_s, seed),
                   summary=False)
    t = res.table
    keep = ~t["warmup"] & (t["state"] != IN_FLIGHT)
    cls, met = t["class"][keep], t["slo_met"][keep]
    att = [float(met[cls == c].mean()) for c in np.unique(cls)]
    return min(att) if att else math.nan


def requests_for(sc: Scenario, sample: SampleSpec, total_rate_per_s: float) -> int:
    """Measured arrivals of one trial: the projection's rule (enough of the rarest class and
    of the longest lifetimes) when the scenario has a projection section, else
    ``sample.requests``."""
    if sc.projection is None:
        return sample.requests
    from simulator.projection.sample import level_requests

    return level_requests(sc, total_rate_per_s)


def run_search(t: Trial) -> tuple[float, int]:
    """(capacity per unit, trials) of one replication. Top-level: process pools pickle it."""
    from simulator.projection.project import search_capacity

    n = [0]

    def ok(rate: float, short: bool = False) -> bool:
        n[0] += 1
        full = requests_for(t.scenario, t.sample, rate * t.units)
        a = min_attainment(t.scenario, rate, t.units, max(50, full // 4) if short else full,
                           t.warmup_s, t.seed)
        return a >= t.target
    cap = search_capacity(ok, t.start, t.tolerance, t.target, t.scenario.file)
    return cap, n[0]


def size(sc: Scenario, rate_per_s: float | None = None, queries_per_day: float | None = None,
         slo_target: float = 0.99, headroom: float = 1.0, replications: int = 3,
         tolerance: float = 0.02, workers: int = 1) -> dict[str, Any]:
    """The smallest fleet meeting every class's SLO at the load (see the module docstring).

    ``rate_per_s``: the fleet's queries/s to serve (the peak). ``queries_per_day``: a daily
    volume instead; its peak hour (the scenario's projection curve, else a flat day) is sized.
    """
    from scipy import stats

    from simulator.projection.sample import auto_warmup_s

    if (rate_per_s is None) == (queries_per_day is None):
        raise ScenarioError("give --rate or --queries-per-day (one of them)", field="size")
    if sc.workload.arrival not in ("poisson", "gamma"):
        raise ScenarioError(f"fleetsim size needs poisson or gamma arrivals (got"
                            f" {sc.workload.arrival!r}); size a replayed trace with"
                            " `fleetsim project`", file=sc.file, field="workload.arrival")
    curve = "flat (no curve given)"
    if queries_per_day is not None:
        if sc.projection is not None:
            m, curve = daily_curve(sc)
        else:
            m = np.ones(24)
        rate_per_s = float(fleet_rate(queries_per_day, m).max())
    assert rate_per_s is not None
    sample = sc.projection.sample if sc.projection is not None else SampleSpec()
    warmup_s = sample.warmup_s if sample.warmup_s is not None else auto_warmup_s(sc)
    pools, units_sim = unit_pools(sc, sample.nodes)
    trials = [Trial(sc, units_sim, sample, warmup_s, slo_target, tolerance,
                    _seed(sample.seed, 10**6, r), 1.0) for r in range(replications)]
    if workers > 1 and replications > 1:
        with ProcessPoolExecutor(max_workers=min(workers, replications)) as pool:
            found = list(pool.map(run_search, trials))
    else:
        found = [run_search(t) for t in trials]
    caps = np.array([c for c, _ in found])
    cap = float(caps.mean())
    if len(caps) > 1 and caps.std(ddof=1) > 0:
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(caps) - 1) * caps.std(ddof=1)
                     / math.sqrt(len(caps)))
    else:
        half = 0.0
    half = max(half, tolerance * cap / 2)  # never tighter than the search's own resolution
    cap_lo, cap_hi = max(cap - half, 1e-12), cap + half

    def units_for(c: float) -> int:
        return max(1, math.ceil(headroom * rate_per_s / c - 1e-9))
    units, units_lo, units_hi = units_for(cap), units_for(cap_hi), units_for(cap_lo)
    check = min_attainment(sc, rate_per_s / units, units_sim,
                           requests_for(sc, sample, rate_per_s / units * units_sim), warmup_s,
                           _seed(sample.seed, 0))
    per_unit_nodes = sum(n for _, n in pools)
    return {
        "size_schema_version": 1,
        "scenario": sc.name,
        "rate_per_s": rate_per_s,
        "queries_per_day": queries_per_day if queries_per_day is not None else rate_per_s * SECONDS_PER_DAY,
        "daily_curve": curve if queries_per_day is not None else None,
        "slo_target": slo_target,
        "headroom": headroom,
        "nodes": units * per_unit_nodes,
        "nodes_ci_low": units_lo * per_unit_nodes,
        "nodes_ci_high": units_hi * per_unit_nodes,
        "pools": {name: {"nodes": units * n, "nodes_ci_low": units_lo * n,
                         "nodes_ci_high": units_hi * n} for name, n in pools},
        "gpus": units * sum(n * p.gpus_per_node for (_, n), p in zip(pools, sc.pool_specs())),
        "capacity_queries_per_s_per_node": cap / per_unit_nodes,
        "capacity_ci_low": cap_lo / per_unit_nodes,
        "capacity_ci_high": cap_hi / per_unit_nodes,
        "capacity_replications": [float(c) / per_unit_nodes for c in caps],
        "confidence": CONFIDENCE,
        "slo_attainment_at_size": check,
        "sampling": {"nodes_per_trial": units_sim * per_unit_nodes, "requests": sample.requests,
                     "warmup_s": warmup_s, "replications": replications,
                     "trials": int(sum(n for _, n in found)) + 1, "tolerance": tolerance},
    }


def size_line(s: dict[str, Any]) -> str:
    """The one-line answer."""
    from simulator import units as u

    if len(s["pools"]) > 1:
        fleet = ", ".join(f"{k}: {v['nodes']:,} nodes ({v['nodes_ci_low']:,}-{v['nodes_ci_high']:,})"
                          for k, v in s["pools"].items())
    else:
        fleet = f"{s['nodes']:,} nodes ({s['confidence']:.0%} CI {s['nodes_ci_low']:,}-{s['nodes_ci_high']:,})"
    return (f"{s['scenario']}: {fleet} serve {s['rate_per_s']:.4g} queries/s"
            f" ({u.count(s['queries_per_day'])} queries/day) with every class >="
            f" {s['slo_target']:.0%} within SLO"
            + (f" and headroom {s['headroom']:g}" if s["headroom"] != 1 else "")
            + f"; capacity {s['capacity_queries_per_s_per_node']:.3g} queries/s per node"
            f" [{s['capacity_ci_low']:.3g}, {s['capacity_ci_high']:.3g}]; at that size the worst"
            f" class met it for {u.pct(s['slo_attainment_at_size'])}")
