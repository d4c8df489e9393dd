"""The analytical estimate against the simulator, on the bundled steady-state scenarios.

For each scenario (its deployment, serving and workload mix):

* **energy per query**: the estimate and a simulation at the scenario's own rate when the
  estimate puts it below 90 % of capacity, else at 70 % of the estimated capacity (a
  bundled ``fleetsim run`` that overloads its node never reaches a steady state), with
  ``requests`` requests of which a quarter warm up; the simulator's mean facility energy per
  query over the requests it saw whole at steady state (:func:`steady_energy_wh`: a finite
  run's drain, where its last requests run in ever smaller batches, adds up to 6 % to its
  ``energy_per_query_wh_mean`` on the long-output mixes);
* **capacity**: the estimate and the steady-state completion rate of a closed loop that
  keeps every replica's batch full (``max_batch_size`` clients per replica): completions
  inside the run's steady-state window over its length;
* **time**: CPU seconds of the estimate against those of the two simulations it stands in
  for (:func:`estimate_cpu_s`): as a point of a sweep (``fleetsim sweep --estimate`` keeps one
  :class:`~simulator.estimate.model.EstimateCache` per worker: this scenario's lengths and
  pool models known from another point, at another rate) and cold (a fresh cache: lengths
  sampled, models built); device profiles loaded in both, as in any process after its first.

``benchmarks/bench_estimate.py`` runs it and writes the table of ``docs/estimate.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from simulator.scenario.schema import Scenario

#: the bundled scenarios whose workload is a steady open loop (replay and row capping are not)
STEADY_SCENARIOS = ("default", "1b-chat", "1b-chat-10pct-long", "1b-efficient",
                    "power-cap-sweep", "sweep-power-cap", "sweep-tp-rate",
                    "sweep-mix-uncertainty", "sweep-projection", "disaggregated",
                    "1b-chat-disaggregated", "splitwise-llama2-70b")


@dataclass
class Check:
    scenario: str
    rate_per_s: float
    energy_wh_estimate: float
    energy_wh_simulated: float
    capacity_estimate: float
    capacity_simulated: float
    estimate_cpu_s: float       # as a sweep's point (see estimate_cpu_s)
    simulate_cpu_s: float
    estimate_cold_cpu_s: float  # with a fresh cache

    @property
    def cold_speedup(self) -> float:
        return self.simulate_cpu_s / self.estimate_cold_cpu_s

    @property
    def energy_error(self) -> float:
        return self.energy_wh_estimate / self.energy_wh_simulated - 1.0

    @property
    def capacity_error(self) -> float:
        return self.capacity_estimate / self.capacity_simulated - 1.0

    @property
    def speedup(self) -> float:
        return self.simulate_cpu_s / self.estimate_cpu_s


def steady(sc: Scenario, rate_per_s: float | None, requests: int) -> Scenario:
    """``sc`` as a steady open loop (its rate, or ``rate_per_s``) of ``requests`` requests."""
    from simulator.strict import replace

    wl = replace(sc.workload, hourly_multipliers=None,
                 **({"rate_per_s": rate_per_s} if rate_per_s is not None else {}))
    sim = replace(sc.simulation, requests=requests, warmup_requests=requests // 4, warmup_s=0.0,
                  duration_s=None, drain=True)
    return sc.derive(projection=None, workload=wl, simulation=sim)


def saturated(sc: Scenario, requests: int) -> Scenario:
    """``sc`` with a closed loop of ``max_batch_size`` clients per replica (batches full)."""
    from simulator.strict import replace

    clients = sum(p.replica_limits()[0] * p.deployment.nodes * p.replicas_per_node
                  for p in sc.pool_specs())
    n = max(requests, 20 * clients)
    wl = replace(sc.workload, arrival="closed_loop", clients=clients, rate_per_s=None,
                 hourly_multipliers=None)
    sim = replace(sc.simulation, requests=n, warmup_requests=n // 4, warmup_s=0.0,
                  duration_s=None, drain=True)
    return sc.derive(projection=None, workload=wl, simulation=sim)


def window_throughput(res) -> float:
    """Completions inside the run's steady-state window per second of it."""
    from simulator.metrics.requests import COMPLETED

    t = res.table
    w0, w1 = res.window_s
    fin = t["finish_s"]
    done = (t["state"] == COMPLETED) & (fin >= w0) & (fin <= w1)
    return float(done.sum()) / (w1 - w0)


def steady_energy_wh(res) -> float:
    """Mean facility energy per query of the requests the run saw whole at steady state: those
    that arrived in its window early enough that 99.9 % of requests would have completed by
    its end (a finite run's drain, in which the last requests run in ever smaller batches,
    and its start are left out; selecting by arrival time biases no class)."""
    import numpy as np

    from simulator.metrics.requests import COMPLETED

    t = res.table
    w0, w1 = res.window_s
    done = (t["state"] == COMPLETED) & ~t["warmup"]
    life = float(np.quantile(t["e2e_s"][done], 0.999))
    arr = t["arrival_s"]
    keep = done & (arr >= w0) & (arr <= w1 - life)
    if keep.sum() < 0.25 * done.sum():
        raise ValueError(f"{res.scenario.name}: too short a run for a steady state (requests"
                         f" live up to {life:.3g} s in a {w1 - w0:.3g} s window)")
    return float(t["energy_facility_wh"][keep].mean())


def estimate_cpu_s(sc: Scenario, repeats: int = 3) -> tuple[float, float]:
    """CPU seconds of ``estimate(sc)``, each the median of ``repeats``: as a point of a sweep
    (after another point of the sweep, ``sc`` at half its rate, filled the cache: what a
    worker of ``fleetsim sweep --estimate`` has seen when it comes to its next point of the
    same mix and deployment; nothing of the iteration at ``sc``'s own rate is known), and cold
    (a fresh cache, as a sweep's first point or a lone ``fleetsim estimate``)."""
    from statistics import median

    from simulator.estimate.model import EstimateCache, estimate
    from simulator.strict import replace

    other = sc.derive(workload=replace(sc.workload, rate_per_s=0.5 * sc.workload.rate_per_s))
    point, cold = [], []
    for _ in range(repeats):
        cache = EstimateCache()
        estimate(other, cache)
        t0 = time.process_time()
        estimate(sc, cache)
        point.append(time.process_time() - t0)
        t0 = time.process_time()
        estimate(sc, EstimateCache())
        cold.append(time.process_time() - t0)
    return median(point), median(cold)


def check(path: str | Path, requests: int = 8000) -> Check:
    from simulator.api import simulate
    from simulator.estimate.model import estimate
    from simulator.scenario.load import load_scenario

    sc = load_scenario(str(path))
    first = estimate(sc)  # loads the device profiles (once per process)
    own = sc.workload.arrival in ("poisson", "gamma") and first.load <= 0.9
    rate = None if own else 0.7 * first.capacity_requests_per_s
    if not own and sc.workload.arrival not in ("poisson", "gamma"):
        raise ValueError(f"{path}: a steady check needs poisson or gamma arrivals")
    run_sc = steady(sc, rate, requests)
    est = estimate(run_sc)
    t_est, t_cold = estimate_cpu_s(run_sc)
    t0 = time.process_time()
    sim = simulate(run_sc)
    sat = simulate(saturated(sc, requests))
    t_sim = time.process_time() - t0
    return Check(sc.name, est.offered_requests_per_s, est.energy_per_query_wh_mean,
                 steady_energy_wh(sim), est.capacity_requests_per_s, window_throughput(sat),
                 t_est, t_sim, t_cold)


def table(checks: list[Check]) -> str:
    """The markdown table of ``docs/estimate.md``."""
    lines = ["| scenario | rate (req/s) | energy/query estimate / simulated (Wh) | error |"
             " capacity estimate / simulated (req/s) | error | estimate: sweep point / cold |"
             " simulations (CPU) | faster: sweep point / cold |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in checks:
        lines.append(
            f"| `{c.scenario}` | {c.rate_per_s:.3g} | {c.energy_wh_estimate:.4g} /"
            f" {c.energy_wh_simulated:.4g} | {c.energy_error:+.1%} | {c.capacity_estimate:.4g} /"
            f" {c.capacity_simulated:.4g} | {c.capacity_error:+.1%} |"
            f" {c.estimate_cpu_s * 1e3:.2f} / {c.estimate_cold_cpu_s * 1e3:.2f} ms |"
            f" {c.simulate_cpu_s:.2g} s | {c.speedup:,.0f}x / {c.cold_speedup:,.0f}x |")
    return "\n".join(lines)
