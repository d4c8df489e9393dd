"""One load level: a few sampled nodes at their share of the traffic, simulated to steady state.

A fleet of thousands of nodes behind a balanced router is statistically many copies of a few.
:func:`simulate_level` runs ``k`` nodes (the scenario's deployment, router and serving) at
``k x rate_per_node`` with the hourly curve removed, discards a warm-up, and measures the mean
power per node over the steady-state window (first measured arrival to last arrival) as an
exact integral of the engine's piecewise-constant ledger, split into GPU prefill / decode /
idle and the busy fraction. Host power (a function of the node's GPU power, linear below the
node rating) and PUE are applied afterwards (:meth:`LevelResult.node_power`), which lets Monte
Carlo draws vary them without re-simulating.

Perturbed physics for Monte Carlo draws (:class:`Perturbation`) goes through the public inputs
of the engine only: a modified :class:`~simulator.physics.params.Calibration` (timing and busy
power) and a derived scenario (each length distribution scaled by its own ``scaled`` method,
replayed rows by ``workload.replay_*_scale``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.engine.fleet import ModelCache, pool_calibration
from simulator.physics.host import HostPower
from simulator.physics.params import Calibration, RooflineOp
from simulator.scenario.schema import Scenario
from simulator.strict import replace

J_PER_WH = 3600.0


@dataclass(frozen=True)
class Perturbation:
    """One Monte Carlo draw's physics (nominal: all factors 1).

    ``compute_time_factor`` multiplies the compute-bound side of every kernel's roofline,
    ``memory_time_factor`` the memory-bound side and every fixed cost (kernel overheads,
    all-reduce, per-iteration and per-sequence CPU time), so an iteration's time scales by the
    factor of the side that binds. ``gpu_power_factor`` multiplies busy GPU power (floor and
    energy per FLOP and per byte; idle power unchanged). Length scales multiply prompt and
    output lengths. All dimensionless.
    """

    compute_time_factor: float = 1.0
    memory_time_factor: float = 1.0
    gpu_power_factor: float = 1.0
    input_scale: float = 1.0
    output_scale: float = 1.0

    @property
    def is_nominal(self) -> bool:
        return (self.compute_time_factor == self.memory_time_factor == self.gpu_power_factor
                == self.input_scale == self.output_scale == 1.0)


def perturb_calibration(cal: Calibration, p: Perturbation) -> Calibration:
    """Calibration whose iteration times and busy power are scaled as ``p`` says (exactly:
    the roofline ``overhead + max(flops / (peak eta_c), bytes / (bw eta_m))`` becomes
    ``f_m overhead + max(f_c flops / (peak eta_c), f_m bytes / (bw eta_m))``)."""
    if p.is_nominal:
        return cal
    fc, fm, fp = p.compute_time_factor, p.memory_time_factor, p.gpu_power_factor

    def op(o: RooflineOp) -> RooflineOp:
        # model_copy does not validate: an efficiency may exceed 1 when a draw is faster
        return o.model_copy(update={"eta_compute_max": o.eta_compute_max / fc,
                                    "eta_memory": o.eta_memory / fm,
                                    "overhead_s": o.overhead_s * fm})

    t = cal.timing
    timing = t.model_copy(update={
        "gemm": {k: op(v) for k, v in t.gemm.items()},
        "elementwise": {k: op(v) for k, v in t.elementwise.items()},
        "attn_prefill": op(t.attn_prefill), "attn_decode": op(t.attn_decode),
        "all_reduce": {k: v.model_copy(update={"alpha_s": v.alpha_s * fm,
                                               "beta_s_per_byte": v.beta_s_per_byte * fm})
                       for k, v in t.all_reduce.items()},
        "custom_all_reduce": (t.custom_all_reduce.model_copy(
            update={"latency_s": t.custom_all_reduce.latency_s * fm,
                    "nvlink_efficiency": t.custom_all_reduce.nvlink_efficiency / fm})
            if t.custom_all_reduce is not None else None),
        "iteration_fixed_s": t.iteration_fixed_s * fm, "per_seq_s": t.per_seq_s * fm})
    pw = cal.power
    power = pw.model_copy(update={"p_busy_w": pw.p_busy_w * fp, "p_active_w": pw.p_active_w * fp,
                                  "e_byte_j": pw.e_byte_j * fp})
    return cal.model_copy(update={"timing": timing, "power": power})


def level_calibration(sc: Scenario) -> Calibration:
    """The fitted coefficients of the scenario's (first) pool."""
    return pool_calibration(sc, sc.pool_specs()[0])


# ------------------------------------------------------------------ the unit a projection scales
# A projection scales a *unit* to the fleet: one node of a one-pool fleet, or, for a
# disaggregated fleet (pools of role prefill and decode), one *cell*: the pools as the scenario
# gives them (``deployment.nodes`` of each: e.g. 1 prompt + 2 token nodes), since a request
# needs both and its KV cache moves between them. Everything a projection calls "per node"
# (rate, capacity, power) is then per cell, and the summary converts back to nodes.
def unit_nodes(sc: Scenario) -> dict[str, int]:
    """Nodes of every pool in one unit: {pool: 1} for a one-pool fleet, the scenario's pool
    sizes for a disaggregated one."""
    specs = sc.pool_specs()
    if not sc.disaggregated:
        return {specs[0].name: 1}
    return {p.name: p.deployment.nodes for p in specs}


def unit_gpus(sc: Scenario) -> int:
    """GPUs in one unit."""
    specs = {p.name: p for p in sc.pool_specs()}
    return sum(n * specs[name].gpus_per_node for name, n in unit_nodes(sc).items())


@dataclass(frozen=True)
class UnitPool:
    """One pool's part of a unit: its nodes per unit, one node's host model and its GPUs'
    calibrated idle power."""

    name: str
    nodes: int
    gpus_per_node: int
    host: HostPower
    gpu_idle_w: float


def unit_pools(sc: Scenario) -> list[UnitPool]:
    """The unit's pools (one for a one-pool fleet), each calibration looked up once."""
    specs = {p.name: p for p in sc.pool_specs()}
    out = []
    for name, n in unit_nodes(sc).items():
        pool = specs[name]
        idle = pool_calibration(sc, pool).power.idle_w
        out.append(UnitPool(name, n, pool.gpus_per_node, pool.host(sc.facility, idle), idle))
    return out


def unit_idle_w_per_gpu(sc: Scenario) -> float:
    """Mean idle power of the unit's GPUs, W (each pool's calibrated idle power)."""
    parts = unit_pools(sc)
    if len(parts) == 1:
        return parts[0].gpu_idle_w
    return sum(u.nodes * u.gpus_per_node * u.gpu_idle_w for u in parts) / unit_gpus(sc)


def unit_host(sc: Scenario) -> HostPower:
    """The host model of one unit: its nodes' hosts summed (idle power and rating add up; the
    load factor is the nodes' GPU-weighted mean, exact when the pools share one node type).
    Linear below the rating, so a unit's host power at its GPUs' total power is the sum of its
    nodes' (while no node is at its rating)."""
    parts = unit_pools(sc)
    if not sc.disaggregated:
        return parts[0].host
    gpus = unit_gpus(sc)
    lf = sum(u.nodes * u.host.gpus_per_node * u.host.load_factor for u in parts) / gpus
    return HostPower(sum(u.nodes * u.host.idle_w for u in parts), lf, gpus,
                     unit_idle_w_per_gpu(sc), sum(u.nodes * u.host.rated_w for u in parts))


# ------------------------------------------------------------------ scenario of a level
def trace_rate_per_s(sc: Scenario) -> float:
    """Mean arrival rate of a replay workload at ``time_scale`` 1 (looped), requests/s."""
    from simulator.workload.arrivals import Workload

    wl = replace(sc.workload, time_scale=1.0, loop=True)
    rate = Workload(wl, np.random.SeedSequence(0), sc.base_dir).mean_rate_per_s()
    if not rate:
        raise ValueError("replay traces give no rate")
    return float(rate)


def with_nodes(sc: Scenario, nodes: int) -> Scenario:
    """``sc`` with its one pool resized to ``nodes`` (validated); a disaggregated fleet with
    ``nodes`` cells (every pool ``nodes`` times its unit size)."""
    if sc.pools is None:
        return sc.derive(deployment=replace(sc.deployment, nodes=nodes))
    if sc.disaggregated:
        return sc.derive(pools=[replace(p, deployment=replace(
            p.deployment, nodes=p.deployment.nodes * nodes)) for p in sc.pools])
    (pool,) = sc.pools
    return sc.derive(pools=[replace(pool, deployment=replace(pool.deployment, nodes=nodes))])


def level_scenario(sc: Scenario, rate_per_node: float, nodes: int, requests: int,
                   warmup_s: float, seed: int, pert: Perturbation = Perturbation(),
                   trace_rate: float | None = None, fleet_rate: float | None = None) -> Scenario:
    """The scenario that simulates ``nodes`` sampled nodes at ``rate_per_node`` each.

    A replay workload is sped up to ``fleet_rate`` (the whole fleet's queries/s) and the sampled
    nodes receive their share of it, request by request (``workload.replay_share``): what a
    few nodes of a large fleet see of a trace, bursts spread by the router. Without
    ``fleet_rate`` the sampled nodes replay the whole trace at their own rate. Lengths are
    scaled by the perturbation (each distribution's :meth:`scaled`, replayed rows likewise)."""
    wl = sc.workload
    total_rate = rate_per_node * nodes
    if wl.arrival == "replay":
        assert trace_rate is not None
        fleet = max(fleet_rate or total_rate, total_rate)
        wl = replace(wl, hourly_multipliers=None, time_scale=fleet / trace_rate,
                     replay_share=min(1.0, total_rate / fleet), loop=True)
    else:
        wl = replace(wl, hourly_multipliers=None, rate_per_s=total_rate)
    wl = wl.scaled_lengths(pert.input_scale, pert.output_scale)
    warm_requests = int(math.ceil(total_rate * warmup_s))
    simulation = replace(sc.simulation, requests=warm_requests + requests, duration_s=None,
                         warmup_s=warmup_s, warmup_requests=0, drain=True, seed=int(seed))
    return with_nodes(sc, nodes).derive(projection=None, workload=wl, simulation=simulation)


def mean_output_tokens(sc: Scenario) -> dict[str, float]:
    """Mean output length of each class, tokens (the workload's samplers; trace rows for
    replay, NaN for a replay class without rows)."""
    from simulator.workload.arrivals import Workload

    return Workload(sc.workload, 0, sc.base_dir).class_mean_output_tokens()


def class_shares(sc: Scenario) -> dict[str, float]:
    """Share of queries per class: the mix, or for a replay the traces' own request counts."""
    if sc.workload.arrival != "replay":
        return sc.workload.class_shares()
    from simulator.workload.arrivals import Workload

    w = Workload(sc.workload, 0, sc.base_dir)
    return {c: float(x) for c, x in zip(w.class_names, w.shares)}


def lifetimes_s(sc: Scenario) -> dict[str, float]:
    """SLO-bound lifetime of each class with share > 0: ttft_s + mean output tokens x tpot_s."""
    means, shares = mean_output_tokens(sc), class_shares(sc)
    return {n: c.slo.ttft_s + means[n] * c.slo.tpot_s for n, c in sc.workload.classes.items()
            if shares.get(n, 0.0) > 0 and not math.isnan(means[n])}


def auto_warmup_s(sc: Scenario) -> float:
    """2 x the longest SLO-bound request time of the classes with share > 0 (a class nobody
    sends never lengthens the warm-up)."""
    return 2.0 * max(lifetimes_s(sc).values())


def level_requests(sc: Scenario, total_rate_per_s: float) -> int:
    """Measured arrivals of one level: ``sample.requests``, raised so that the rarest class
    gets ``min_class_requests`` and the window spans ``window_lifetimes`` lifetimes of the
    longest-lived class (both only for classes with share > 0)."""
    p = sc.projection
    assert p is not None
    shares = [s for s in class_shares(sc).values() if s > 0]
    n = p.sample.requests
    if shares:
        n = max(n, math.ceil(p.sample.min_class_requests / min(shares)))
    life = lifetimes_s(sc)
    if life:
        n = max(n, math.ceil(p.sample.window_lifetimes * max(life.values()) * total_rate_per_s))
    return int(n)


def throughput_bound_per_node(sc: Scenario, cal: Calibration) -> float:
    """An upper bound on the requests/s one node of the scenario's (one) pool can complete
    (one cell of a disaggregated fleet), from the physics alone (no simulation), requests/s.

    Every iteration takes at least ``t1``, the time of the smallest one (one sequence decoding
    one token, uncapped); an iteration holds at most ``max_batch_size`` sequences and
    ``max_batched_tokens`` tokens; a request needs one iteration per output token and its
    prompt's tokens. So a replica completes at most ``min(B / (E[out] t1), M / (E[in] t1))``
    requests/s, the expectations over the workload's requests with requests longer than
    ``max_model_len`` counted as 0 (they are dropped and cost nothing). A cell's prefill pool
    is bound by the prompts only, its decode pool by the outputs only, and the cell by the
    smaller. The true capacity is far lower (a batch of B is much slower than t1); the bound
    only spares the capacity search and an overloaded fleet from simulating rates no node can
    serve. ``cal``: the calibration of the (first) pool; other pools use their own."""
    from simulator.workload.arrivals import Workload

    inp, out = Workload(sc.workload, np.random.SeedSequence(0), sc.base_dir).length_sample(20_000)
    if not sc.disaggregated:
        pool = sc.pool_specs()[0]
        by_out, by_in = _replica_bounds(pool, cal, inp, out)
        return min(by_out, by_in) * pool.replicas_per_node
    prompts = outputs = 0.0
    for pool in sc.pool_specs():
        by_out, by_in = _replica_bounds(pool, pool_calibration(sc, pool), inp, out)
        n = pool.replicas_per_node * pool.deployment.nodes
        if pool.role == "prefill":
            prompts += by_in * n
        elif pool.role == "decode":
            outputs += by_out * n
        else:
            prompts += min(by_out, by_in) * n
            outputs += min(by_out, by_in) * n
    return min(prompts, outputs)


def _replica_bounds(pool: Any, cal: Calibration, inp: np.ndarray,
                    out: np.ndarray) -> tuple[float, float]:
    """(by batch slots over outputs, by batched tokens over prompts): requests/s one replica
    of ``pool`` completes at most (see :func:`throughput_bound_per_node`)."""
    from simulator.physics.iteration import IterationModel
    from simulator.physics.shapes import decode_shape

    d, s = pool.deployment, pool.serving
    prof = pool.profile()
    model = IterationModel.build(pool.model_shape(), d.tp, d.precision, d.kv_precision, cal,
                                 prof.gpu, prof.dvfs())
    t1 = model.cost(decode_shape(1, 1), prof.gpu.tdp_w).time_s
    served = (inp + out) <= s.max_model_len
    e_out, e_in = float((out * served).mean()), float((inp * served).mean())
    if e_out <= 0 or e_in <= 0 or t1 <= 0:
        return math.inf, math.inf
    return s.max_batch_size / (e_out * t1), s.max_batched_tokens / (e_in * t1)


# ------------------------------------------------------------------ one level's result
@dataclass
class LevelResult:
    """Steady-state power of one sampled node at one per-node rate (means over the window and
    over the sampled nodes). Power in W per node; energies per request in J (IT level: GPU +
    host busy share, as the engine attributes them)."""

    rate_per_node: float
    window_s: float
    gpu_prefill_w: float
    gpu_decode_w: float
    busy_gpu_fraction: float  # busy GPU-seconds / (GPUs x window)
    gpus_per_node: int
    idle_w_per_gpu: float
    throughput_per_node: float  # measured completions per node per second in the window
    slo_met: dict[str, int] = field(default_factory=dict)  # per class, measured requests
    considered: dict[str, int] = field(default_factory=dict)  # completed + dropped
    request_energy_j: dict[str, np.ndarray] = field(default_factory=dict)  # completed, measured
    gpu_peak_w: float = 0.0  # highest per-GPU power of any iteration of the run
    gpu_cap_w: float = math.inf  # the GPUs' cap in the run (the lowest pool's)
    link_w: float = 0.0  # KV-transfer links' added host power per node (cell), W
    pool_gpu_w: dict[str, float] = field(default_factory=dict)  # per pool, per cell, W

    def with_power_factor(self, factor: float) -> "LevelResult | None":
        """This level as a run whose busy GPU power (floor, activity, energy per byte) is
        ``factor`` times this run's would be, where no iteration of either comes within a
        billionth of the cap (the iterations' times are then those of this run, and their
        energies ``factor`` times theirs); None where one could (it must be simulated).
        Requests' own energies are not carried over."""
        if factor == 1.0:
            return self
        near = self.gpu_cap_w * (1.0 - 1e-9)
        if not (self.gpu_peak_w < near and self.gpu_peak_w * factor < near):
            return None
        return LevelResult(self.rate_per_node, self.window_s, self.gpu_prefill_w * factor,
                           self.gpu_decode_w * factor, self.busy_gpu_fraction,
                           self.gpus_per_node, self.idle_w_per_gpu, self.throughput_per_node,
                           self.slo_met, self.considered, {}, self.gpu_peak_w * factor,
                           self.gpu_cap_w, self.link_w, self.pool_gpu_w)

    @property
    def gpu_idle_w(self) -> float:
        """Idle GPU power of one node, W: idle GPUs at the calibrated idle power."""
        idle = 1.0 - self.busy_gpu_fraction
        return self.idle_w_per_gpu * self.gpus_per_node * (idle if idle > 1e-9 else 0.0)

    def node_power(self, host: HostPower) -> dict[str, float]:
        """Mean power of one node, W, by part: the host model at the node's mean GPU power
        (exact while the host is linear in it, i.e. below the node rating)."""
        gpu = self.gpu_prefill_w + self.gpu_decode_w + self.gpu_idle_w
        idle = host.node_w(self.gpus_per_node * self.idle_w_per_gpu)
        return {"gpu_prefill_w": self.gpu_prefill_w, "gpu_decode_w": self.gpu_decode_w,
                "gpu_idle_w": self.gpu_idle_w, "host_idle_w": idle,
                "host_busy_w": host.node_w(gpu) - idle + self.link_w}

    def attainment(self, cls: str) -> float:
        n = self.considered.get(cls, 0)
        return self.slo_met.get(cls, 0) / n if n else float("nan")

    def min_attainment(self) -> float:
        vals = [self.attainment(c) for c in self.considered if self.considered[c]]
        return min(vals) if vals else float("nan")

    def min_attainment_interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson score interval (95 % by default) of the worst class's SLO attainment: the
        lowest lower bound and the lowest upper bound over the classes."""
        bounds = []
        for c, n in self.considered.items():
            if n:
                p = self.slo_met.get(c, 0) / n
                centre = (p + z * z / (2 * n)) / (1 + z * z / n)
                half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
                bounds.append((centre - half, centre + half))
        if not bounds:
            return float("nan"), float("nan")
        return min(b[0] for b in bounds), min(b[1] for b in bounds)

    def rescaled(self, rate_per_node: float) -> "LevelResult":
        """This level moved to a nearby rate: busy parts scale with the rate (first order:
        energy per request unchanged), idle GPU power fills the rest."""
        r = rate_per_node / self.rate_per_node if self.rate_per_node > 0 else 0.0
        return LevelResult(rate_per_node, self.window_s, self.gpu_prefill_w * r,
                           self.gpu_decode_w * r, min(1.0, self.busy_gpu_fraction * r),
                           self.gpus_per_node, self.idle_w_per_gpu,
                           self.throughput_per_node * r, self.slo_met, self.considered,
                           self.request_energy_j, self.gpu_peak_w, self.gpu_cap_w,
                           self.link_w * r, self.pool_gpu_w)


def idle_level(gpus_per_node: int, idle_w: float, classes: list[str]) -> LevelResult:
    """A node with no load: every GPU at idle power."""
    return LevelResult(0.0, 0.0, 0.0, 0.0, 0.0, gpus_per_node, idle_w, 0.0,
                       {c: 0 for c in classes}, {c: 0 for c in classes})


def measure(res: Any, rate_per_node: float, keep_requests: bool = True,
            units: int | None = None) -> LevelResult:
    """Reduce a sampled run to its steady-state per-node figures (per cell of a disaggregated
    fleet: ``units`` cells were simulated; default one per node)."""
    w0, w1 = res.window_s
    win = max(w1 - w0, 1e-12)
    led = res.ledger.window(w0, w1, host=False)  # host power is applied per draw, later
    from simulator.metrics.requests import COMPLETED, IN_FLIGHT

    pools = res.fleet.pools
    units = res.fleet.nodes if units is None else units
    t = res.table
    m = ~t["warmup"]
    state = t["state"]
    finish = t["finish_s"]
    in_win = m & (state == COMPLETED) & (finish >= w0) & (finish <= w1)
    pool_gpu_w = {}
    if len(pools) > 1:
        for pl in pools:
            pw = res.ledger.window(w0, w1, pool=pl, host=False)
            pool_gpu_w[pl.spec.name] = (pw.busy_gpu_j + pw.idle_gpu_j) / win / units
    out = LevelResult(
        rate_per_node=rate_per_node, window_s=win,
        gpu_prefill_w=led.prefill_gpu_j / win / units,
        gpu_decode_w=led.decode_gpu_j / win / units,
        busy_gpu_fraction=led.busy_gpu_s / (win * led.gpus),
        gpus_per_node=led.gpus // units,
        idle_w_per_gpu=sum(pl.idle_w * pl.gpus for pl in pools) / led.gpus,
        throughput_per_node=int(in_win.sum()) / win / units,
        gpu_peak_w=max((float(r.rec.array("peak_w").max()) for r in res.fleet.replicas
                        if len(r.rec)), default=0.0),
        gpu_cap_w=min(pl.spec.gpu_cap_w for pl in pools),
        link_w=_link_w(res, w0, w1) / units, pool_gpu_w=pool_gpu_w)
    cls = t["class"]
    met = t["slo_met"]
    energy = t["energy_j"]
    for i, name in enumerate(res.class_names):
        sel = m & (cls == i)
        considered = sel & (state != IN_FLIGHT)
        out.considered[name] = int(considered.sum())
        out.slo_met[name] = int((considered & met).sum())
        if keep_requests:
            out.request_energy_j[name] = energy[sel & (state == COMPLETED)].astype(np.float64)
    return out


@dataclass(frozen=True)
class LevelJob:
    """Everything a worker needs to simulate one level (picklable, no engine objects)."""

    scenario: Scenario
    rate_per_node: float
    nodes: int
    requests: int
    warmup_s: float
    seed: int
    pert: Perturbation = Perturbation()
    keep_requests: bool = True
    trace_rate: float | None = None
    fleet_rate: float | None = None  # replay: the fleet's queries/s (see level_scenario)


#: iteration models kept across the levels a process simulates (a memo of pure models: the
#: levels of one draw, and the nominal day's and the capacity search's, share their physics)
_MODELS = ModelCache()


def run_level(job: LevelJob) -> LevelResult:
    """Simulate one level (top-level function: process pools pickle it by reference)."""
    from simulator.api import simulate

    sc = job.scenario
    cal: Calibration | dict[str, Calibration] = perturb_calibration(level_calibration(sc),
                                                                    job.pert)
    if len(sc.pool_specs()) > 1:  # a disaggregated cell: every pool its own coefficients
        cal = {p.name: perturb_calibration(pool_calibration(sc, p), job.pert)
               for p in sc.pool_specs()}
    lsc = level_scenario(sc, job.rate_per_node, job.nodes, job.requests, job.warmup_s,
                         job.seed, job.pert, job.trace_rate, job.fleet_rate)
    return measure(simulate(lsc, cal, summary=False, models=_MODELS), job.rate_per_node,
                   job.keep_requests, job.nodes)


def _link_w(res: Any, w0: float, w1: float) -> float:
    """Mean power the KV-transfer links add over ``[w0, w1]``, W (0 without a KV mover): the
    exact overlap of every transfer's link interval with the window."""
    c = res.transfers
    if not c or not len(c["end_s"]):
        return 0.0
    t1 = np.asarray(c["end_s"], float)
    t0, p = t1 - np.asarray(c["move_s"], float), np.asarray(c["link_w"], float)
    overlap = np.clip(np.minimum(t1, w1) - np.maximum(t0, w0), 0.0, None)
    return float((overlap * p).sum()) / max(w1 - w0, 1e-12)
