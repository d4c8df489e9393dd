"""Row power budgets: a SimPy controller process that samples row power and sets GPU caps.

A controller plug-in (:mod:`simulator.engine.control`): it sees the fleet through a read-only
:class:`~simulator.engine.control.FleetView` and acts only by setting caps. Every
``telemetry_interval_s`` it reads each row's IT power from the ledger's sensing (GPUs at their
current iteration's power, idle GPUs at idle power, each host at what its GPUs make it draw). Over budget
(and no change of that row still in flight): it computes new caps by the policy, such that the
row cannot exceed the budget even with every GPU at its cap and every host at what those GPUs
make it draw, and
applies them after ``actuation_delay_s`` (:meth:`Replica.set_cap`; the iteration running then
finishes under its old cap). Below ``budget - hysteresis_w`` (with room for the raise): caps of
capped GPUs go up by ``cap_step_w``, back towards their static cap.

Bound (tested): a row is over budget only within ``telemetry_interval_s + actuation_delay_s``
plus one iteration after the excursion starts, unless even the minimum caps exceed the budget.

Policies are plain functions ``(views) -> groups``: an ordered list of groups of replica
indexes; the first group is lowered (one common cap level, water-filled) before the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from simulator.scenario.power import PowerSpec
from simulator.engine.control import FleetView, ReplicaStatus
from simulator.engine.ledger import Ledger
from simulator.errors import ScenarioError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """Read-only snapshot of a replica for capping policies."""

    index: int
    node: int
    tp: int
    cap_w: float            # per-GPU cap now (the controller's latest target)
    power_w: float          # GPU power of the whole replica now, W
    prefill_tokens: int     # prompt tokens waiting or in prefill
    top_priority: float     # highest class priority among its requests (-inf: none)
    role: str = "mixed"     # its pool's role: mixed | prefill | decode


def uniform(views: list[ReplicaView]) -> list[list[int]]:
    return [[v.index for v in views]]


def prefill_first(views: list[ReplicaView]) -> list[list[int]]:
    pre = [v.index for v in sorted(views, key=lambda v: -v.prefill_tokens) if v.prefill_tokens > 0]
    return [g for g in (pre, [v.index for v in views if v.prefill_tokens == 0]) if g]


def decode_first(views: list[ReplicaView]) -> list[list[int]]:
    """Decode (token) pools first, as Splitwise caps its token machines: their memory-bound
    iterations lose little under a cap; then everyone else."""
    dec = [v.index for v in views if v.role == "decode"]
    return [g for g in (dec, [v.index for v in views if v.role != "decode"]) if g]


def priority(views: list[ReplicaView]) -> list[list[int]]:
    levels = sorted({v.top_priority for v in views})
    return [[v.index for v in views if v.top_priority == p] for p in levels]


POLICIES: dict[str, Callable[[list[ReplicaView]], list[list[int]]]] = {
    "uniform": uniform, "prefill_first": prefill_first, "priority": priority,
    "decode_first": decode_first}


def water_fill(caps: dict[int, float], tp: dict[int, int], groups: list[list[int]],
               avail_w: float, min_cap_w: float, step_w: float) -> dict[int, float]:
    """Lower per-GPU caps, group by group, until ``sum(tp * cap) <= avail_w`` (or all at min).

    Within a group one level L: ``cap = min(cap, L)``; L is floored to the step grid above
    ``min_cap_w``, so the result never exceeds ``avail_w`` when feasible.
    """
    new = dict(caps)
    excess = sum(tp[i] * c for i, c in new.items()) - avail_w
    for g in groups:
        if excess <= 0:
            break
        room = sum(tp[i] * (new[i] - min_cap_w) for i in g)
        if room <= excess:
            for i in g:
                new[i] = min(new[i], min_cap_w)
            excess -= room
            continue
        target = sum(tp[i] * new[i] for i in g) - excess
        lo, hi = min_cap_w, max(new[i] for i in g)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if sum(tp[i] * min(new[i], mid) for i in g) <= target:
                lo = mid
            else:
                hi = mid
        level = min_cap_w + float(np.floor((lo - min_cap_w) / step_w)) * step_w
        before = sum(tp[i] * new[i] for i in g)
        for i in g:
            new[i] = min(new[i], level)
        excess -= before - sum(tp[i] * new[i] for i in g)
    return new


class CappingController:
    """Static caps plus (when a budget is given) the row controller of one run."""

    name = "capping"

    def __init__(self, spec: PowerSpec, file: str | None = None):
        self.spec = spec
        self.file = file  # the scenario's, for error messages
        self.samples: dict[str, list] = {k: [] for k in (
            "t_s", "row", "power_w", "budget_w", "capped_gpus", "min_cap_w", "action")}
        self.events: dict[str, list] = {k: [] for k in (
            "t_s", "decided_s", "row", "replica", "node", "old_cap_w", "new_cap_w", "action")}
        self.policy = POLICIES[spec.policy]

    # ------------------------------------------------------------ start (time 0)
    def start(self, view: FleetView) -> None:
        self.view, self.env = view, view.env
        spec = self.spec
        node_caps, rep_caps = spec.node_cap_map(), spec.replica_caps_w or {}
        for r in view.replicas:
            cap = rep_caps.get(r.index, node_caps.get(r.node, view.static_cap_w(r.index)))
            view.set_cap(r.index, float(cap))
        self.base = {r.index: r.cap_w for r in view.replicas}
        self.target = dict(self.base)
        self.tp = {r.index: r.tp for r in view.replicas}
        self.rows = spec.row_nodes(view.nodes)
        plates = [view.nameplate_w(k) for k in range(view.nodes)]
        self.budgets = [spec.budget_w(row, plates) for row in self.rows]
        self.reps: list[list[ReplicaStatus]] = [view.replicas_of(row) for row in self.rows]
        self.pending = [False] * len(self.rows)
        self.min_cap_w = spec.min_cap_w if spec.min_cap_w is not None else max(
            view.cap_range_w(r.index)[0] for r in view.replicas)
        self.min_cap_seen_w = min(self.base.values(), default=float("nan"))
        if spec.has_budget:
            for row, b in zip(self.rows, self.budgets):
                idle = view.idle_power_w(row)
                if b < idle:
                    raise ScenarioError(f"row budget {b:.0f} W is below the row's idle power"
                                        f" {idle:.0f} W", file=self.file, field="power.row_budget_w")
            self.env.process(self._run())

    # ------------------------------------------------------------ sensing
    def row_power_w(self, k: int) -> float:
        return self.view.power_now_w(self.rows[k])

    def _view(self, r: ReplicaStatus) -> ReplicaView:
        pri = self.view.class_priorities
        top = max((pri[q.cls] for q in r.live_requests()), default=float("-inf"))
        return ReplicaView(r.index, r.node, r.tp, self.target[r.index], r.power_now_w(),
                           r.pending_prefill_tokens(), top, self.view.pool_role(r.pool))

    # ------------------------------------------------------------ control loop
    def _run(self):
        spec = self.spec
        while True:
            yield self.env.timeout(spec.telemetry_interval_s)
            if self.view.drain and self.view.finished():
                return
            for k in range(len(self.rows)):
                self._step(k)

    def _step(self, k: int) -> None:
        spec, now = self.spec, self.env.now
        p, budget = self.row_power_w(k), self.budgets[k]
        action = ""
        reps = self.reps[k]
        if not self.pending[k]:
            caps = {r.index: self.target[r.index] for r in reps}
            if p > budget:
                room = self.view.cap_room_w(self.rows[k], budget)
                groups = self.policy([self._view(r) for r in reps])
                new = water_fill(caps, self.tp, groups, room, self.min_cap_w, spec.cap_step_w)
                action = "lower"
            else:
                capped = [i for i, c in caps.items() if c < self.base[i]]
                raise_w = sum(self.tp[i] * min(spec.cap_step_w, self.base[i] - caps[i]) for i in capped)
                new = caps
                grow = 1.0 + self.view.host_load_factor(self.rows[k])
                if capped and p + grow * raise_w <= budget - spec.hysteresis_w:
                    new = {i: min(self.base[i], c + spec.cap_step_w) if i in capped else c
                           for i, c in caps.items()}
                    action = "raise"
            changed = {i: c for i, c in new.items() if c != caps[i]}
            if changed:
                self.target.update(changed)
                self.pending[k] = True
                ev = self.env.timeout(spec.actuation_delay_s)
                ev.callbacks.append(lambda _e, k=k, ch=changed, t=now, a=action: self._apply(k, ch, t, a))
            else:
                action = ""
        capped_gpus = sum(r.tp for r in reps if self.target[r.index] < self.base[r.index])
        s = self.samples
        for name, v in (("t_s", now), ("row", k), ("power_w", p), ("budget_w", budget),
                        ("capped_gpus", capped_gpus),
                        ("min_cap_w", min((self.target[r.index] for r in reps), default=np.nan)),
                        ("action", action)):
            s[name].append(v)

    def _apply(self, k: int, changed: dict[int, float], decided_s: float, action: str) -> None:
        view = self.view
        for i, cap in changed.items():
            r = view.replicas[i]
            e = self.events
            for name, v in (("t_s", self.env.now), ("decided_s", decided_s), ("row", k),
                            ("replica", i), ("node", r.node), ("old_cap_w", r.cap_w),
                            ("new_cap_w", cap), ("action", action)):
                e[name].append(v)
            view.set_cap(i, cap)
            self.min_cap_seen_w = min(self.min_cap_seen_w, cap)
        self.pending[k] = False

    # ------------------------------------------------------------ outputs
    def frames(self) -> dict[str, pd.DataFrame]:
        import pandas as pd

        return {"rows": pd.DataFrame(self.samples), "capping-events": pd.DataFrame(self.events)}

    def summary(self, ledger: Ledger) -> dict[str, Any]:
        """Exact time and energy over budget per row (from the final ledger). With static caps
        and no budget there is nothing to be over: only the caps and each row's peak."""
        ev = self.events
        if not self.spec.has_budget:
            return {"policy": None, "cap_events": 0, "cap_lowerings": 0,
                    "min_cap_w": self.min_cap_seen_w,
                    "rows": [{"row": k, "nodes": row, "power_w_peak": _peak(ledger, row)}
                             for k, row in enumerate(self.rows)]}
        out_rows = []
        t_over = e_over = 0.0
        for k, row in enumerate(self.rows):
            tl = ledger.row_timeline(row)
            over = np.clip(tl["power_w"].to_numpy() - self.budgets[k], 0.0, None)
            dur = (tl["t_end_s"] - tl["t_start_s"]).to_numpy()
            rt, re = float(dur[over > 0].sum()), float((over * dur).sum())
            t_over += rt
            e_over += re
            out_rows.append({"row": k, "nodes": row, "budget_w": self.budgets[k],
                             "power_w_peak": float(tl["power_w"].max()) if len(tl) else 0.0,
                             "time_over_budget_s": rt, "energy_over_budget_j": re})
        return {
            "policy": self.spec.policy,
            "time_over_budget_s": t_over,
            "energy_over_budget_j": e_over,
            "cap_events": len(ev["t_s"]),
            "cap_lowerings": sum(1 for a, o, n in zip(ev["action"], ev["old_cap_w"], ev["new_cap_w"]) if n < o),
            "min_cap_w": self.min_cap_seen_w,
            "rows": out_rows,
        }


def _peak(ledger: Ledger, row: list[int]) -> float:
    tl = ledger.row_timeline(row)
    return float(tl["power_w"].max()) if len(tl) else 0.0


def from_scenario(sc: Any) -> CappingController | None:
    """The scenario's capping controller: static caps and, with a budget, the row controller;
    None without a power section."""
    return CappingController(sc.power, sc.file) if sc.power.is_set else None
