"""Run one scenario's world: arrivals -> router -> replicas (and controllers) until the stop
condition. The engine builds and runs; what the run means (tables, summary) is computed by
:mod:`simulator.metrics` from the :class:`EngineRun` it returns.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from simpy.events import Timeout

from simulator.engine.clock import EngineClock
from simulator.engine.control import Controller, FleetView
from simulator.engine.disagg import DECODE_POLICIES, KVMover
from simulator.engine.fleet import Fleet, ModelCache, build_fleet
from simulator.engine.ledger import Ledger
from simulator.engine.request import DROPPED, Request, RequestLog
from simulator.engine.router import ROUTERS
from simulator.physics.memory import kv_bytes_per_token
from simulator.physics.params import Calibration
from simulator.scenario.schema import Scenario
from simulator.workload.arrivals import Workload

# stable spawn keys of the root SeedSequence, one per random stream
STREAM_WORKLOAD, STREAM_ROUTER = 1, 2
#: every this many ended requests, the records move from their list buffers into typed arrays
FLUSH_EVERY = 4096


@dataclass
class EngineRun:
    """What the engine produced: every request's record (as it ended, or as the run left
    it), the fleet and its ledger."""

    scenario: Scenario
    fleet: Fleet
    ledger: Ledger
    workload: Workload
    requests: RequestLog
    end_s: float
    last_arrival_s: float
    mover: KVMover | None = None  # a disaggregated fleet's KV transfers


class Simulation:
    """One scenario's SimPy world. No global state: many can live in one process.

    ``calibration`` overrides the pools' fitted coefficients (one for every pool, or one per
    pool name); ``progress`` is called with the number of newly ended requests; ``models``
    keeps iteration models across simulations (:class:`~simulator.engine.fleet.ModelCache`).
    """

    def __init__(self, sc: Scenario,
                 calibration: Calibration | Mapping[str, Calibration] | None = None,
                 progress: Callable[[int], None] | None = None,
                 models: ModelCache | None = None):
        self.sc = sc
        self.env = EngineClock()
        root = np.random.SeedSequence(sc.simulation.seed)
        ss = lambda k: np.random.SeedSequence(root.entropy, spawn_key=(k,))  # noqa: E731
        self.workload = Workload(sc.workload, ss(STREAM_WORKLOAD), sc.base_dir)
        self.log = RequestLog()
        self._log_buf = self.log.rows.buf  # RequestLog.add, written out in _on_finish
        self.n_requests = 0  # requests created (arrived) so far; the next one's id
        self.fleet = build_fleet(self.env, sc, self._on_finish, calibration, models)
        self.ledger = Ledger(self.fleet)
        reps = self.fleet.replicas
        # the router sees the replicas new requests may go to: all but decode pools'
        self.entry = reps
        self.mover: KVMover | None = None
        if sc.disaggregated:
            self.entry = [r for p in self.fleet.pools if p.role != "decode" for r in p.replicas]
            self.mover = self._mover()
            if self.mover.link.transfer_power_w > 0.0:
                self.ledger.link_now_w = self.mover.link_now_w
        entry = self.entry
        self.route = ROUTERS[sc.router.policy](len(entry),
                                               np.random.default_rng(ss(STREAM_ROUTER)))
        moved = getattr(self.route, "moved", None)
        if moved is not None:  # a router with its own index of the loads
            if entry is reps:
                for rep in reps:
                    rep.watch_load(moved)
            else:  # positions in the router's list, not fleet indexes
                for pos, rep in enumerate(entry):
                    rep.watch_load(lambda _i, o, t, pos=pos: moved(pos, o, t))
        self.progress = progress
        self.max_len = min(p.serving.max_model_len for p in sc.pool_specs())
        self.n_done = 0
        self.last_arrival_s = 0.0
        # drained runs stop when the last request has ended and no more can arrive, so that a
        # controller's pending timer (a telemetry interval longer than the run) cannot
        # stretch the simulated time past the work
        self._done = self.env.event()
        self._arrivals_over = False
        self._thinking = 0  # closed-loop clients waiting out their think time
        # closed loop
        self._closed_pool: tuple[list, list, list] | None = None
        self._closed_pos = 0
        self.issued = 0

    def _mover(self) -> KVMover:
        """The KV mover of a disaggregated fleet, wired to its prefill and decode replicas."""
        spec = self.sc.transfer_spec()
        pools = self.fleet.pools
        decode = [r for p in pools if p.role == "decode" for r in p.replicas]
        src = next(p for p in pools if p.role == "prefill")
        d = src.spec.deployment
        mover = KVMover(self.env, decode, spec.link_model(),
                        kv_bytes_per_token(src.spec.model_shape(), 1, d.kv_precision),
                        src.spec.model_shape().layers, spec.layerwise_overlap,
                        DECODE_POLICIES[spec.decode_policy])
        for p in pools:
            if p.role == "prefill":
                for r in p.replicas:
                    r.handoff = mover.hand_off
        on_finish = self._on_finish

        def decode_finished(r: Request) -> None:
            on_finish(r)
            mover.decode_finished(r)

        for r in decode:
            r.on_finish = decode_finished
        return mover

    def view(self) -> FleetView:
        """What controllers of this run see (:mod:`simulator.engine.control`)."""
        return FleetView(self.env, self.fleet, self.ledger, self.finished,
                         self.workload.priorities, self.sc.simulation.drain)

    def finished(self) -> bool:
        """Every request has arrived and ended, and no replica works."""
        spec = self.sc.simulation
        if any(r.busy for r in self.fleet.replicas) or self.n_done < self.n_requests:
            return False
        return ((spec.requests is not None and self.n_requests >= spec.requests)
                or (spec.duration_s is not None and self.env.now >= spec.duration_s))

    # --------------------------------------------------------------- arrivals
    def _new_request(self, cls: int, t: float, inp: int, out: int, client: int = -1) -> None:
        r = Request(self.n_requests, cls, t, inp, out, client)
        self.n_requests += 1
        self.last_arrival_s = t
        if inp + out > self.max_len:
            r.state = DROPPED
            r.finish_s = t
            self.log.add(r)
            self._count_done()
            if client >= 0:
                self._client_next(client)
            return
        reps = self.entry
        reps[self.route(reps, inp)].submit(r)

    def _count_done(self) -> None:
        self.n_done += 1
        if self.n_done % FLUSH_EVERY == 0:
            self._flush()
        if self.progress is not None and self.n_done % 1000 == 0:
            self.progress(1000)
        if self.n_done == self.n_requests and self._arrivals_ended():
            self._check_done_soon()

    def _arrivals_ended(self) -> bool:
        if not self.workload.is_closed_loop:
            return self._arrivals_over
        sim = self.sc.simulation
        return ((sim.requests is not None and self.issued >= sim.requests)
                or (sim.duration_s is not None and self.env.now >= sim.duration_s))

    def _check_done_soon(self) -> None:
        """Check, once the current event's work is over, whether the run is done."""
        ev = Timeout(self.env, 0.0)
        ev.callbacks.append(self._check_done)

    def _check_done(self, _ev) -> None:
        if (not self._done.triggered and self.n_done == self.n_requests
                and self._thinking == 0 and self._arrivals_ended()
                and not any(r.busy for r in self.fleet.replicas)):
            self._done.succeed()

    def _open_loop(self) -> None:
        """Arrivals from the pre-sampled stream, merged into the clock's events one at a time
        (:class:`~simulator.engine.clock.ArrivalFeed`): no event object per request."""
        sim = self.sc.simulation
        end = sim.duration_s if sim.duration_s is not None else math.inf
        self._blocks = self.workload.open_blocks(end_s=end, max_requests=sim.requests)
        self._blk: tuple[list, list, list, list] = ([], [], [], [])
        self._pos = 0
        self.env.feed.fire = self._arrive
        self._arrive_next()

    def _arrive_next(self) -> None:
        ts = self._blk[0]
        if self._pos >= len(ts):
            blk = next(self._blocks, None)
            if blk is None or not len(blk):
                self.env.feed.t_s = math.inf
                self._arrivals_over = True
                self._check_done_soon()
                return
            self._blk = (blk.t_s.tolist(), blk.class_idx.tolist(), blk.input_tokens.tolist(),
                         blk.output_tokens.tolist())
            self._pos = 0
            ts = self._blk[0]
        self.env.schedule_arrival(ts[self._pos])

    def _arrive(self) -> None:
        i = self._pos
        ts, cl, ins, outs = self._blk
        self._pos = j = i + 1
        self._new_request(cl[i], ts[i], ins[i], outs[i])
        if j < len(ts):  # _arrive_next and EngineClock.schedule_arrival, written out
            env = self.env
            feed, now, t_s = env.feed, env._now, ts[j]
            feed.t_s = now + (t_s - now if t_s > now else 0.0)
            feed.eid = next(env._eid)
        else:
            self._arrive_next()

    def _sample_closed(self) -> tuple[int, int, int]:
        if self._closed_pool is None or self._closed_pos >= len(self._closed_pool[0]):
            c, i, o = self.workload.sample_requests(4096)
            self._closed_pool = (c.tolist(), i.tolist(), o.tolist())
            self._closed_pos = 0
        p = self._closed_pos
        self._closed_pos += 1
        c, i, o = self._closed_pool
        return c[p], i[p], o[p]

    def _client_next(self, client: int) -> None:
        sim = self.sc.simulation
        if sim.requests is not None and self.issued >= sim.requests:
            return
        if sim.duration_s is not None and self.env.now >= sim.duration_s:
            return
        think = self.workload.think_time_s
        if think > 0:
            self._thinking += 1
            ev = self.env.timeout(think)
            ev.callbacks.append(lambda _ev, c=client: self._think_over(c))
        else:
            self._issue(client)

    def _think_over(self, client: int) -> None:
        self._thinking -= 1
        self._issue(client)

    def _issue(self, client: int) -> None:
        sim = self.sc.simulation
        if sim.requests is not None and self.issued >= sim.requests:
            return
        self.issued += 1
        cls, inp, out = self._sample_closed()
        self._new_request(cls, self.env.now, inp, out, client)

    def _flush(self) -> None:
        self.log.flush()
        for rep in self.fleet.replicas:
            rep.rec.flush()

    def _on_finish(self, r: Request) -> None:
        """A request completed (RequestLog.add and _count_done, written out)."""
        self._log_buf.extend((r.rid, r.cls, r.arrival_s, r.input_tokens, r.output_tokens,
                              r.replica, r.state, r.first_token_s, r.finish_s,
                              r.first_sched_s, r.energy_j, r.preemptions))
        n = self.n_done = self.n_done + 1
        if n % FLUSH_EVERY == 0:
            self._flush()
        if self.progress is not None and n % 1000 == 0:
            self.progress(1000)
        if n == self.n_requests and self._arrivals_ended():
            self._check_done_soon()
        if r.client >= 0:
            self._client_next(r.client)

    # --------------------------------------------------------------- run
    def run(self, controllers: Sequence[Controller] = ()) -> EngineRun:
        """Start the controllers, then the arrivals; run to the stop condition."""
        sim = self.sc.simulation
        env = self.env
        if controllers:
            view = self.view()
            for c in controllers:
                c.start(view)
        if self.workload.is_closed_loop:
            for c in range(self.workload.clients):
                self._issue(c)
        else:
            self._open_loop()
        # The engine allocates millions of short-lived, acyclic objects (events, tuples); the
        # cyclic collector finds nothing in them but costs ~6 % of the run, so it pauses here.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            if sim.drain:
                if self.workload.is_closed_loop and self._arrivals_ended():
                    self._check_done_soon()  # e.g. no client issued anything
                try:
                    env.run(until=self._done)
                except RuntimeError:
                    if self._done.triggered:
                        raise
                    # nothing is scheduled any more but requests remain (they can never be
                    # served): the run ends here, as it always did
            else:
                env.run(until=sim.duration_s)
                for rep in self.fleet.replicas:
                    rep.close()
        finally:
            if gc_was_on:
                gc.enable()
        if self.mover is not None:
            self.ledger.add_link_power(*self.mover.link_power([r.node for r in self.fleet.replicas]))
        self.ledger.close(env.now)
        self._log_in_flight()
        self._flush()
        return EngineRun(self.sc, self.fleet, self.ledger, self.workload, self.log,
                         env.now, self.last_arrival_s, self.mover)

    def _log_in_flight(self) -> None:
        """Record the requests the run left waiting, in prefill or decoding (once each)."""
        seen: set[int] = set()
        for rep in self.fleet.replicas:
            for r in rep.live_requests():
                if r.rid not in seen:
                    seen.add(r.rid)
                    self.log.add(r)
        if self.mover is not None:
            for r in self.mover.in_flight():
                if r.rid not in seen:
                    seen.add(r.rid)
                    self.log.add(r)
