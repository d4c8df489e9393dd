"""The ``power:`` section of a scenario: static GPU caps, rows with budgets, the controller."""

from __future__ import annotations

from typing import Literal

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulator.hardware import DGX_H100, H100


class Strict(BaseModel):
    """Unknown keys are errors, floats must be finite (as the scenario schema's base)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


def _check_caps(caps: dict[int, float], what: str) -> dict[int, float]:
    for k, v in caps.items():
        if not H100.min_cap_w <= v <= H100.tdp_w:
            raise ValueError(f"{what} {k}: cap {v} W outside {H100.min_cap_w:g}-{H100.tdp_w:g} W")
    return caps


class PowerSpec(Strict):
    """GPU power caps and row power budgets (POLCA-style oversubscription) with a controller."""

    node_caps_w: dict[int, float] | list[float] | None = Field(
        None, description="static GPU cap per node, W (200-700): a list (one per node) or"
        " {node index: cap}; nodes not listed use deployment.gpu_cap_w")
    replica_caps_w: dict[int, float] | None = Field(
        None, description="static GPU cap per replica, W (200-700), {replica index: cap};"
        " overrides node_caps_w")
    rows: list[list[int]] | None = Field(
        None, description="groups of node indexes sharing one power budget; default one row of"
        " all nodes")
    row_budget_w: float | None = Field(
        None, gt=0, description="power budget of every row, W (GPUs + host, IT power); with"
        " oversubscription unset. None and no oversubscription: no budget, no controller")
    oversubscription: float | None = Field(
        None, ge=1.0, le=5.0, description="row budget = nodes in row x nameplate_node_w /"
        " oversubscription (dimensionless, e.g. 1.3: the row runs 1.3x the nodes its budget"
        " covers at nameplate)")
    nameplate_node_w: float = Field(
        DGX_H100.rated_power_w, gt=0, description="nameplate (rated) power of a node, W (DGX"
        " H100: 10,200)")
    telemetry_interval_s: float = Field(1.0, gt=0, description="controller sampling period, s")
    actuation_delay_s: float = Field(0.1, ge=0, description="delay from a decision to caps"
                                     " taking effect, s")
    policy: Literal["uniform", "prefill_first", "priority"] = Field(
        "uniform", description="who is capped first: uniform (one cap level for all GPUs of"
        " the row), prefill_first (replicas with prompts to prefill), priority (replicas whose"
        " most important request has the lowest class priority)")
    hysteresis_w: float = Field(
        500.0, ge=0, description="caps are raised only while row power + the raise stays this"
        " far below the budget, W")
    cap_step_w: float = Field(25.0, gt=0, le=500, description="granularity of cap changes, W")
    min_cap_w: float = Field(200.0, ge=200.0, le=700.0, description="lowest cap the controller"
                             " sets, W (H100 minimum: 200)")

    @field_validator("node_caps_w")
    @classmethod
    def _node_caps(cls, v):
        if v is None:
            return v
        return _check_caps(dict(enumerate(v)) if isinstance(v, list) else v, "node") and v

    @field_validator("replica_caps_w")
    @classmethod
    def _replica_caps(cls, v):
        return v if v is None else _check_caps(v, "replica")

    def node_cap_map(self) -> dict[int, float]:
        v = self.node_caps_w
        return {} if v is None else (dict(enumerate(v)) if isinstance(v, list) else dict(v))

    @property
    def has_budget(self) -> bool:
        return self.row_budget_w is not None or self.oversubscription is not None

    def row_nodes(self, nodes: int) -> list[list[int]]:
        return [list(r) for r in self.rows] if self.rows else [list(range(nodes))]

    def budget_w(self, row: list[int]) -> float:
        if self.row_budget_w is not None:
            return self.row_budget_w
        return len(row) * self.nameplate_node_w / (self.oversubscription or 1.0)


IDLE_GPU_W = 70.0  # H100 idle anchor (calibration/README); the run re-checks with its calibration


def check_power(sc: Any) -> None:
    """Cross-field checks of ``power`` against the deployment (raises ValueError naming the field)."""
    p, nodes = sc.power, sc.deployment.nodes
    for k in p.node_cap_map():
        if not 0 <= k < nodes:
            raise ValueError(f"power.node_caps_w: node {k} does not exist ({nodes} nodes)")
    n_rep = nodes * sc.replicas_per_node
    for k in p.replica_caps_w or {}:
        if not 0 <= k < n_rep:
            raise ValueError(f"power.replica_caps_w: replica {k} does not exist ({n_rep} replicas)")
    seen: set[int] = set()
    for row in p.rows or []:
        for k in row:
            if not 0 <= k < nodes or k in seen:
                raise ValueError(f"power.rows: node {k} missing or in two rows ({nodes} nodes)")
            seen.add(k)
    if p.row_budget_w is not None and p.oversubscription is not None:
        raise ValueError("power: give row_budget_w or oversubscription, not both")
    if p.has_budget:
        per_node_idle = sc.facility.host_idle_w + sc.hardware.gpus_per_node * IDLE_GPU_W
        for row in p.row_nodes(nodes):
            idle = len(row) * per_node_idle
            if p.budget_w(row) < idle:
                name = "row_budget_w" if p.row_budget_w is not None else "oversubscription"
                raise ValueError(f"power.{name}: row budget {p.budget_w(row):.0f} W is below the"
                                 f" row's idle power {idle:.0f} W")
