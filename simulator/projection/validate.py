"""The sampling-error check: the same day with every node simulated.

:func:`full_fleet_day` takes a projection's plan (nodes on and per-node rate per hour) and, for
every distinct per-node rate (no sharing between hours, no first-order moves), simulates the
whole fleet that is on — ``N_h`` nodes behind the scenario's router at ``N_h x rate`` — for
``requests_per_node x N_h`` measured arrivals, then integrates the day exactly as the
projection does. The difference from the sampled projection is the sampling error (a few
nodes standing for ``N_h``, hours sharing a level); ``tests/projection`` and
``benchmarks/bench_projection.py`` check it on 64 nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.projection.day import HOURS, J_PER_GWH, Facility, integrate_day
from simulator.projection.project import Projection, _seed
from simulator.projection.sample import (LevelJob, auto_warmup_s, idle_level, level_calibration,
                                         run_level, trace_rate_per_s)


@dataclass
class Comparison:
    sampled_gwh: float
    full_gwh: float
    simulations: int

    @property
    def relative_error(self) -> float:
        return self.sampled_gwh / self.full_gwh - 1.0


def full_fleet_day(proj: Projection, requests_per_node: int, seed: int = 12345) -> Comparison:
    """Facility energy of ``proj``'s nominal day with every node on simulated (see module)."""
    sc = proj.scenario
    p = sc.projection
    assert p is not None
    plan = proj.plan
    cal = level_calibration(sc)
    warmup_s = p.sample.warmup_s if p.sample.warmup_s is not None else auto_warmup_s(sc)
    trace_rate = trace_rate_per_s(sc) if sc.workload.arrival == "replay" else None
    classes = list(sc.workload.classes)
    gpn = sc.pool_specs()[0].gpus_per_node
    host = sc.pool_specs()[0].host(sc.facility, cal.power.idle_w)
    fac = Facility(sc.facility.pue, host.idle_w, host.load_factor)
    cache: dict[tuple[int, float], dict[str, float]] = {}
    hourly = []
    for h in range(HOURS):
        n, rate = int(plan.nodes_on[h]), float(plan.rate_per_node[h])
        key = (n, round(rate, 12))
        if key not in cache:
            if rate <= 0:
                lv = idle_level(gpn, cal.power.idle_w, classes)
            else:
                lv = run_level(LevelJob(sc, rate, n,
                                        requests_per_node * n, warmup_s, _seed(seed, len(cache)),
                                        keep_requests=False, trace_rate=trace_rate,
                                        fleet_rate=float(plan.fleet_rate_per_s.max())))
            cache[key] = lv.node_power(host)
        hourly.append(cache[key])
    warm = p.idle.warmup_s if p.idle.policy == "autoscale" else 0.0
    tot, _ = integrate_day(plan, hourly, fac, warm, gpn * cal.power.idle_w,
                           p.carbon.hourly() if p.carbon else None)
    return Comparison(proj.summary["gwh_per_day_facility_nominal"],
                      tot["energy_facility_j"] / J_PER_GWH,
                      sum(1 for k in cache if k[1] > 0))


def distinct_rates(proj: Projection) -> int:
    return len(np.unique(np.round(proj.plan.rate_per_node[proj.plan.rate_per_node > 0], 12)))
