"""Limits that keep the machine alive: what a run would need, checked before anything starts.

A scenario can ask for more than a machine has: ``simulation.requests: 1e12``, a fleet of a
billion nodes, a telemetry interval of 1e-300 s, a rate so low that the requests would take
1e300 s to arrive. :func:`estimate` counts what the run would hold and do from the scenario
alone (no simulation, no trace parsing: a trace's rows are estimated from its size on disk),
and :func:`check` refuses, with one line naming the field that drives the cost, a run that

* would need more memory than :data:`MEMORY_FRACTION` of this machine's physical memory, or
* would take longer than :data:`MAX_WALL_S` of wall-clock time by the measured costs below,

unless ``force`` is set (``--force`` on the command line), and always refuses a run whose
simulated time would exceed :data:`MAX_SIMULATED_S` (float64 seconds lose the microsecond
resolution iteration times need well before that; no ``--force`` helps).

Costs per item were measured on the project's 2-core VM (Python 3.11): about 2.5 kB and
0.1 ms per request, 4 us per request and replica for the router's scan, 20 kB and 0.1 ms to
build a replica, 300 B and 5 us per node for a row controller's telemetry sample, 400 B per
trace row while it is parsed. They are estimates, deliberately on the high side.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import ScenarioError

#: a run may use at most this fraction of the machine's physical memory (without --force)
MEMORY_FRACTION = 0.5
#: a run may take at most this long by the estimate, s (without --force)
MAX_WALL_S = 6 * 3600.0
#: no run may simulate more than this many seconds (float64 resolution; not forceable)
MAX_SIMULATED_S = 1e9

REQUEST_BYTES = 2500.0
REQUEST_WALL_S = 1e-4
ROUTER_WALL_S = 4e-6  # per request and replica (the router scans the replicas)
REPLICA_BYTES = 20_000.0
REPLICA_WALL_S = 1e-4
SAMPLE_BYTES = 300.0
SAMPLE_WALL_S = 5e-6  # per node of the row
TRACE_ROW_BYTES = 400.0
TRACE_ROW_WALL_S = 2e-6
TRACE_MIN_ROW_BYTES = 24.0  # shortest plausible trace line: rows <= file size / this
STEPPED_FACTOR = 20.0  # the stepped engine's cost per request relative to the coalesced one


@dataclass
class Term:
    """One cost of a run: the field that drives it, what it is, memory (B) and time (s)."""

    field: str
    what: str
    bytes: float = 0.0
    wall_s: float = 0.0


@dataclass
class Estimate:
    """What a run would need. ``simulated_s`` is the expected simulated time (arrivals);
    ``simulated_field`` the field that sets it."""

    terms: list[Term] = field(default_factory=list)
    simulated_s: float = 0.0
    simulated_field: str = "simulation.duration_s"

    @property
    def bytes(self) -> float:
        return sum(t.bytes for t in self.terms)

    @property
    def wall_s(self) -> float:
        return sum(t.wall_s for t in self.terms)


def physical_memory_bytes() -> float:
    """This machine's physical memory, B (inf when the OS does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return math.inf


def _trace_rows(path: Path) -> float:
    try:
        return os.path.getsize(path) / TRACE_MIN_ROW_BYTES
    except OSError:
        return 0.0  # unreadable: the trace reader reports it


def estimate(sc: Any, requests_override: float | None = None,
             rate_per_s: float | None = None) -> Estimate:
    """What running ``sc`` would need (see the module). ``rate_per_s`` is the workload's mean
    arrival rate when known from a built workload (a replay's traces)."""
    wl, sim = sc.workload, sc.simulation
    est = Estimate()
    pools = sc.pool_specs()
    replicas = 0
    for pool in pools:
        n = pool.deployment.nodes * pool.replicas_per_node
        replicas += n
        est.terms.append(Term(f"{pool.path}deployment.nodes",
                              f"{_count(n)} replicas", n * REPLICA_BYTES, n * REPLICA_WALL_S))
    # ---- arrivals: how many requests, over how much simulated time
    duration = sim.duration_s if sim.duration_s is not None else math.inf
    cap = sim.requests if sim.requests is not None else math.inf
    req_field = "simulation.requests" if sim.requests is not None else "simulation.duration_s"
    trace_rows = 0.0
    if wl.arrival in ("poisson", "gamma"):
        mult = wl.hourly_multipliers
        m = 1.0 if mult is None else math.fsum(mult) / 24.0
        rate = float(wl.rate_per_s) * m
        t_requests = cap / rate if rate > 0 else math.inf
        n = min(cap, duration * rate)
        if duration * rate < cap:
            req_field = "simulation.duration_s"
        est.simulated_s = min(duration, t_requests)
        if t_requests < duration:
            tiny_curve = mult is not None and (max(mult) < 1e-6 or m < 1e-6 * max(mult))
            est.simulated_field = ("workload.hourly_multipliers" if tiny_curve
                                   else "workload.rate_per_s")
    elif wl.arrival == "replay":
        for name, path in (wl.traces or {}).items():
            rows = _trace_rows(sc.resolve(path))
            trace_rows += rows
            est.terms.append(Term(f"workload.traces.{name}", f"~{_count(rows)} trace rows",
                                  rows * TRACE_ROW_BYTES, rows * TRACE_ROW_WALL_S))
        if rate_per_s:
            n = (min(cap, duration * rate_per_s) if wl.loop
                 else min(cap, trace_rows * wl.replay_share))
            est.simulated_s = min(duration, n / rate_per_s)
        else:
            n = cap if wl.loop else min(cap, trace_rows * wl.replay_share)
            if math.isinf(n):  # looping with a duration and no known rate: counted after build
                n = 0.0
            est.simulated_s = 0.0 if math.isinf(duration) else duration
        est.simulated_field = "simulation.duration_s"
    else:  # closed loop: every client holds a request; think time stretches simulated time
        clients = float(wl.clients or 0)
        n = cap if not math.isinf(cap) else clients * duration / max(wl.think_time_s, 1e-3)
        n = max(n, clients)
        est.terms.append(Term("workload.clients", f"{_count(clients)} clients",
                              clients * REQUEST_BYTES, clients * REQUEST_WALL_S))
        est.simulated_s = min(duration, cap / max(clients, 1.0) * wl.think_time_s)
        est.simulated_field = ("workload.think_time_s" if cap / max(clients, 1.0)
                               * wl.think_time_s < duration else "simulation.duration_s")
        if not math.isinf(cap) and clients > cap:
            req_field = "workload.clients"
        elif math.isinf(cap):
            req_field = "simulation.duration_s"
    if requests_override is not None:
        n = requests_override
    per_req_wall = REQUEST_WALL_S * (STEPPED_FACTOR if sim.engine == "stepped" else 1.0)
    per_req_wall += ROUTER_WALL_S * replicas
    est.terms.append(Term(req_field, f"{_count(n)} requests", n * REQUEST_BYTES, n * per_req_wall))
    # ---- a row controller samples every telemetry interval, for as long as the run lasts
    p = sc.power
    if p.has_budget:
        span = est.simulated_s if math.isfinite(est.simulated_s) else duration
        samples = span / p.telemetry_interval_s if math.isfinite(span) else 0.0
        nodes = sc.nodes
        est.terms.append(Term("power.telemetry_interval_s", f"{_count(samples)} telemetry samples",
                              samples * SAMPLE_BYTES * max(1, len(p.rows or [0])),
                              samples * SAMPLE_WALL_S * nodes))
    return est


def _count(n: float) -> str:
    return f"{n:,.0f}" if n < 1e7 else f"{n:.3g}"


def _fmt_bytes(b: float) -> str:
    if b >= 2**70:
        return f"{b:.3g} B"
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30),
                       ("MiB", 2**20)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b / 1024:.3g} KiB"


def _fmt_s(s: float) -> str:
    for unit, size in (("years", 3.15e7), ("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def check(sc: Any, force: bool = False, *, requests_override: float | None = None,
          rate_per_s: float | None = None, what: str = "this run") -> Estimate:
    """Refuse (ScenarioError naming the field) a run beyond the limits of the module; with
    ``force`` only the simulated-time limit applies. Returns the estimate."""
    est = estimate(sc, requests_override, rate_per_s)
    mem = physical_memory_bytes()
    if not force and est.bytes > MEMORY_FRACTION * mem:
        top = max(est.terms, key=lambda t: t.bytes)
        raise ScenarioError(
            f"{what} would need about {_fmt_bytes(est.bytes)} of memory ({top.what}) but this"
            f" machine has {_fmt_bytes(mem)} (at most {MEMORY_FRACTION:.0%} may be used);"
            " lower it, or pass --force to run anyway", file=sc.file, field=top.field)
    if not force and est.wall_s > MAX_WALL_S:
        top = max(est.terms, key=lambda t: t.wall_s)
        raise ScenarioError(
            f"{what} would take about {_fmt_s(est.wall_s)} ({top.what}), more than the"
            f" {_fmt_s(MAX_WALL_S)} limit; lower it, or pass --force to run anyway",
            file=sc.file, field=top.field)
    if est.simulated_s > MAX_SIMULATED_S:
        raise ScenarioError(
            f"{what} would simulate about {est.simulated_s:.3g} s of arrivals, more than"
            f" {MAX_SIMULATED_S:.0e} s (where float64 times lose the microsecond resolution"
            " iterations need); raise the rate or lower the requests or duration",
            file=sc.file, field=est.simulated_field)
    return est
