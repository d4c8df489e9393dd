"""Run one scenario: arrivals -> router -> replicas, until the stop condition; collect results."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simpy
from simpy.events import Timeout

from simulator.engine.fleet import Fleet, build_fleet
from simulator.engine.request import DONE, DROPPED, Request
from simulator.engine.router import ROUTERS
from simulator.physics.params import Calibration, load_calibration
from simulator.scenario.schema import Scenario
from simulator.workload.arrivals import Workload

# stable spawn keys of the root SeedSequence, one per random stream
STREAM_WORKLOAD, STREAM_ROUTER = 1, 2


@dataclass
class RunResult:
    """Everything a run produced. ``summary`` is the ``summary.json`` contract."""

    scenario: Scenario
    calibration: Calibration
    fleet: Fleet
    requests: pd.DataFrame
    end_s: float
    window_s: tuple[float, float]
    class_names: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    capping: Any = None  # simulator.capping.controller.CappingController, if the scenario caps
    timelines: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False)  # node_timeline cache


class Simulation:
    """One scenario's SimPy world. No global state: many can live in one process."""

    def __init__(self, sc: Scenario, calibration: Calibration | None = None,
                 progress: Callable[[int], None] | None = None):
        self.sc = sc
        self.cal = calibration if calibration is not None else load_calibration(sc.simulation.calibration and _resolve(sc, sc.simulation.calibration))
        self.env = simpy.Environment()
        root = np.random.SeedSequence(sc.simulation.seed)
        ss = lambda k: np.random.SeedSequence(root.entropy, spawn_key=(k,))  # noqa: E731
        self.workload = Workload(sc.workload, ss(STREAM_WORKLOAD), sc._base_dir)
        self.requests: list[Request] = []
        self.fleet = build_fleet(self.env, sc, self.cal, self._on_finish)
        from simulator.capping.controller import attach

        self.capping = attach(self)  # static caps and the row power controller (or None)
        self.route = ROUTERS[sc.router.policy](len(self.fleet.replicas), np.random.default_rng(ss(STREAM_ROUTER)))
        self.progress = progress
        self.max_len = sc.serving.max_model_len
        self.n_done = 0
        self.last_arrival_s = 0.0
        # closed loop
        self._closed_pool: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._closed_pos = 0
        self.issued = 0

    # --------------------------------------------------------------- arrivals
    def _new_request(self, cls: int, t: float, inp: int, out: int, client: int = -1) -> None:
        r = Request(len(self.requests), cls, t, inp, out, client)
        self.requests.append(r)
        self.last_arrival_s = t
        if inp + out > self.max_len:
            r.state = DROPPED
            r.finish_s = t
            self._count_done()
            if client >= 0:
                self._client_next(client)
            return
        reps = self.fleet.replicas
        reps[self.route(reps, inp)].submit(r)

    def _count_done(self) -> None:
        self.n_done += 1
        if self.progress is not None and self.n_done % 1000 == 0:
            self.progress(1000)

    def _open_loop(self) -> None:
        """Arrivals as a chain of Timeout callbacks, one event per request."""
        sim = self.sc.simulation
        end = sim.duration_s if sim.duration_s is not None else math.inf
        self._blocks = self.workload.open_blocks(end_s=end, max_requests=sim.requests)
        self._blk: tuple[list, list, list, list] = ([], [], [], [])
        self._pos = 0
        self._arrive_cb = self._arrive  # one bound method for every arrival event
        self._arrive_next()

    def _arrive_next(self) -> None:
        ts = self._blk[0]
        if self._pos >= len(ts):
            blk = next(self._blocks, None)
            if blk is None:
                return
            self._blk = (blk.t_s.tolist(), blk.class_idx.tolist(), blk.input_tokens.tolist(),
                         blk.output_tokens.tolist())
            self._pos = 0
            ts = self._blk[0]
            if not ts:
                return
        ev = Timeout(self.env, max(0.0, ts[self._pos] - self.env.now))
        ev.callbacks.append(self._arrive_cb)

    def _arrive(self, _ev) -> None:
        i = self._pos
        ts, cl, ins, outs = self._blk
        self._pos = i + 1
        self._new_request(cl[i], ts[i], ins[i], outs[i])
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
            ev = self.env.timeout(think)
            ev.callbacks.append(lambda _ev, c=client: self._issue(c))
        else:
            self._issue(client)

    def _issue(self, client: int) -> None:
        sim = self.sc.simulation
        if sim.requests is not None and self.issued >= sim.requests:
            return
        self.issued += 1
        cls, inp, out = self._sample_closed()
        self._new_request(cls, self.env.now, inp, out, client)

    def _on_finish(self, r: Request) -> None:
        self._count_done()
        if r.client >= 0:
            self._client_next(r.client)

    # --------------------------------------------------------------- run
    def run(self) -> RunResult:
        sim = self.sc.simulation
        env = self.env
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
                env.run()
            else:
                env.run(until=sim.duration_s)
                for rep in self.fleet.replicas:
                    rep.close()
        finally:
            if gc_was_on:
                gc.enable()
        end_s = env.now
        from simulator.metrics.summary import request_table, summarise

        table = request_table(self)
        w0, w1 = measurement_window(self, table)
        res = RunResult(self.sc, self.cal, self.fleet, table, end_s, (w0, w1),
                        list(self.workload.class_names))
        res.summary = summarise(res)
        if self.capping is not None:
            res.capping = self.capping
            res.summary["capping"] = self.capping.summary(res)
        return res


def measurement_window(sim: Simulation, table: pd.DataFrame) -> tuple[float, float]:
    """Steady-state window: from the end of warm-up to the last arrival (or the duration)."""
    spec = sim.sc.simulation
    measured = table[~table["warmup"]]
    w0 = float(measured["arrival_s"].min()) if len(measured) else 0.0
    w0 = max(w0, spec.warmup_s)
    w1 = sim.last_arrival_s if spec.drain else float(spec.duration_s or sim.env.now)
    if w1 <= w0:
        w1 = sim.env.now
    return w0, max(w1, w0)


def _resolve(sc: Scenario, path: str) -> str:
    from pathlib import Path

    p = Path(path)
    return str(p if p.is_absolute() else sc._base_dir / p)


def simulate(sc: Scenario, calibration: Calibration | None = None,
             progress: Callable[[int], None] | None = None) -> RunResult:
    """Run a validated scenario and return its results (see :class:`RunResult`)."""
    return Simulation(sc, calibration, progress).run()
