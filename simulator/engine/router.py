"""Global routers: which replica receives a request.

A router is built by a factory ``(n_replicas, rng) -> route``, where
``route(loads: ReplicaLoads, input_tokens) -> replica index``. Policies see a read-only view
of the replicas' load, never the engine. Ties go to the lowest index (deterministic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


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


def least_outstanding(n: int, rng: np.random.Generator) -> Route:
    def route(replicas: Sequence[ReplicaLoad], input_tokens: int) -> int:
        best, best_load = 0, replicas[0].outstanding
        for i in range(1, n):
            load = replicas[i].outstanding
            if load < best_load:
                best, best_load = i, load
        return best

    return route


def jsq_tokens(n: int, rng: np.random.Generator) -> Route:
    def route(replicas: Sequence[ReplicaLoad], input_tokens: int) -> int:
        best, best_load = 0, replicas[0].outstanding_tokens
        for i in range(1, n):
            load = replicas[i].outstanding_tokens
            if load < best_load:
                best, best_load = i, load
        return best

    return route


ROUTERS: dict[str, Callable[[int, np.random.Generator], Route]] = {
    "round_robin": round_robin,
    "least_outstanding": least_outstanding,
    "jsq_tokens": jsq_tokens,
}
