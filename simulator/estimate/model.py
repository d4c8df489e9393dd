"""A fast analytical estimate of a scenario's steady state, from the simulator's own physics.

No events and no queueing: each replica is taken at the steady state of continuous batching
with chunked prefill, where Little's law ties the decode batch to the iteration time and the
iteration's time and energy come from the same :class:`~simulator.physics.iteration.IterationModel`
the engine asks (timing roofline, power, DVFS under the cap). Per replica, with ``lam`` the
served requests/s, ``T`` the mean iteration time while busy, ``u`` the busy fraction:

* decoding sequences (Little): ``B = lam E[o - 1] T / u`` (a request decodes ``o - 1``
  iterations after the one that completes its prompt), their mean context ``c`` the
  decode-step-weighted mean of ``i + j`` over steps ``j = 1..o-1``;
* arrivals per busy iteration ``a = lam T / u``; an iteration carries prefill with
  probability ``f = 1 - exp(-a)`` (Poisson arrivals), at least as often as the prompt tokens
  ``lam E[i]`` need with the per-iteration token budget, each carrying ``a / f`` prompts;
* ``T = f T_mixed(B, prompts) + (1 - f) T_decode(B)`` (solved for ``T``); ``u = 1 - exp(-L)``
  with ``L = lam (E[o - 1] + 1) T`` requests in service (the chance that none is);
* capacity: the rate at which ``B`` reaches the most sequences that fit (``max_batch_size``
  less the prompts in prefill, and the KV cache at the mean context): there ``a`` is fixed, so
  ``T`` is explicit and ``capacity = B_max / (E[o - 1] T)``;
* energy per query: the busy energy per second (GPU + the host's load share, as the engine
  attributes it) over the served rate, times PUE; mean powers from the busy fraction.

Without chunked prefill the prompts run in prefill-only iterations that the decodes sit
out. Lengths come from a deterministic sample of the workload (requests longer than
``max_model_len`` are dropped, as the engine drops them). Pools share the load by replica;
a disaggregated fleet's prefill and decode stages each carry the whole rate, in series
(:func:`estimate`).

It is validated against the simulator on the bundled steady-state scenarios
(:mod:`simulator.estimate.validate`, ``docs/estimate.md``): it screens, it does not replace
the simulation (no queueing: TTFT tails and SLO attainment need the simulator).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from simulator.engine.fleet import plan_pool_memory, pool_calibration
from simulator.engine.kvcache import WATERMARK_FRACTION
from simulator.physics.host import HostPower
from simulator.physics.iteration import IterationModel
from simulator.physics.shapes import IterationShape
from simulator.scenario.schema import PoolSpec, Scenario

#: requests drawn from the workload for its length moments (a stream of its own: fixed)
LENGTH_SAMPLE = 8192
#: standard deviations of the batch's total context a full KV cache keeps free (its
#: fluctuation; 0 would fill it to the mean): one assumption, stated in docs/estimate.md
KV_SPARE_SD = 0.5
#: routers that send a request to an idle replica while there is one
BALANCED_ROUTERS = frozenset({"least_outstanding", "jsq_tokens"})
J_PER_WH = 3600.0
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Lengths:
    """Length moments of the requests a pool serves (tokens). ``served``: the share not
    dropped (prompt + output within ``max_model_len``); ``decode_steps``: E[o - 1];
    ``decode_ctx``: E[sum of the contexts over a request's decode steps]; ``prompt_pairs``:
    E[i (i + 1) / 2] (causal attention pairs of a whole prompt)."""

    served: float
    mean_in: float
    mean_out: float
    decode_steps: float
    decode_ctx: float
    prompt_pairs: float
    decode_ctx_sq: float = 0.0  # E[sum of the squared contexts over a request's decode steps]

    @property
    def ctx_std(self) -> float:
        """Standard deviation of a decoding sequence's context (decode-step weighted)."""
        if self.decode_steps <= 0:
            return 0.0
        return math.sqrt(max(0.0, self.decode_ctx_sq / self.decode_steps - self.mean_ctx ** 2))

    @property
    def mean_ctx(self) -> float:
        """Mean context of a decoding sequence at a random decode iteration, tokens."""
        return self.decode_ctx / self.decode_steps if self.decode_steps > 0 else self.mean_in


#: workload fields that move no length draw of :meth:`Workload.length_sample` (the arrival
#: process's rate and shape, the closed loop's clients): left out of the lengths' cache key
_RATE_FIELDS = frozenset({"rate_per_s", "cv", "hourly_multipliers", "start_hour", "clients",
                          "think_time_s"})


def lengths(sc: Scenario, max_model_len: int) -> Lengths:
    """The workload's length moments from a deterministic sample (:data:`LENGTH_SAMPLE`)."""
    from simulator.workload.arrivals import Workload

    inp, out = Workload(sc.workload, np.random.SeedSequence(sc.simulation.seed),
                        sc.base_dir).length_sample(LENGTH_SAMPLE)
    inp, out = inp.astype(np.float64), out.astype(np.float64)
    keep = (inp + out) <= max_model_len
    kept = int(np.count_nonzero(keep))
    if not kept:
        return Lengths(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    i, o = (inp, out) if kept == len(keep) else (inp[keep], out[keep])
    m = o - 1.0
    # contexts over decode steps j = 1..m are i + j: sum m i + m (m + 1) / 2, sum of squares
    # m i^2 + i m (m + 1) + m (m + 1) (2 m + 1) / 6 (the same floating-point expressions as
    # written out, their common factors computed once; ``x.sum() / n`` is ``x.mean()``)
    mi, mm1 = m * i, m * (m + 1.0)
    return Lengths(served=kept / len(keep), mean_in=float(i.sum() / kept),
                   mean_out=float(o.sum() / kept), decode_steps=float(m.sum() / kept),
                   decode_ctx=float((mi + mm1 / 2.0).sum() / kept),
                   prompt_pairs=float((i * (i + 1.0) / 2.0).sum() / kept),
                   decode_ctx_sq=float((mi * i + mi * (m + 1.0)
                                        + mm1 * (2.0 * m + 1.0) / 6.0).sum() / kept))


@dataclass(frozen=True)
class PoolPhysics:
    """What one pool's replicas cost, from the pool's spec alone (no workload): its iteration
    model, the KV tokens admitted below the watermark, its host and a GPU's idle power."""

    model: IterationModel
    kv_admit_tokens: float
    host: HostPower
    idle_w: float  # one GPU

    @classmethod
    def build(cls, sc: Scenario, pool: PoolSpec) -> "PoolPhysics":
        cal = pool_calibration(sc, pool)
        d = pool.deployment
        prof = pool.profile()
        model = IterationModel.build(pool.model_shape(), d.tp, d.precision, d.kv_precision, cal,
                                     prof.gpu, prof.dvfs(), expert_parallel=d.expert_parallel,
                                     attention_data_parallel=d.attention_data_parallel)
        return cls(model, plan_pool_memory(pool).replica_kv_tokens * (1.0 - WATERMARK_FRACTION),
                   pool.host(sc.facility, cal.power.idle_w), cal.power.idle_w)


def busy_share(mean_in_service: float, replicas: int) -> float:
    """``E[min(N, R)] / R`` for ``N`` Poisson with mean ``mean_in_service``: the share of ``R``
    replicas busy when a balanced router never leaves one idle while another holds two."""
    m, r = mean_in_service, replicas
    if m <= 0.0:
        return 0.0
    if m > r + 12.0 * math.sqrt(r) + 50.0:  # every replica busy, to double precision
        return 1.0
    p = math.exp(-m)  # P(N = 0)
    below = 0.0  # sum over n < r of n P(n)
    cdf = p
    for n in range(1, r):
        p *= m / n
        below += n * p
        cdf += p
    # rounding in the sums can put the share a few ulps above 1 near saturation
    return min(1.0, (below + r * (1.0 - cdf)) / r)


@dataclass
class ReplicaState:
    """The steady state of one replica at a served rate (see the module docstring)."""

    rate_per_s: float          # served requests/s
    iteration_s: float         # mean iteration time while busy
    busy_fraction: float
    decode_batch: float        # sequences decoding, while busy
    prefill_fraction: float    # share of iterations that carry prefill
    mixed_s: float             # a prefill-carrying iteration
    decode_s: float            # a decode-only iteration
    gpu_busy_w: float          # the replica's GPUs while busy (all of them), W
    attributed_w: float        # busy GPU + host load share, per second of wall time, W
    saturated: bool            # the rate is above what the replica can serve


class ReplicaModel:
    """One pool's replica: its physics, limits and the workload's lengths."""

    def __init__(self, sc: Scenario, pool: PoolSpec, lens: Lengths,
                 physics: PoolPhysics | None = None):
        phys = physics if physics is not None else PoolPhysics.build(sc, pool)
        d, s = pool.deployment, pool.serving
        self.model = phys.model
        self.cap_w = pool.gpu_cap_w
        self.tp = d.tp
        self.chunked = s.chunked_prefill
        self.max_batch, self.max_batched_tokens, chunk = pool.replica_limits()
        self.budget = min(self.max_batched_tokens, chunk)
        self.kv_admit_tokens = phys.kv_admit_tokens
        self.kv_slack = s.block_size_tokens - 1
        self.host = phys.host
        self.idle_w = phys.idle_w  # one GPU
        self.lens = lens
        # what the replica does to a request: all of it (mixed), its prompt and first token
        # (prefill: no decodes here), or its other output tokens (decode: no prompts here)
        self.role = pool.role
        self.decode_steps = 0.0 if self.role == "prefill" else lens.decode_steps
        self._capacity: float | None = None  # capacity(), kept (it does not depend on the rate)
        self._lone_prefill_s: float | None = None

    # ------------------------------------------------------------------ iterations
    def _cost(self, prefill_tokens: float, prompts: float, decodes: float) -> tuple[float, float]:
        """(time_s, GPU energy of the whole replica J) of an iteration with ``prompts`` whole
        prompts (``prefill_tokens`` in all) and ``decodes`` decoding sequences."""
        L = self.lens
        shape = IterationShape(prefill_tokens, prompts * L.prompt_pairs, 0, prompts,
                               decodes + prompts, decodes, decodes * L.mean_ctx)
        c = self.model.cost(shape, self.cap_w)
        return c.time_s, c.energy_j * self.tp

    def _prefill(self, a: float, lam_tokens_per_iter: float) -> tuple[float, float]:
        """(share of iterations with prefill, prompts each) for ``a`` arrivals per iteration
        needing ``lam_tokens_per_iter`` prompt tokens per iteration."""
        if a <= 0.0 or self.role == "decode":
            return 0.0, 0.0
        f = -math.expm1(-a)
        f = min(1.0, max(f, lam_tokens_per_iter / self.budget))
        return f, a / f

    def _iteration(self, a: float, batch: float) -> tuple[float, float, float, float, float]:
        """Mean iteration (time, energy) while busy, prefill share, mixed and decode time, at
        ``a`` arrivals per iteration and a decode batch of ``batch``."""
        L = self.lens
        f, prompts = self._prefill(a, a * L.mean_in)
        t_d, e_d = self._cost(0.0, 0.0, batch) if batch > 0 else (0.0, 0.0)
        if f > 0.0:
            decodes = batch if self.chunked else 0.0
            t_m, e_m = self._cost(prompts * L.mean_in, prompts, decodes)
        else:
            t_m = e_m = 0.0
        return f * t_m + (1 - f) * t_d, f * e_m + (1 - f) * e_d, f, t_m, t_d

    def kv_batch_limit(self) -> float:
        """Decoding sequences the KV cache holds below the watermark: ``B`` contexts of mean
        ``c`` and standard deviation ``s`` (independent) with :data:`KV_SPARE_SD` standard
        deviations of their sum to spare, ``B (c + slack) + z s sqrt(B) = capacity`` (a cache
        filled to the mean would preempt half the time)."""
        c = self.lens.mean_ctx + self.kv_slack
        sd = KV_SPARE_SD * self.lens.ctx_std
        x = (-sd + math.sqrt(sd * sd + 4.0 * c * self.kv_admit_tokens)) / (2.0 * c)
        return x * x

    # ------------------------------------------------------------------ steady states
    def at_rate(self, lam: float, replicas: int = 1, balanced: bool = False) -> ReplicaState:
        """The steady state of one of ``replicas`` replicas that share ``lam x replicas``
        served requests/s (a fixed point in the iteration time, by secant steps);
        ``saturated`` when it would need more than fits.

        The requests in service are Poisson (M/G/inf) with mean ``L``. A ``balanced`` router
        (least outstanding requests or tokens) spreads them over the replicas, so
        ``min(N, replicas)`` replicas are busy; any other router splits the arrivals at random
        (each replica its own Poisson share)."""
        L = self.lens
        if lam <= 0.0 or L.decode_steps <= 0 and L.mean_in <= 0:
            return ReplicaState(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
        steps = self.decode_steps
        # iterations a request is in service here: its decode steps, after the one that
        # completes its prompt (none of those on a decode replica, none of these on a prefill one)
        in_service = steps if self.role == "decode" else steps + 1.0

        last: list[Any] = [None, None]  # the latest (t, state(t)): the loop's last is the answer

        def state(t: float) -> tuple[float, tuple, float, float, float]:
            if t == last[0]:
                return last[1]
            last[0], last[1] = t, _state(t)
            return last[1]

        def _state(t: float) -> tuple[float, tuple, float, float, float]:
            occupied = lam * in_service * t  # requests in service per replica
            u = busy_share(occupied * replicas, replicas) if balanced else \
                (-math.expm1(-occupied) if occupied < 50 else 1.0)
            a = lam * t / u
            f, _ = self._prefill(a, a * L.mean_in)
            decoding_share = 1.0 if self.chunked else max(1.0 - f, 1e-9)
            batch = lam * steps * t / (u * decoding_share)
            it = self._iteration(a, batch)
            return it[0], it, u, a, batch

        if self._lone_prefill_s is None:  # a lone request's prefill (decode replica: step)
            self._lone_prefill_s = (self._cost(0.0, 0.0, 1.0) if self.role == "decode"
                                    else self._cost(L.mean_in, 1.0, 0.0))[0]
        t0 = self._lone_prefill_s
        t1 = state(t0)[0]
        x0, g0 = t0, t1 - t0
        x1 = t1
        for _ in range(60):
            g1 = state(x1)[0] - x1
            if abs(g1) <= 1e-7 * x1:  # far below the model's own error
                break
            if g1 == g0:
                x0, g0, x1 = x1, g1, state(x1)[0]
                continue
            x2 = x1 - g1 * (x1 - x0) / (g1 - g0)
            if not (x2 > 0) or x2 > 1e6 * t0:  # diverging: the rate cannot be served
                x2 = 0.5 * (x1 + state(x1)[0])
            x0, g0, x1 = x1, g1, x2
        t, it, u, a, batch = state(x1)
        t_mean, e_mean, f, t_m, t_d = it
        gpu_busy_w = e_mean / t_mean
        attributed = u * (gpu_busy_w + self.host.load_factor * (gpu_busy_w - self.idle_w * self.tp))
        limit = min(self.max_batch - (a / f if f > 0 else 0.0), self.kv_batch_limit())
        return ReplicaState(lam, t_mean, u, batch, f, t_m, t_d, gpu_busy_w, attributed,
                            saturated=batch > limit)

    def capacity(self) -> float:
        """The most requests/s one replica completes (its batch full: the iteration time is
        explicit there, see the module docstring); computed once per model."""
        if self._capacity is None:
            self._capacity = self._full_batch_rate()
        return self._capacity

    def _full_batch_rate(self) -> float:
        L = self.lens
        if self.role == "decode":  # decode steps only, the batch full
            b = max(1.0, min(self.max_batch, self.kv_batch_limit()))
            return b / (L.decode_steps * self._cost(0.0, 0.0, b)[0])
        if self.decode_steps <= 0:
            # one-token outputs: prefill-bound
            t, _ = self._cost(self.max_batched_tokens, self.max_batched_tokens / max(L.mean_in, 1.0), 0.0)
            return self.max_batched_tokens / max(L.mean_in, 1.0) / t
        b = self.max_batch
        for _ in range(3):  # prompts in prefill take batch slots too
            a = b / L.decode_steps if self.chunked else b / L.decode_steps
            f, prompts = self._prefill(a, a * L.mean_in)
            b = max(1.0, min(self.max_batch - prompts, self.kv_batch_limit()))
        a = b / L.decode_steps
        t_mean, *_ = self._iteration(a, b)
        f, _ = self._prefill(a, a * L.mean_in)
        decoding_share = 1.0 if self.chunked else max(1.0 - f, 1e-9)
        return b * decoding_share / (L.decode_steps * t_mean)


class EstimateCache:
    """What :func:`estimate` derives from a scenario that the points of a sweep share, kept
    across calls (one cache for the points of one sweep, passed explicitly; never a global):

    * the length moments, by the workload less the fields that move no length draw
      (:data:`_RATE_FIELDS`), the seed, the scenario's folder and ``max_model_len``;
    * each pool's :class:`PoolPhysics`, by the pool, the facility, the scenario's calibration
      and folder (its iteration model keeps its per-shape caches);
    * each pool's :class:`ReplicaModel`, by those two keys (it keeps its capacity and a lone
      prompt's prefill, which do not depend on the rate).

    Each is a pure function of its key, so results are the same with or without a cache (a
    trace or length file edited between two calls is not seen). The least recently used of
    more than ``entries`` of each kind go."""

    def __init__(self, entries: int = 16):
        self.entries = entries
        self._lengths: dict[tuple[Any, ...], Lengths] = {}
        self._physics: dict[tuple[Any, ...], PoolPhysics] = {}
        self._replicas: dict[tuple[Any, ...], ReplicaModel] = {}

    def replica(self, sc: Scenario, pool: PoolSpec) -> ReplicaModel:
        """The replica model of ``pool`` in ``sc``, as ``ReplicaModel(sc, pool, lengths(...))``."""
        mml = pool.serving.max_model_len
        base = str(sc.base_dir)
        lkey = (sc.workload.model_dump_json(exclude=_RATE_FIELDS), sc.simulation.seed, base, mml)
        pkey = (pool.model_dump_json(), sc.facility.model_dump_json(), sc.simulation.calibration,
                base)

        def build() -> ReplicaModel:
            lens = self._get(self._lengths, lkey, lambda: lengths(sc, mml))
            phys = self._get(self._physics, pkey, lambda: PoolPhysics.build(sc, pool))
            return ReplicaModel(sc, pool, lens, phys)

        return self._get(self._replicas, (pkey, lkey), build)

    def _get(self, store: dict, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        hit = store.pop(key, None)
        if hit is None:
            hit = make()
            while len(store) >= self.entries:
                store.pop(next(iter(store)))
        store[key] = hit  # most recent last
        return hit


@dataclass
class Estimate:
    """The analytical estimate of a scenario (fleet figures; ``pools`` per pool)."""

    scenario: str
    capacity_requests_per_s: float
    offered_requests_per_s: float
    served_requests_per_s: float
    load: float                            # offered / capacity
    saturated: bool
    energy_per_query_wh_mean: float        # facility, attributed (as the simulator's)
    mean_batch_size: float                 # decoding sequences per busy replica
    tpot_s: float                          # mean time per output token (no queueing)
    ttft_s_no_queue: float                 # half an iteration's wait + a prefill iteration
    gpu_busy_fraction: float
    gpu_power_w_mean: float
    node_power_w_mean: float
    facility_power_w_mean: float
    energy_facility_wh_per_day: float
    pools: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _offered_rate(sc: Scenario) -> float | None:
    """Requests/s the workload offers (None for closed loop)."""
    w = sc.workload
    if w.arrival == "closed_loop":
        return None
    if w.arrival == "replay":
        from simulator.workload.arrivals import Workload

        rate = Workload(w, np.random.SeedSequence(0), sc.base_dir).mean_rate_per_s()
        return float(rate or 0.0)
    m = 1.0 if w.hourly_multipliers is None else float(np.mean(w.hourly_multipliers))
    return float(w.rate_per_s) * m


def _link_j_per_request(sc: Scenario, models: list[tuple[PoolSpec, "ReplicaModel", int]],
                        mean_in: float) -> tuple[float, float]:
    """A disaggregated fleet's KV move of a mean prompt: (energy its links add, J; its
    time, s), as the engine's KV mover computes them (``Link.time_s`` is affine in the bytes,
    so the mean prompt's is the mean of the requests')."""
    from simulator.physics.memory import kv_bytes_per_token

    spec = sc.transfer_spec()
    link = spec.link_model()
    src = next(p for p, _, _ in models if p.role == "prefill")
    d = src.deployment
    gpus = min(d.tp, min(p.deployment.tp for p, _, _ in models if p.role == "decode"))
    move_s = link.time_s(mean_in * kv_bytes_per_token(src.model_shape(), 1, d.kv_precision),
                         gpus)
    return link.transfer_power_w * gpus * move_s, move_s


def estimate(sc: Scenario, cache: EstimateCache | None = None) -> Estimate:
    """The analytical steady state of ``sc`` (see the module docstring). ``cache`` keeps what
    a sweep's points share (:class:`EstimateCache`); the result is the same without it.

    A disaggregated fleet (pools of role prefill and decode): the router spreads the arrivals
    over the prefill replicas (and any mixed ones); a request sent to a prefill replica (its
    prompt and first token) goes on to a decode replica (its other tokens), so that chain
    completes what its slower stage does, and such a query's energy is its share of both
    stages plus what the links add to move its KV cache."""
    pools = sc.pool_specs()
    disagg = any(p.role == "prefill" for p in pools)  # sc.disaggregated, from the pools at hand
    pue = sc.facility.pue
    cache = cache if cache is not None else EstimateCache()  # pools of one length share theirs
    models = [(pool, cache.replica(sc, pool), pool.deployment.nodes * pool.replicas_per_node)
              for pool in pools]
    caps = [m.capacity() for _, m, _ in models]
    if disagg:  # prefill then decode in series (the slower stage), mixed pools beside them
        def of(role: str) -> tuple[int, float]:  # (replicas, capacity) of a role's pools
            return (sum(n for p, _, n in models if p.role == role),
                    sum(c * n for c, (p, _, n) in zip(caps, models) if p.role == role))
        (n_prefill, cap_prefill), (n_decode, cap_decode), (n_mixed, cap_mixed) = (
            of("prefill"), of("decode"), of("mixed"))
        n_entry = n_prefill + n_mixed  # the replicas the router sends arrivals to
        capacity = cap_mixed + min(cap_prefill, cap_decode)
    else:
        replicas = sum(n for _, _, n in models)
        capacity = sum(c * n for c, (_, _, n) in zip(caps, models))
    offered = _offered_rate(sc)
    if offered is None:  # closed loop: the clients keep min(clients, batch) in service
        clients = sc.workload.clients or 0
        offered = min(capacity, capacity * clients / max(1.0, sum(
            min(m.max_batch, m.kv_batch_limit()) * n for p, m, n in models
            if p.role != "prefill")))
    it_w = gpu_w_sum = busy_gpu = attributed = served_total = moved = 0.0
    batch_w = tpot_w = ttft_w = 0.0
    gpus = nodes = 0
    out_pools: dict[str, dict[str, float]] = {}
    balanced = sc.router.policy in BALANCED_ROUTERS
    for (pool, m, n_rep), cap in zip(models, caps):
        if disagg and pool.role == "decode":  # the prefill replicas' share; placement spreads it
            lam_rep = offered * n_prefill / n_entry / n_decode * m.lens.served
            st = m.at_rate(min(lam_rep, cap), n_rep, True)
        elif disagg:
            lam_rep = offered / n_entry * m.lens.served
            st = m.at_rate(min(lam_rep, cap), n_rep, balanced)
        else:
            lam_rep = offered / replicas * m.lens.served
            st = m.at_rate(min(lam_rep, cap), n_rep, balanced)
        served = st.rate_per_s * n_rep
        gpn = pool.gpus_per_node
        unused = gpn - pool.replicas_per_node * m.tp
        # mean GPU power of one node: its replicas (busy part, idle otherwise) + unused GPUs
        rep_gpu_w = st.busy_fraction * st.gpu_busy_w + (1 - st.busy_fraction) * m.idle_w * m.tp
        node_gpu_w = pool.replicas_per_node * rep_gpu_w + unused * m.idle_w
        node_w = node_gpu_w + m.host.node_w(node_gpu_w)
        pn = pool.deployment.nodes
        it_w += node_w * pn
        gpu_w_sum += node_gpu_w * pn
        gpus += gpn * pn
        nodes += pn
        busy_gpu += st.busy_fraction * m.tp * n_rep
        attributed += st.attributed_w * n_rep
        if pool.role != "prefill":  # a query counts where it completes
            served_total += served
            moved += served if pool.role == "decode" else 0.0
            batch_w += st.decode_batch * served
            tpot_w += st.iteration_s * served
        if pool.role != "decode":  # where its first token comes
            ttft_w += (0.5 * st.iteration_s + st.mixed_s) * served
        out_pools[pool.name] = {
            "capacity_requests_per_s": cap * n_rep, "served_requests_per_s": served,
            "mean_batch_size": st.decode_batch, "iteration_s": st.iteration_s,
            "busy_fraction": st.busy_fraction, "gpu_busy_w_per_replica": st.gpu_busy_w,
            "node_power_w_mean": node_w, "saturated": float(lam_rep > cap * (1 + 1e-9))}
    if disagg:  # the KV moves of the decode replicas' queries: link energy (theirs) and time
        lens = next(m.lens for p, m, _ in models if p.role == "prefill")
        link_j, move_s = _link_j_per_request(sc, models, lens.mean_in)
        attributed += link_j * moved
        it_w += link_j * moved
        ttft_w += move_s * moved
    w = max(served_total, 1e-300)
    return Estimate(
        scenario=sc.name, capacity_requests_per_s=capacity, offered_requests_per_s=offered,
        served_requests_per_s=served_total, load=offered / capacity if capacity > 0 else math.inf,
        saturated=any(p["saturated"] for p in out_pools.values()),
        energy_per_query_wh_mean=attributed / w * pue / J_PER_WH if served_total > 0 else math.nan,
        mean_batch_size=batch_w / w, tpot_s=tpot_w / w, ttft_s_no_queue=ttft_w / w,
        gpu_busy_fraction=busy_gpu / gpus if gpus else 0.0,
        gpu_power_w_mean=gpu_w_sum / gpus if gpus else 0.0,
        node_power_w_mean=it_w / nodes if nodes else 0.0,
        facility_power_w_mean=it_w * pue,
        energy_facility_wh_per_day=it_w * pue * SECONDS_PER_DAY / J_PER_WH,
        pools=out_pools)
