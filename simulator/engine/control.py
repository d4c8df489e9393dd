"""Controllers as plug-ins: what a controller sees of the running fleet, and what it may do.

A controller (the row power-capping controller is the first; an in-run autoscaler or a
facility-level controller would be others) is started by the run with a :class:`FleetView`, the
way routers get a sequence of ``ReplicaLoad``: it may read the replicas' state and the ledger's
sensing, run SimPy processes on the view's clock, and act only through :meth:`FleetView.set_cap`.
The engine knows controllers only by the :class:`Controller` protocol; which ones a scenario
gets is decided outside the engine (``simulator/controllers.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from simulator.engine.fleet import Fleet
from simulator.engine.ledger import Ledger
from simulator.engine.request import Request

if TYPE_CHECKING:
    import pandas as pd


class ReplicaStatus(Protocol):
    """What a controller may read about a replica."""

    index: int
    node: int
    pool: int
    tp: int
    cap_w: float
    busy: bool

    def power_now_w(self) -> float: ...

    def live_requests(self) -> Iterable[Request]: ...

    def pending_prefill_tokens(self) -> int: ...


class FleetView:
    """A controller's read-only window on the running fleet, plus caps (see the module)."""

    def __init__(self, env: simpy.Environment, fleet: Fleet, ledger: Ledger,
                 finished: Callable[[], bool], class_priorities: Sequence[int], drain: bool):
        self.env = env
        self._fleet, self._ledger, self._finished = fleet, ledger, finished
        self.class_priorities = tuple(class_priorities)
        self.drain = drain  # the run ends when every request has (finished() can say when)

    @property
    def now_s(self) -> float:
        return self.env.now

    @property
    def nodes(self) -> int:
        return self._fleet.nodes

    @property
    def replicas(self) -> Sequence[ReplicaStatus]:
        return self._fleet.replicas

    def replicas_of(self, nodes: Iterable[int]) -> list[ReplicaStatus]:
        s = set(nodes)
        return [r for r in self._fleet.replicas if r.node in s]

    def static_cap_w(self, replica: int) -> float:
        """The replica's pool's static GPU cap (deployment.gpu_cap_w or the GPU's limit), W."""
        return self._fleet.pools[self._fleet.replicas[replica].pool].spec.gpu_cap_w

    def cap_range_w(self, replica: int) -> tuple[float, float]:
        """Lowest and highest cap the replica's GPUs accept, W."""
        return self._fleet.pools[self._fleet.replicas[replica].pool].profile.cap_range_w()

    def nameplate_w(self, node: int) -> float:
        """Rated power of a node (its profile's), W."""
        return self._fleet.pool_of_node(node).profile.node.rated_power_w

    def power_now_w(self, nodes: Sequence[int]) -> float:
        return self._ledger.power_now_w(nodes)

    def pool_role(self, pool: int) -> str:
        """mixed | prefill | decode: the role of pool ``pool`` (a replica's ``pool``)."""
        return self._fleet.pools[pool].role

    def host_load_factor(self, nodes: Sequence[int]) -> float:
        """The largest host W per GPU W of ``nodes`` (a cap raise of X W of GPU power can add
        (1 + this) X W to the row)."""
        return max(self._fleet.pool_of_node(k).host.load_factor for k in nodes)

    def cap_room_w(self, nodes: Sequence[int], budget_w: float) -> float:
        """The most GPU-cap watts (sum of tp x cap) ``nodes`` can hold within ``budget_w``."""
        return self._ledger.cap_room_w(nodes, budget_w)

    def idle_power_w(self, nodes: Sequence[int]) -> float:
        return self._ledger.idle_power_w(nodes)

    def finished(self) -> bool:
        """Whether every request has arrived and ended, and no replica works."""
        return self._finished()

    def set_cap(self, replica: int, cap_w: float) -> None:
        """Set a replica's per-GPU power cap now (the running iteration keeps the old one)."""
        self._fleet.replicas[replica].set_cap(cap_w)


class Controller(Protocol):
    """A plug-in acting on the fleet during a run."""

    name: str

    def start(self, view: FleetView) -> None:
        """Called once at time 0, before any arrival: apply settings, start processes."""

    def summary(self, ledger: Ledger) -> dict[str, Any] | None:
        """Its part of ``summary.json`` (under its name), from the final ledger."""

    def frames(self) -> dict[str, "pd.DataFrame"]:
        """Tables it recorded, written as ``power/<key>.parquet``."""
