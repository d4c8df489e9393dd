"""A fleet-day projection: plan, simulate the sampled load levels (nominal and Monte Carlo
draws), integrate the day, and build ``summary.json``.

Steps (``docs/projection.md`` has the user's view):

1. the day: hourly fleet rate from ``queries_per_day`` and the curve;
2. per-node capacity at the SLO (when the fleet is 'auto', the idle policy autoscales, or an
   explicit fleet fails the SLO in the peak hour): a search over the per-node rate on the
   sampled nodes, doubling then bisecting, every trial with the same random streams;
3. the plan: fleet size, nodes on per hour, per-node rate, hours grouped into shared levels;
4. nominal levels, then every draw's levels (perturbed physics, same streams) — one job each,
   run serially or on a process pool (``concurrent.futures``), in a fixed order, so the result
   does not depend on the number of workers;
5. each draw's day integrated exactly (:func:`~simulator.projection.day.integrate_day`); P5 /
   P50 / P95 over the draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor  # noqa: F401 - the type of _Runner.pool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import ScenarioError
from simulator.projection.day import (HOURS, J_PER_GWH, DayPlan, Facility, daily_curve,
                                      fleet_rate, integrate_day, nodes_for, plan_day)
from simulator.physics.host import HostPower
from simulator.projection.sample import (LevelJob, LevelResult, Perturbation, auto_warmup_s,
                                         class_shares, idle_level, level_calibration,
                                         level_requests, run_level, throughput_bound_per_node,
                                         trace_rate_per_s, unit_gpus, unit_host,
                                         unit_idle_w_per_gpu)
from simulator.projection.uncertainty import (draw_inputs, perturbation, residual_median,
                                              sensitivity)
from simulator.projection.stats import energy_keys
from simulator.projection.stats import pct as _pct
from simulator.projection.stats import per_token as _per_token
from simulator.projection.stats import weighted_quantiles as _weighted_quantiles
from simulator.scenario.limits import MAX_SIMULATED_S
from simulator.scenario.schema import Scenario
from simulator.workers import process_pool

SCHEMA_VERSION = 1
#: the capacity search gives up above this many doublings / halvings from its start
MAX_BRACKET_STEPS = 30
#: an auto-sized fleet whose peak hour misses the SLO target lowers its capacity at most this often
MAX_CAPACITY_CUTS = 10
#: a load level simulates at most this many warm-up requests per measured request (unless forced)
MAX_WARMUP_FACTOR = 20


def check_projection_limits(sc: Scenario, workers: int = 1, force: bool = False) -> None:
    """Refuse (one line naming the field) a projection beyond this machine's memory or the
    time limit of :mod:`simulator.scenario.limits`, before anything runs: each worker holds
    one load level (its measured and at most MAX_WARMUP_FACTOR times as many warm-up
    requests); the day runs (levels <= 24) x (draws + 1) level simulations plus the capacity
    search (<= 2 x MAX_BRACKET_STEPS + 20)."""
    from simulator.scenario import limits

    p = sc.projection
    if p is None or force:
        return
    per_level = p.sample.requests * (1 + MAX_WARMUP_FACTOR)
    mem = limits.physical_memory_bytes()
    need = per_level * limits.REQUEST_BYTES * max(1, workers)
    if need > limits.MEMORY_FRACTION * mem:
        raise ScenarioError(
            f"each of the {max(1, workers)} workers may hold {per_level:,} requests (about"
            f" {need / 2**30:.3g} GiB in all) but this machine has {mem / 2**30:.3g} GiB; lower"
            " it or --workers, or pass --force", file=sc.file, field="projection.sample.requests")
    sims = HOURS * (p.uncertainty.draws + 1) + 2 * MAX_BRACKET_STEPS + 20
    wall = sims * p.sample.requests * 2 * limits.REQUEST_WALL_S / max(1, workers)
    if wall > limits.MAX_WALL_S:
        field = ("projection.uncertainty.draws"
                 if p.uncertainty.draws * HOURS > 2 * MAX_BRACKET_STEPS
                 else "projection.sample.requests")
        raise ScenarioError(
            f"the projection would take about {wall / 3600:.3g} hours ({sims:,} level simulations"
            f" of {p.sample.requests:,} requests); lower it, or pass --force",
            file=sc.file, field=field)


@dataclass
class Projection:
    """Everything a projection produced; ``summary`` is the ``summary.json`` contract."""

    scenario: Scenario
    plan: DayPlan
    hourly: pd.DataFrame  # nominal, one row per hour
    levels: pd.DataFrame  # nominal, one row per simulated level
    draws: pd.DataFrame  # one row per Monte Carlo draw: inputs and results
    summary: dict[str, Any] = field(default_factory=dict)
    sensitivity: pd.DataFrame | None = None
    nominal_levels: list[LevelResult] = field(default_factory=list)  # plan.levels' results
    hourly_draws: np.ndarray | None = None  # facility power W, one row per draw, one column per hour
    pools: list["Projection"] = field(default_factory=list)  # a multi-pool fleet's pools


class _Runner:
    """Runs level jobs in order, serially, on a process pool or on a Dask cluster (the sweep
    machinery's two back ends); counts simulations."""

    def __init__(self, workers: int, progress: Callable[[int], None] | None,
                 cluster: Any = None):
        self.workers = max(1, workers)
        self.progress = progress
        self.pool: ProcessPoolExecutor | None = None
        self.cluster = cluster
        self.client: Any = None
        self.simulations = 0

    def __enter__(self) -> "_Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.client is not None and self.client is not self.cluster:
            self.client.close()

    def _dask(self, jobs: list[LevelJob]) -> Iterable[LevelResult]:
        if self.client is None:
            try:
                from dask.distributed import Client
            except ImportError:
                raise ScenarioError("--cluster needs dask: pip install 'dask[distributed]'") \
                    from None
            try:
                self.client = self.cluster if isinstance(self.cluster, Client) else \
                    Client(self.cluster)
            except (OSError, TimeoutError) as e:
                raise ScenarioError(f"cannot connect to Dask cluster {self.cluster!r}: {e}") \
                    from None
        futures = self.client.map(run_level, jobs, pure=False)
        for f in futures:  # in order: the result does not depend on who finishes first
            yield f.result()

    def map(self, jobs: list[LevelJob]) -> list[LevelResult]:
        if not jobs:
            return []
        if self.cluster is not None:
            it: Iterable[LevelResult] = self._dask(jobs)
        elif self.workers == 1 or len(jobs) == 1:
            it = map(run_level, jobs)
        else:
            if self.pool is None:
                self.pool = process_pool(self.workers)
            it = self.pool.map(run_level, jobs, chunksize=1)
        out = []
        for r in it:
            out.append(r)
            self.simulations += 1
            if self.progress is not None:
                self.progress(1)
        return out


def _seed(root: int, *key: int) -> int:
    return int(np.random.SeedSequence(root, spawn_key=key).generate_state(1)[0])


def search_capacity(ok: Callable[..., bool], start: float, tolerance: float,
                    target: float, file: str | None = None, bound: float = math.inf) -> float:
    """The largest rate for which ``ok(rate)`` holds (every class meets its SLO target), to a
    relative ``tolerance``: bracket by doubling or halving from ``start`` with short trials
    (``ok(rate, True)``: a quarter of the requests), confirm the bracket with
    full-length trials, then bisect. ``ok`` must be monotone in the rate (common random
    numbers). ``bound``: no node completes more than this (physics alone), so rates above it
    are never tried; when the SLO still holds at the bound itself (a full-length trial), the
    node is limited by its batch slots or batched tokens, not by the SLO, and the bound is the
    capacity. Used by projections and by ``fleetsim size``."""
    lo, hi = 0.0, start
    if ok(start, True):
        lo = start
        never_binds = True
        for _ in range(MAX_BRACKET_STEPS):
            hi = lo * 2.0
            if hi > bound:  # the bound itself is the last candidate above lo
                hi = bound
                # a short trial can pass where the queue builds slowly: confirm at full length
                if lo < bound and ok(bound, True) and ok(bound):
                    return bound  # the SLO holds where the node completes all it can
                never_binds = lo >= bound
                break
            if not ok(hi, True):
                never_binds = False
                break
            lo = hi
        if never_binds:
            raise ScenarioError(f"per-node capacity reaches {lo:.4g} queries/s, near the most a"
                                f" node can complete ({bound:.4g}/s): the SLO never binds"
                                " (tighten workload.classes.*.slo)", file=file,
                                field="workload.classes")
    else:
        for _ in range(MAX_BRACKET_STEPS):
            hi_try = hi / 2.0
            if ok(hi_try, True):
                lo = hi_try
                break
            hi = hi_try
        else:
            raise ScenarioError(
                f"no per-node rate down to {hi:.3g} queries/s meets every class's SLO"
                f" (slo_target {target:g}): the SLO cannot be met on this deployment",
                file=file, field="projection.fleet.slo_target")
    # confirm the bracket with full-length trials (a short trial can miss a slow build-up of
    # the queue)
    for _ in range(MAX_BRACKET_STEPS):
        if ok(hi):
            if hi >= bound:
                return bound  # as above: limited by the node, not by the SLO
            lo, hi = hi, hi * 2.0
        elif lo > 0 and not ok(lo):
            lo, hi = lo / 2.0, lo
        else:
            break
    while (hi - lo) > tolerance * lo:
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def project(sc: Scenario, workers: int = 1,
            progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None, force: bool = False,
            known_capacity: tuple[float, list[tuple[float, LevelResult]]] | None = None,
            cluster: Any = None) -> Projection:
    """Project a whole day for a validated scenario with a ``projection`` section.

    ``progress`` is called with 1 after each simulation; ``on_total`` with the total number
    of simulations once the plan is known (after the capacity search and the nominal day).
    ``force`` lifts the warm-up limit (MAX_WARMUP_FACTOR warm-up requests per measured one).
    ``known_capacity``: a per-node capacity already searched (and its trials), used instead of
    searching again. A fleet of several pools is projected pool by pool
    (:func:`project_pools`). ``cluster``: a Dask scheduler address or ``Client`` that simulates
    the levels instead of ``workers`` local processes (the same results)."""
    p = sc.projection
    if p is None:
        raise ScenarioError("missing: `fleetsim project` needs a projection section (at least"
                            " projection.queries_per_day)", file=sc.file, field="projection")
    if sc.disaggregated and p.fleet.prefill_decode_splits is not None:
        return project_split(sc, workers, progress, on_total, force, cluster)
    if len(sc.pool_specs()) > 1 and not sc.disaggregated:
        return project_pools(sc, workers, progress, force, cluster)
    cal = level_calibration(sc)
    gpn = unit_gpus(sc)  # GPUs per node (per cell of a disaggregated fleet)
    idle_w_gpu = unit_idle_w_per_gpu(sc)
    host0 = unit_host(sc)
    fac0 = Facility(sc.facility.pue, host0.idle_w, host0.load_factor)
    m, curve_source = daily_curve(sc)
    k = p.sample.nodes
    warmup_s = p.sample.warmup_s if p.sample.warmup_s is not None else auto_warmup_s(sc)
    classes = list(sc.workload.classes)
    trace_rate = trace_rate_per_s(sc) if sc.workload.arrival == "replay" else None
    target = p.fleet.slo_target
    # the peak hour's fleet rate: the capacity search starts from it for an explicit fleet, and
    # a replay is sped up to it and thinned to the sampled nodes' share
    q_peak_fleet = float(fleet_rate(p.queries_per_day, m).max())
    # no node completes more than this (physics alone): rates above it are never simulated
    bound = throughput_bound_per_node(sc, cal)

    def job(rate: float, level_key: int, pert: Perturbation = Perturbation(),
            keep: bool = True, requests: int | None = None) -> LevelJob:
        n = requests or level_requests(sc, rate * k)
        warm = math.ceil(rate * k * warmup_s)
        if not force and warm > MAX_WARMUP_FACTOR * max(n, p.sample.requests):
            field = ("projection.sample.warmup_s" if p.sample.warmup_s is not None
                     else "workload.classes")
            source = "" if p.sample.warmup_s is not None else ", 2 x the longest SLO-bound request"
            raise ScenarioError(
                f"a load level of {rate:.4g} queries/s per node would simulate {warm:,} warm-up"
                f" requests ({warmup_s:.4g} s of warm-up{source}) before its {n:,} measured"
                f" ones (more than {MAX_WARMUP_FACTOR} x as many); set a shorter"
                " projection.sample.warmup_s, or pass --force", file=sc.file, field=field)
        span_s = (warm + n) / (rate * k)
        if span_s > MAX_SIMULATED_S:
            raise ScenarioError(
                f"a load level of {rate:.3g} queries/s per node is too light to simulate: its"
                f" {warm + n:,} requests would span {span_s:.3g} s (more than"
                f" {MAX_SIMULATED_S:.0e} s); raise queries_per_day or give fewer nodes",
                file=sc.file, field="projection.queries_per_day")
        return LevelJob(sc, rate, k, n, warmup_s, _seed(p.sample.seed, level_key), pert, keep,
                        trace_rate, q_peak_fleet)

    with _Runner(workers, progress, cluster) as runner:
        search: list[tuple[float, LevelResult]] = []

        def capacity() -> float:
            """Largest per-node rate whose sampled run meets every class's SLO target.
            Bracketing trials (far from the answer) use a quarter of the requests."""

            def ok(rate: float, short: bool = False) -> bool:
                if rate > bound:  # no node serves this much: not simulated
                    return False
                # the capacity trials share one stream (key 10**6): monotone in the rate
                n = level_requests(sc, rate * k)
                r = runner.map([job(rate, 10**6, keep=False,
                                    requests=max(50, n // 4) if short else n)])[0]
                search.append((rate, r))
                return r.min_attainment() >= target
            # the same start for every fleet size: the capacity is the deployment's, so an
            # explicit fleet too small for its peak hour is told a size that is then accepted
            start = min(1.0, bound / 2.0)
            return search_capacity(ok, start, p.fleet.capacity_tolerance, target, sc.file, bound)

        explicit = p.fleet.nodes != "auto"
        fixed_fleet = explicit and p.idle.policy != "autoscale"  # every node on, size given
        searched: list[float] = []

        def capacity_once() -> float:
            if not searched:
                searched.append(capacity())
            return searched[0]

        if known_capacity is not None:
            searched.append(known_capacity[0])
            search.extend(known_capacity[1])
        cap = capacity_once() if not fixed_fleet else None

        def too_few(nodes: int, why: str) -> ScenarioError:
            """An explicit fleet too small for its peak hour: name the size that meets it."""
            c = capacity_once()
            need = nodes_for(q_peak_fleet, c, 1.0)
            return ScenarioError(
                f"{nodes} nodes are too few for the peak hour ({q_peak_fleet:.4g} queries/s):"
                f" {why}; at least {need} nodes would meet it (per-node capacity {c:.4g}"
                f" queries/s), {nodes_for(q_peak_fleet, c, p.fleet.headroom)} with headroom"
                f" {p.fleet.headroom:g}", file=sc.file, field="projection.fleet.nodes")

        def run_levels(plan: DayPlan, first: int) -> list[LevelResult]:
            """Every level, the peak hour's first: a fixed fleet too small for its peak is
            reported before the other levels run (each level has its own stream, so the
            order changes no result)."""
            if first < 0:
                return runner.map([job(r, i) for i, r in enumerate(plan.levels)])
            if fixed_fleet and plan.levels[first] > bound:
                raise too_few(plan.nodes_fleet, f"each node would get {plan.levels[first]:.4g}"
                              f" queries/s, more than a node can complete ({bound:.4g}/s)")
            head = runner.map([job(plan.levels[first], first)])[0]
            if fixed_fleet and head.min_attainment() < target:
                # too few by the peak level's own run; the capacity search decides (the same
                # search for every fleet size, so the size it names is then accepted)
                worst = min(classes, key=lambda c: head.attainment(c))
                err = too_few(plan.nodes_fleet, f"class {worst!r} meets its SLO for"
                              f" {head.attainment(worst):.1%} of requests < slo_target"
                              f" {target:.1%}")
                if plan.nodes_fleet < nodes_for(q_peak_fleet, capacity_once(), 1.0):
                    raise err
            rest = runner.map([job(r, i) for i, r in enumerate(plan.levels) if i != first])
            return rest[:first] + [head] + rest[first:]

        capacity_cuts = 0
        while True:
            plan = plan_day(sc, m, cap)
            peak_level = plan.level_of_hour[plan.peak_hour]
            nominal = run_levels(plan, peak_level)
            if (cap is None or peak_level < 0 or capacity_cuts >= MAX_CAPACITY_CUTS
                    or nominal[peak_level].min_attainment() >= target or fixed_fleet):
                break
            # the searched capacity was sized on one random stream; the peak level runs on its
            # own and may miss the target near the threshold: lower the capacity and re-plan
            cap *= 1.0 - max(p.fleet.capacity_tolerance, 0.01)
            capacity_cuts += 1
        if (peak_level >= 0 and nominal[peak_level].min_attainment() < target
                and p.fleet.nodes == "auto"):
            raise ScenarioError(
                f"the auto-sized fleet misses slo_target {target:.1%} in the peak hour even after"
                f" lowering the searched per-node capacity {capacity_cuts} times (the SLO"
                " attainment is too noisy near the threshold): raise projection.sample.requests",
                file=sc.file, field="projection.sample.requests")
        if (peak_level >= 0 and nominal[peak_level].min_attainment() < target
                and not fixed_fleet):
            # an explicit autoscaled fleet too small for its peak hour
            worst = min(classes, key=lambda c: nominal[peak_level].attainment(c))
            raise too_few(plan.nodes_fleet, f"class {worst!r} meets its SLO for"
                          f" {nominal[peak_level].attainment(worst):.1%} of requests <"
                          f" slo_target {target:.1%}")
        inputs = draw_inputs(p.uncertainty, cal, fac0)
        perts = [perturbation(row) for _, row in inputs.iterrows()]
        drawn, reused = _draw_levels(plan.levels, [pt for pt, _ in perts], nominal, job, runner,
                                     on_total)
        n_sims = runner.simulations

    carbon = p.carbon.hourly() if p.carbon is not None else None
    idle_gpu_node_w = gpn * idle_w_gpu
    warm = p.idle.warmup_s if p.idle.policy == "autoscale" else 0.0

    def day(levels: list[LevelResult], fac: Facility) -> tuple[dict[str, float], pd.DataFrame]:
        hourly = []
        for h in range(HOURS):
            li = plan.level_of_hour[h]
            lv = idle_level(gpn, idle_w_gpu, classes) if li < 0 else \
                levels[li].rescaled(float(plan.rate_per_node[h]))
            hourly.append(lv.node_power(HostPower(fac.host_idle_w, fac.host_load_factor, gpn,
                                                  idle_w_gpu, host0.rated_w)))
        return integrate_day(plan, hourly, fac, warm, idle_gpu_node_w, carbon)

    tot0, hourly0 = day(nominal, fac0)
    n_levels = len(plan.levels)
    rows = []
    hourly_draws = []  # facility power per hour of each draw, W
    for d, (pert, fac) in enumerate(perts):
        tot, hourly_d = day(drawn[d * n_levels:(d + 1) * n_levels], fac)
        hourly_draws.append(hourly_d["facility_power_w"].to_numpy())
        lv = drawn[d * n_levels:(d + 1) * n_levels]
        rows.append({"gwh_per_day_facility": tot["energy_facility_j"] / J_PER_GWH,
                     "gwh_per_day_it": tot["energy_it_j"] / J_PER_GWH,
                     "co2_t_per_day": tot["co2_t"],
                     "slo_attainment_min": _day_attainment(plan, lv, classes, min_only=True)})
    draws = pd.concat([inputs, pd.DataFrame(rows, index=inputs.index)], axis=1) if rows else \
        inputs.assign(gwh_per_day_facility=[], gwh_per_day_it=[], co2_t_per_day=[],
                      slo_attainment_min=[])
    # per-hour P5/P95 of facility power over the draws (the nominal hour without draws)
    if hourly_draws:
        hd = np.vstack(hourly_draws)
        hourly0["facility_power_w_p5"] = np.percentile(hd, 5, axis=0)
        hourly0["facility_power_w_p95"] = np.percentile(hd, 95, axis=0)
    else:
        hourly0["facility_power_w_p5"] = hourly0["facility_power_w"]
        hourly0["facility_power_w_p95"] = hourly0["facility_power_w"]
    # per-hour SLO attainment and the level table (nominal)
    for c in classes:
        hourly0[f"slo_attainment.{c}"] = [
            nominal[li].attainment(c) if li >= 0 else math.nan for li in plan.level_of_hour]
    levels_df = pd.DataFrame([{
        "level": i, "queries_per_s_per_node": lv.rate_per_node,
        "hours": int((plan.level_of_hour == i).sum()), "window_s": lv.window_s,
        "throughput_per_node": lv.throughput_per_node, "busy_gpu_fraction": lv.busy_gpu_fraction,
        "gpu_prefill_w": lv.gpu_prefill_w, "gpu_decode_w": lv.gpu_decode_w,
        "gpu_idle_w": lv.gpu_idle_w,
        **{f"slo_attainment.{c}": lv.attainment(c) for c in classes}}
        for i, lv in enumerate(nominal)])
    proj = Projection(sc, plan, hourly0, levels_df, draws, nominal_levels=nominal,
                      hourly_draws=np.vstack(hourly_draws) if hourly_draws else None)
    ranges = {"compute_time_factor": _minmax(draws, "compute_time_factor"),
              "memory_time_factor": _minmax(draws, "memory_time_factor"),
              "gpu_power_factor": _minmax(draws, "gpu_power_factor"),
              **{n: _minmax(draws, n) for n in ("pue", "host_idle_w", "host_load_factor")},
              **{n: tuple(getattr(p.uncertainty, n)) for n in
                 ("input_length_scale", "output_length_scale")}}
    proj.sensitivity = sensitivity(draws, "gwh_per_day_facility", list(ranges), ranges) \
        if len(draws) else None
    proj.summary = _summary(sc, proj, tot0, nominal, cap, curve_source, warmup_s, n_sims,
                            search, cal)
    proj.summary["sampling"]["capacity_cuts"] = capacity_cuts
    proj.summary["sampling"]["draw_levels_reused"] = reused
    from simulator.metrics.boundaries import projection_boundaries

    s = proj.summary
    queries = {c: s["queries_per_day"] * share for c, share in s["class_shares"].items() if share > 0}
    busy = {c: q * (s["wh_per_query_mean"].get(c) or 0.0) for c, q in queries.items()}
    s["energy_boundaries"] = projection_boundaries(s, queries, busy)
    if sc.disaggregated:  # cells back to nodes, and each pool's share of the day
        from simulator.projection.cells import to_nodes

        to_nodes(sc, proj.summary, hourly0, levels_df, plan.level_of_hour, nominal)
        gpn = max(1, round(gpn / sum(proj.summary["disaggregation"]["cell"].values())))
    if sc.cost is not None:
        from simulator.metrics.cost import projection_cost
        from simulator.projection.sample import mean_output_tokens

        proj.summary["cost"] = projection_cost(
            sc.cost, proj.summary, list(hourly0["energy_facility_j"]), gpn,
            mean_output_tokens(sc), list(draws["gwh_per_day_facility"]))
    return proj


def _timing_and_lengths(pert: Perturbation) -> tuple[float, float, float, float]:
    return (pert.compute_time_factor, pert.memory_time_factor, pert.input_scale,
            pert.output_scale)


def _draw_levels(levels: list[float], perts: list[Perturbation], nominal: list[LevelResult],
                 job: Callable[..., LevelJob], runner: _Runner,
                 on_total: Callable[[int], None] | None) -> tuple[list[LevelResult], int]:
    """Every draw's level results, in draw-major order, and how many came from another
    simulation instead of one of their own.

    A draw's PUE and host power are applied afterwards (its day's integral), and its busy GPU
    power factor scales the busy GPU power of a simulation without it exactly where no
    iteration of that simulation comes near the cap (:meth:`LevelResult.with_power_factor`:
    the timing is then the same). So draws whose timing and length factors are those of the
    nominal day, or of another draw, share one simulation per level; a draw alone with its
    factors is simulated whole, as it always was. Jobs run on the runner (local processes or
    Dask) in a fixed order: the result does not depend on the workers."""
    n = len(levels)
    keys = [_timing_and_lengths(pt) for pt in perts]
    nominal_key = (1.0, 1.0, 1.0, 1.0)
    count: dict[tuple, int] = {}
    for k in keys:
        count[k] = count.get(k, 0) + 1
    shared = [k for k in dict.fromkeys(keys) if k != nominal_key and count[k] > 1]
    bases: dict[tuple, list[LevelResult]] = {nominal_key: nominal}
    own = sum(1 for k in keys if k != nominal_key and count[k] == 1)
    if on_total is not None:
        on_total(runner.simulations + (len(shared) + own) * n)
    # 1. one simulation per level for factors that several draws share (power factor 1)
    base_jobs = [job(r, i, Perturbation(*k[:2], 1.0, *k[2:]), keep=False)
                 for k in shared for i, r in enumerate(levels)]
    done = runner.map(base_jobs)
    for j, k in enumerate(shared):
        bases[k] = done[j * n:(j + 1) * n]
    # 2. each draw: a shared simulation scaled by its power factor, else its own
    out: list[LevelResult | None] = []
    todo: list[tuple[int, LevelJob]] = []
    reused = 0
    for d, (pert, k) in enumerate(zip(perts, keys)):
        base = bases.get(k)
        for i, r in enumerate(levels):
            lv = base[i].with_power_factor(pert.gpu_power_factor) if base is not None else None
            if lv is None:
                todo.append((len(out), job(r, i, pert, keep=False)))
            else:
                reused += 1
            out.append(lv)
    if on_total is not None and len(todo) != own * n:  # some scaled draw was too near the cap
        on_total(runner.simulations + len(todo))
    for (pos, _), lv in zip(todo, runner.map([jb for _, jb in todo])):
        out[pos] = lv
    return out, reused  # type: ignore[return-value]


def capacity_interval(search: list[tuple[float, LevelResult]], target: float,
                      capacity: float) -> tuple[float, float]:
    """A 95 % interval of the per-node capacity from the search's trials: from the fastest rate
    whose worst class meets the target beyond its binomial (Wilson) interval, to the slowest
    rate that misses it beyond its interval (each end falls back to the capacity found)."""
    surely_ok = [r for r, lv in search if lv.min_attainment_interval()[0] >= target]
    surely_not = [r for r, lv in search if lv.min_attainment_interval()[1] < target]
    lo = max((r for r in surely_ok if r <= capacity), default=capacity)
    hi = min((r for r in surely_not if r >= capacity), default=capacity)
    return lo, hi


def _minmax(df: pd.DataFrame, col: str) -> tuple[float, float]:
    return (float(df[col].min()), float(df[col].max())) if len(df) else (1.0, 1.0)


def _day_attainment(plan: DayPlan, levels: list[LevelResult], classes: list[str],
                    min_only: bool = False) -> Any:
    """Query-weighted SLO attainment per class over the day's loaded hours."""
    out = {}
    for c in classes:
        w = num = 0.0
        for h in range(HOURS):
            li = plan.level_of_hour[h]
            a = levels[li].attainment(c) if li >= 0 else math.nan
            if li >= 0 and not math.isnan(a):
                w += plan.fleet_rate_per_s[h]
                num += plan.fleet_rate_per_s[h] * a
        out[c] = num / w if w > 0 else math.nan
    if min_only:
        vals = [v for v in out.values() if not math.isnan(v)]
        return min(vals) if vals else math.nan
    return out


def _summary(sc: Scenario, proj: Projection, tot: dict[str, float], nominal: list[LevelResult],
             cap: float | None, curve_source: str, warmup_s: float, n_sims: int,
             search: list[tuple[float, LevelResult]], cal: Any) -> dict[str, Any]:
    p = sc.projection
    assert p is not None
    plan, draws = proj.plan, proj.draws
    g = lambda key: tot[key] / J_PER_GWH  # noqa: E731
    classes = list(sc.workload.classes)
    pue = sc.facility.pue

    def band(col: str, nominal_value: float) -> tuple[float, float, float]:
        if not len(draws):
            return nominal_value, nominal_value, nominal_value
        return _pct(draws[col], 5), _pct(draws[col], 50), _pct(draws[col], 95)

    fac5, fac50, fac95 = band("gwh_per_day_facility", g("energy_facility_j"))
    it5, it50, it95 = band("gwh_per_day_it", g("energy_it_j"))
    # energy per query: the engine's attribution (busy GPU + host share) x PUE, each hour's
    # requests weighted by the queries they stand for
    wq: dict[str, dict[str, float]] = {"p25": {}, "p50": {}, "p75": {}, "iqr": {}, "mean": {}}
    for c in classes:
        vals, wts = [], []
        for h in range(HOURS):
            li = plan.level_of_hour[h]
            if li < 0:
                continue
            vals.append(nominal[li].request_energy_j.get(c, np.zeros(0)) * pue / 3600.0)
            wts.append(float(plan.fleet_rate_per_s[h]))
        q25, q50, q75 = _weighted_quantiles(vals, wts, [0.25, 0.5, 0.75])
        means = [(a.mean(), w) for a, w in zip(vals, wts) if a.size]
        wq["p25"][c], wq["p50"][c], wq["p75"][c], wq["iqr"][c] = q25, q50, q75, q75 - q25
        wq["mean"][c] = (sum(a * w for a, w in means) / sum(w for _, w in means)) if means else math.nan
    queries = p.queries_per_day
    s: dict[str, Any] = {
        "projection_schema_version": SCHEMA_VERSION,
        "scenario": sc.name,
        "model": sc.model_shape().name,
        "calibration_version": cal.version,
        "queries_per_day": queries,
        "daily_curve": curve_source,
        "class_shares": class_shares(sc),
        "gwh_per_day_facility_p5": fac5,
        "gwh_per_day_facility_p50": fac50,
        "gwh_per_day_facility_p95": fac95,
        "gwh_per_day_it_p5": it5,
        "gwh_per_day_it_p50": it50,
        "gwh_per_day_it_p95": it95,
        **energy_keys(g),
        "wh_per_query_p50": wq["p50"],
        "wh_per_query_p25": wq["p25"],
        "wh_per_query_p75": wq["p75"],
        "wh_per_query_iqr": wq["iqr"],
        "wh_per_query_mean": wq["mean"],
        "wh_per_query_all_in": tot["energy_facility_j"] / 3600.0 / queries,
        **_per_token(sc, tot, queries),
        "nodes_fleet": plan.nodes_fleet,
        "nodes_peak": int(plan.nodes_on.max()),
        "nodes_mean": float(plan.nodes_on.mean()),
        "nodes_min": int(plan.nodes_on.min()),
        "gpus_peak": int(plan.nodes_on.max()) * unit_gpus(sc),
        "capacity_queries_per_s_per_node": cap,
        "capacity_ci_queries_per_s_per_node": (list(capacity_interval(search, p.fleet.slo_target,
                                                                        cap)) if cap else None),
        "peak_queries_per_s": float(plan.fleet_rate_per_s.max()),
        "facility_power_w_peak": float(proj.hourly["facility_power_w"].max()),
        "facility_power_w_mean": float(proj.hourly["facility_power_w"].mean()),
        "facility_power_w_peak_p5": float(proj.hourly["facility_power_w_p5"].max()),
        "facility_power_w_peak_p95": float(proj.hourly["facility_power_w_p95"].max()),
        "slo_target": p.fleet.slo_target,
        "slo_attainment": _day_attainment(plan, nominal, classes),
        "idle_policy": p.idle.policy,
        "hourly": {"nodes_on": [int(x) for x in plan.nodes_on],
                   "facility_power_w": [float(x) for x in proj.hourly["facility_power_w"]]},
        "uncertainty": {
            "draws": int(len(draws)),
            "inputs": {"timing_residuals": p.uncertainty.timing_residuals,
                       "gpu_power_residuals": p.uncertainty.gpu_power_residuals,
                       **{n: list(getattr(p.uncertainty, n)) for n in
                          ("pue_offset", "host_idle_scale", "host_load_scale",
                           "input_length_scale", "output_length_scale")},
                       "residual_medians_removed": {
                           k: residual_median(cal, k)
                           for k in ("prefill_time", "decode_time", "gpu_power")}},
            "slo_attainment_min_p5": _pct(draws["slo_attainment_min"], 5) if len(draws) else math.nan,
            "slo_attainment_min_worst": float(draws["slo_attainment_min"].min()) if len(draws)
            else math.nan,
            "draws_below_slo_target": int((draws["slo_attainment_min"] < p.fleet.slo_target).sum())
            if len(draws) else 0,
        },
        "sampling": {"nodes": p.sample.nodes, "requests_per_level": p.sample.requests,
                     "warmup_s": warmup_s, "levels": len(plan.levels),
                     "simulations": n_sims, "capacity_search_trials": len(search)},
    }
    if p.carbon is not None:
        c5, c50, c95 = band("co2_t_per_day", tot["co2_t"])
        s.update({"tco2_per_day_p5": c5, "tco2_per_day_p50": c50, "tco2_per_day_p95": c95,
                  "tco2_per_day_nominal": tot["co2_t"]})
    return s


# ------------------------------------------------------------------ disaggregated: the split
def project_split(sc: Scenario, workers: int = 1,
                  progress: Callable[[int], None] | None = None,
                  on_total: Callable[[int], None] | None = None, force: bool = False,
                  cluster: Any = None) -> Projection:
    """Project a disaggregated fleet whose cell is searched: every candidate of
    ``projection.fleet.prefill_decode_splits`` gets the capacity search of a projection (its
    own cells, the same stream), the one with the most queries/s per node at the SLO is
    projected (ties: the first given), and every candidate is reported
    (``disaggregation.split_search``: capacity per cell and per node, and the GPU power and
    GPU energy per query of the fastest trial that met the SLO)."""
    from simulator.projection.cells import with_split

    p = sc.projection
    assert p is not None and p.fleet.prefill_decode_splits is not None
    rows: list[dict[str, Any]] = []
    found: dict[tuple[int, int], tuple[Scenario, float, list[tuple[float, LevelResult]]]] = {}
    first_error: ScenarioError | None = None
    for pre, dec in p.fleet.prefill_decode_splits:
        sub = with_split(sc, int(pre), int(dec))
        row: dict[str, Any] = {"prefill_nodes": int(pre), "decode_nodes": int(dec)}
        try:
            cap, search = pool_capacity(sub, workers, progress, cluster)
        except ScenarioError as e:
            first_error = first_error or e
            rows.append({**row, "error": str(e).split(": ", 1)[-1]})
            continue
        # the fastest full-length trial that met the SLO: its GPU power over its rate
        met = [(r, lv) for r, lv in search if r <= cap and lv.min_attainment()
               >= p.fleet.slo_target]
        rate, lv = max(met, key=lambda x: (x[0], x[1].window_s)) if met else (cap, None)
        gpu_w = (lv.gpu_prefill_w + lv.gpu_decode_w + lv.gpu_idle_w) if lv else math.nan
        rows.append({**row, "capacity_queries_per_s_per_cell": cap,
                     "capacity_queries_per_s_per_node": cap / (pre + dec),
                     "gpu_j_per_query_at_capacity": gpu_w / rate if lv else math.nan,
                     "gpu_w_per_node_at_capacity": gpu_w / (pre + dec) if lv else math.nan,
                     "trials": len(search)})
        found[(int(pre), int(dec))] = (sub, cap, search)
    if not found:
        assert first_error is not None
        raise first_error
    best = max(found, key=lambda k: found[k][1] / sum(k))  # max() keeps the first of ties
    sub, cap, search = found[best]
    proj = project(sub, workers, progress, on_total, force, known_capacity=(cap, search),
                   cluster=cluster)
    for r in rows:
        r["chosen"] = (r["prefill_nodes"], r["decode_nodes"]) == best
    proj.summary["disaggregation"]["split_search"] = rows
    proj.scenario = sc
    return proj


# ------------------------------------------------------------------ fleets of several pools
def pool_capacity(sub: Scenario, workers: int, progress: Callable[[int], None] | None,
                  cluster: Any = None) -> tuple[float, list[tuple[float, LevelResult]]]:
    """Per-node capacity of a one-pool scenario at its SLO target, and the search's trials
    (the same search, request counts and random stream as a one-pool projection's)."""
    p = sub.projection
    assert p is not None
    k = p.sample.nodes
    warmup_s = p.sample.warmup_s if p.sample.warmup_s is not None else auto_warmup_s(sub)
    search: list[tuple[float, LevelResult]] = []
    bound = throughput_bound_per_node(sub, level_calibration(sub))
    with _Runner(workers, progress, cluster) as runner:
        def ok(rate: float, short: bool = False) -> bool:
            if rate > bound:  # no node serves this much: not simulated
                return False
            n = level_requests(sub, rate * k)
            job = LevelJob(sub, rate, k, max(50, n // 4) if short else n, warmup_s,
                           _seed(p.sample.seed, 10**6), keep_requests=False)
            r = runner.map([job])[0]
            search.append((rate, r))
            return r.min_attainment() >= p.fleet.slo_target
        cap = search_capacity(ok, min(1.0, bound / 2.0), p.fleet.capacity_tolerance,
                              p.fleet.slo_target, sub.file, bound)
    return cap, search


def project_pools(sc: Scenario, workers: int = 1,
                  progress: Callable[[int], None] | None = None, force: bool = False,
                  cluster: Any = None) -> Projection:
    """Project a fleet of several pools (:mod:`simulator.projection.mixed`): each pool's
    capacity, the pools' sizes and each hour's split, every pool's day as a one-pool
    projection, and the fleet's day as their sum."""
    from simulator.projection import mixed

    p = sc.projection
    assert p is not None
    pools = {pool.name: pool for pool in sc.pool_specs()}
    order = list(pools)
    m, curve_source = daily_curve(sc)
    q = fleet_rate(p.queries_per_day, m)
    given = {n: p.fleet.pool_nodes(n) for n in order}
    caps_search = {n: pool_capacity(mixed.pool_scenario(sc, pools[n], given[n], p.queries_per_day, m),
                                    workers, progress, cluster) for n in order}
    caps = {n: c for n, (c, _) in caps_search.items()}
    sizes = mixed.size_pools(given, caps, float(q.max()), p.fleet.headroom, sc.file)
    rates = mixed.split_hours(q, order, sizes, caps, p.fleet.split, p.fleet.headroom)
    projs: dict[str, Projection] = {}
    for n in order:
        if sizes[n] == 0:
            continue
        r = rates[n]
        if not r.max() > 0:
            raise ScenarioError(f"pool {n!r} receives no queries in any hour under the fill order"
                                f" {p.fleet.split}: put it earlier or remove it",
                                file=sc.file, field="projection.fleet.split")
        sub = mixed.pool_scenario(sc, pools[n], sizes[n], float(r.sum() * 3600.0), r)
        projs[n] = project(sub, workers, progress, None, force=force,
                            known_capacity=caps_search[n], cluster=cluster)
    c = mixed.combine(sc, projs, sizes, caps, rates, q, m, curve_source, SCHEMA_VERSION)
    return Projection(sc, c["plan"], c["hourly"], c["levels"], c["draws"], c["summary"], None,
                      [], c["hourly_draws"], pools=list(projs.values()))
