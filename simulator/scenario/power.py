"""The ``power:`` section of a scenario: static GPU caps, rows with budgets, the controller.

Cap ranges, the nameplate power of a node and the lowest cap default to the device profile of
each node's pool (H100: 200-700 W per GPU, 10.2 kW per DGX node).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from simulator.strict import LaxInt, Strict


def _positive_caps(caps: dict[int, float], what: str) -> dict[int, float]:
    for k, v in caps.items():
        if not v > 0:
            raise ValueError(f"{what} {k}: cap {v} W must be > 0")
    return caps


class PowerSpec(Strict):
    """GPU power caps and row power budgets (POLCA-style oversubscription) with a controller."""

    node_caps_w: dict[LaxInt, float] | list[float] | None = Field(
        None, description="static GPU cap per node, W (within its pool's GPU range, H100 and"
        " H200: 200-700, B200: 200-1,000):"
        " a list (one per node) or {node index: cap}; nodes not listed use their pool's"
        " deployment.gpu_cap_w")
    replica_caps_w: dict[LaxInt, float] | None = Field(
        None, description="static GPU cap per replica, W (within the GPU's range),"
        " {replica index: cap}; overrides node_caps_w")
    rows: list[list[int]] | None = Field(
        None, description="groups of node indexes sharing one power budget; default one row of"
        " all nodes")
    row_budget_w: float | None = Field(
        None, gt=0, description="power budget of every row, W (GPUs + host, IT power); with"
        " oversubscription unset. None and no oversubscription: no budget, no controller")
    oversubscription: float | None = Field(
        None, ge=1.0, le=5.0, description="row budget = nameplate power of the row's nodes /"
        " oversubscription (dimensionless, e.g. 1.3: the row runs 1.3x the nodes its budget"
        " covers at nameplate)")
    nameplate_node_w: float | None = Field(
        None, gt=0, description="nameplate (rated) power of every node, W; default each node's"
        " device profile (DGX H100 and H200: 10,200; DGX B200: 14,300)")
    telemetry_interval_s: float = Field(1.0, gt=0, le=3600, description="controller sampling"
                                        " period, s")
    actuation_delay_s: float = Field(0.1, ge=0, le=3600, description="delay from a decision to"
                                     " caps taking effect, s")
    policy: Literal["uniform", "prefill_first", "priority", "decode_first"] = Field(
        "uniform", description="who is capped first: uniform (one cap level for all GPUs of"
        " the row), prefill_first (replicas with prompts to prefill), priority (replicas whose"
        " most important request has the lowest class priority), decode_first (replicas of"
        " decode pools, as Splitwise caps its token machines; docs/disaggregation.md)")
    hysteresis_w: float = Field(
        500.0, ge=0, description="caps are raised only while row power + the raise stays this"
        " far below the budget, W")
    cap_step_w: float = Field(25.0, gt=0, le=500, description="granularity of cap changes, W")
    min_cap_w: float | None = Field(
        None, gt=0, description="lowest cap the controller sets, W; default the highest minimum"
        " cap of the fleet's GPUs (H100: 200)")

    @field_validator("node_caps_w")
    @classmethod
    def _node_caps(cls, v):
        if v is None:
            return v
        return _positive_caps(dict(enumerate(v)) if isinstance(v, list) else v, "node") and v

    @field_validator("replica_caps_w")
    @classmethod
    def _replica_caps(cls, v):
        return v if v is None else _positive_caps(v, "replica")

    def node_cap_map(self) -> dict[int, float]:
        v = self.node_caps_w
        return {} if v is None else (dict(enumerate(v)) if isinstance(v, list) else dict(v))

    @property
    def has_budget(self) -> bool:
        return self.row_budget_w is not None or self.oversubscription is not None

    @property
    def is_set(self) -> bool:
        """Whether the section asks for anything (static caps or a budget)."""
        return self.node_caps_w is not None or self.replica_caps_w is not None or self.has_budget

    def row_nodes(self, nodes: int) -> list[list[int]]:
        return [list(r) for r in self.rows] if self.rows else [list(range(nodes))]

    def budget_w(self, row: list[int], nameplate_w: list[float]) -> float:
        """Budget of a row; ``nameplate_w[node]`` is each node's profile nameplate."""
        if self.row_budget_w is not None:
            return self.row_budget_w
        if self.nameplate_node_w is not None:
            return len(row) * self.nameplate_node_w / (self.oversubscription or 1.0)
        plates = {nameplate_w[k] for k in row}
        if len(plates) == 1:  # one node type: as the nameplate given explicitly
            return len(row) * plates.pop() / (self.oversubscription or 1.0)
        return sum(nameplate_w[k] for k in row) / (self.oversubscription or 1.0)


def check_power(sc: Any) -> None:
    """Cross-field checks of ``power`` against the fleet (raises ValueError naming the field).

    The work is proportional to the pools, caps and row entries given, never to the number
    of nodes (a fleet of a billion nodes validates at once and is refused by the limits)."""
    import bisect

    p = sc.power
    pools = sc.pool_specs()
    node_end: list[int] = []  # node_end[i]: first node after pool i
    rep_end: list[int] = []
    for pool in pools:
        node_end.append((node_end[-1] if node_end else 0) + pool.deployment.nodes)
        rep_end.append((rep_end[-1] if rep_end else 0)
                       + pool.deployment.nodes * pool.replicas_per_node)
    nodes, replicas = node_end[-1], rep_end[-1]

    def pool_of(k: int, ends: list[int]) -> Any:
        return pools[bisect.bisect_right(ends, k)]

    for k, cap in p.node_cap_map().items():
        if not 0 <= k < nodes:
            raise ValueError(f"power.node_caps_w: node {k} does not exist ({nodes} nodes)")
        _in_range(cap, pool_of(k, node_end), f"power.node_caps_w: node {k}")
    for k, cap in (p.replica_caps_w or {}).items():
        if not 0 <= k < replicas:
            raise ValueError(f"power.replica_caps_w: replica {k} does not exist"
                             f" ({replicas} replicas)")
        _in_range(cap, pool_of(k, rep_end), f"power.replica_caps_w: replica {k}")
    seen: set[int] = set()
    for row in p.rows or []:
        for k in row:
            if not 0 <= k < nodes or k in seen:
                raise ValueError(f"power.rows: node {k} missing or in two rows ({nodes} nodes)")
            seen.add(k)
    if p.row_budget_w is not None and p.oversubscription is not None:
        raise ValueError("power: give row_budget_w or oversubscription, not both")
    if p.min_cap_w is not None:
        for pool in pools:
            lo, hi = pool.profile().cap_range_w()
            if not lo <= p.min_cap_w <= hi:
                raise ValueError(f"power.min_cap_w: {p.min_cap_w:g} W is outside the"
                                 f" {pool.profile().name} range {lo:g}-{hi:g} W")
    if p.has_budget:
        plate = [pool.profile().node.rated_power_w for pool in pools]
        idle = []  # a node of each pool with its GPUs idle: GPUs + host
        for pool in pools:
            gpu_idle_w = pool.profile().calibration().power.idle_w
            gpu_w = pool.gpus_per_node * gpu_idle_w
            idle.append(gpu_w + pool.host(sc.facility, gpu_idle_w).node_w(gpu_w))
        name = "row_budget_w" if p.row_budget_w is not None else "oversubscription"
        if p.rows:
            rows = [[bisect.bisect_right(node_end, k) for k in row] for row in p.rows]
            rows_checked = [(p.budget_w(list(range(len(r))), [plate[i] for i in r]),
                             math.fsum(idle[i] for i in r)) for r in rows]
        else:  # one row of every node, summed per pool (never a list of the nodes)
            count = [pool.deployment.nodes for pool in pools]
            over = p.oversubscription or 1.0
            if p.row_budget_w is not None:
                budget = p.row_budget_w
            elif p.nameplate_node_w is not None:
                budget = nodes * p.nameplate_node_w / over
            elif len(set(plate)) == 1:
                budget = nodes * plate[0] / over
            else:
                budget = math.fsum(c * w for c, w in zip(count, plate)) / over
            rows_checked = [(budget, math.fsum(c * w for c, w in zip(count, idle)))]
        for budget, row_idle in rows_checked:
            if budget < row_idle:
                raise ValueError(f"power.{name}: row budget {budget:.0f} W is below the"
                                 f" row's idle power {row_idle:.0f} W")


def _in_range(cap: float, pool: Any, what: str) -> None:
    prof = pool.profile()
    lo, hi = prof.cap_range_w()
    if not lo <= cap <= hi:
        raise ValueError(f"{what}: cap {cap:g} W outside {lo:g}-{hi:g} W ({prof.name})")
