"""Global routers: which replica receives a request.

A router is built by a factory ``(n_replicas, rng) -> route``, where
``route(loads: ReplicaLoads, input_tokens) -> replica index``. Policies see a read-only view
of the replicas' load, never the engine. Ties go to the lowest index (deterministic).

A router may also have a method ``moved(index, outstanding, outstanding_tokens)``: the run
then has every replica call it whenever its load changes, so that the router keeps its own
index of the loads instead of reading every replica per request. The least-loaded routers
do this above :data:`SCAN_MAX` replicas (:class:`LeastLoaded`: a heap, O(log n) per change
and amortised O(log n) per route); up to it they scan (O(1) with the bound). Every router
is O(1) or O(log n) per request; ``tests/engine/test_policies.py`` checks that the heap and
the scan choose the same replica after any sequence of load changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from heapq import heapify, heappop, heappush
from typing import Protocol

import numpy as np

#: up to this many replicas a least-loaded router scans them; above, it keeps a heap
SCAN_MAX = 8


class ReplicaLoad(Protocol):
    """What a router may read about a replica."""

    @property
    def outstanding(self) -> int: ...  # requests routed here and not finished

    @property
    def outstanding_tokens(self) -> int: ...  # tokens still to compute (prompt + output)


Route = Callable[[Sequence[ReplicaLoad], int], int]


def round_robin(n: int, rng: np.random.Generator) -> Route:
    state = {"next": 0}

    def route(replicas: Sequence[ReplicaLoad], input_tokens: int) -> int:
        i = state["next"]
        state["next"] = (i + 1) % n
        return i

    return route


def _scan(attr: str) -> Route:
    """The lowest-index replica with the least ``attr`` (a scan over every replica)."""
    if attr == "outstanding":
        def route(replicas: Sequence[ReplicaLoad], input_tokens: int) -> int:
            best, best_load = 0, replicas[0].outstanding
            for i in range(1, len(replicas)):
                load = replicas[i].outstanding
                if load < best_load:
                    best, best_load = i, load
            return best
    else:
        def route(replicas: Sequence[ReplicaLoad], input_tokens: int) -> int:
            best, best_load = 0, replicas[0].outstanding_tokens
            for i in range(1, len(replicas)):
                load = replicas[i].outstanding_tokens
                if load < best_load:
                    best, best_load = i, load
            return best
    return route


class LeastLoaded:
    """The lowest-index replica with the least load (requests or tokens), from a heap of
    ``(load, index)`` entries kept up to date by :meth:`moved`.

    An entry is current while its load is the replica's load; others are dropped when they
    reach the top, and the heap is rebuilt from the current loads when it holds more than
    four entries per replica (so it stays O(n) in size, every operation O(log n) amortised).
    """

    __slots__ = ("tokens", "load", "heap")

    def __init__(self, n: int, tokens: bool):
        self.tokens = tokens  # by outstanding tokens (jsq_tokens), else by requests
        self.load = [0] * n
        self.heap = [(0, i) for i in range(n)]  # sorted, hence a heap

    def moved(self, index: int, outstanding: int, outstanding_tokens: int) -> None:
        load = outstanding_tokens if self.tokens else outstanding
        self.load[index] = load
        heap = self.heap
        heappush(heap, (load, index))
        if len(heap) > 4 * len(self.load) + 64:
            heap[:] = [(x, i) for i, x in enumerate(self.load)]
            heapify(heap)

    def __call__(self, replicas: Sequence[ReplicaLoad], input_tokens: int) -> int:
        heap, load = self.heap, self.load
        while True:
            x, i = heap[0]
            if load[i] == x:
                return i
            heappop(heap)


def least_outstanding(n: int, rng: np.random.Generator) -> Route:
    """Fewest requests routed and not finished."""
    return _scan("outstanding") if n <= SCAN_MAX else LeastLoaded(n, tokens=False)


def jsq_tokens(n: int, rng: np.random.Generator) -> Route:
    """Fewest tokens still to compute (join the shortest queue by tokens)."""
    return _scan("outstanding_tokens") if n <= SCAN_MAX else LeastLoaded(n, tokens=True)


ROUTERS: dict[str, Callable[[int, np.random.Generator], Route]] = {
    "round_robin": round_robin,
    "least_outstanding": least_outstanding,
    "jsq_tokens": jsq_tokens,
}
