"""The engine's clock: SimPy's environment, with the engine's own two kinds of event taken
without SimPy event objects.

Every event of a run is still ordered by SimPy's key ``(time, priority, id)`` on SimPy's one
heap, and SimPy events (controllers' processes and timeouts, ``run(until=...)``) are processed
exactly as :meth:`simpy.Environment.step` processes them. Two kinds are cheaper:

* **replica boundaries**: a replica's end of iteration (or of a coalesced decode jump) is a
  heap entry whose event is the replica's bound ``_wake`` method, called with the entry's id;
  no ``Timeout``, no callback list. A replica has one live boundary at a time; an entry that
  a cut jump superseded is recognised by its id and dropped without a call;
* **open-loop arrivals**: the pre-sampled arrival stream (:class:`ArrivalFeed`) is merged
  with the heap by the same key instead of being pushed on it, one arrival at a time.

Ids are drawn from SimPy's own counter at the moment the equivalent ``Timeout`` would have
been created, so ties between equal times resolve exactly as they would with SimPy events.
"""

from __future__ import annotations

from heapq import heappop, heappush
from types import MethodType
from typing import Any, Callable

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, URGENT, Event

_METHOD = MethodType
INF = float("inf")


class ArrivalFeed:
    """The next open-loop arrival: its event time ``t_s`` (``inf`` when none is due), its
    id, and ``fire`` (called at that time)."""

    __slots__ = ("t_s", "eid", "fire")

    def __init__(self, fire: Callable[[], None] | None):
        self.t_s = INF
        self.eid = 0
        self.fire = fire


class EngineClock(simpy.Environment):
    """A :class:`simpy.Environment` whose :meth:`step` also takes replica boundaries and
    open-loop arrivals (see the module docstring). Nothing else differs."""

    def __init__(self, initial_time: float = 0.0):
        super().__init__(initial_time)
        self.feed = ArrivalFeed(None)  # no arrival until a workload sets ``fire``

    def boundary(self, delay_s: float, wake: Callable[[int], None]) -> int:
        """Schedule ``wake(id)`` after ``delay_s`` (at ``now + delay_s``, as a Timeout would
        be); returns the entry's id."""
        eid = next(self._eid)
        heappush(self._queue, (self._now + delay_s, NORMAL, eid, wake))
        return eid

    def boundary_at(self, t_s: float, wake: Callable[[int], None]) -> int:
        """Schedule ``wake(id)`` at ``t_s`` (not before now); returns the entry's id."""
        eid = next(self._eid)
        heappush(self._queue, (t_s, NORMAL, eid, wake))
        return eid

    def schedule_arrival(self, t_s: float) -> None:
        """The feed's next arrival happens at ``t_s`` (not before now)."""
        feed = self.feed
        now = self._now
        feed.t_s = now + (t_s - now if t_s > now else 0.0)
        feed.eid = next(self._eid)

    def peek(self) -> float:
        t = self._queue[0][0] if self._queue else INF
        return min(t, self.feed.t_s)

    def step(self) -> None:
        q = self._queue
        feed = self.feed
        ft = feed.t_s
        if ft != INF:  # an arrival is due: it goes first if its key is the smallest
            if not q:
                self._now = ft
                feed.fire()
                return
            top = q[0]
            t0 = top[0]
            if ft < t0 or (ft == t0 and (NORMAL, feed.eid) < (top[1], top[2])):
                self._now = ft
                feed.fire()
                return
        try:
            self._now, _, eid, event = heappop(q)
        except IndexError:
            raise EmptySchedule from None
        if event.__class__ is _METHOD:  # a replica boundary
            event(eid)
            return
        _process(self, event)

    def run(self, until: Any = None) -> Any:
        """:meth:`simpy.Environment.run`, with :meth:`step` written out in its loop."""
        if until is not None:
            if not isinstance(until, Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(
                        f"until ({at}) must be greater than the current simulation time")
                until = Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self.now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        try:
            self._loop()
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(f'No scheduled events left but "until" event was not'
                                   f" triggered: {until}") from None
        return None

    def _loop(self) -> None:
        """Process events until one stops the run (:meth:`step`, repeated, in one frame)."""
        q = self._queue
        feed = self.feed
        while True:
            ft = feed.t_s
            if ft != INF:
                if not q:
                    self._now = ft
                    feed.fire()
                    continue
                top = q[0]
                t0 = top[0]
                if ft < t0 or (ft == t0 and (NORMAL, feed.eid) < (top[1], top[2])):
                    self._now = ft
                    feed.fire()
                    continue
            if not q:
                raise EmptySchedule
            self._now, _, eid, event = heappop(q)
            if event.__class__ is _METHOD:  # a replica boundary
                event(eid)
            else:
                _process(self, event)


def _process(env: simpy.Environment, event: Any) -> None:
    """What :meth:`simpy.Environment.step` does with a popped SimPy event."""
    from simpy.events import EventPriority

    callbacks, event.callbacks = event.callbacks, None
    try:
        for callback in callbacks:
            callback(event)
    except StopSimulation:
        event.callbacks = callbacks[callbacks.index(callback) + 1:]
        env.schedule(event, EventPriority(-1))
        raise
    if not event._ok and not hasattr(event, "_defused"):
        exc = type(event._value)(*event._value.args)
        exc.__cause__ = event._value
        raise exc
