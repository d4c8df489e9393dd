"""The day plan: hourly fleet rate, nodes on, per-node rate, shared load levels; and the exact
integration of a day from per-level node power. Pure functions of numbers (no simulation).

Hour h (0..23) carries ``Q_h = queries_per_day x m_h / sum(m) / 3600`` queries/s. With
``N_h`` nodes on, each node serves ``Q_h / N_h`` (a balanced router). The day's energy is
``sum_h N_h x 3600 s x P_node(Q_h / N_h)`` plus, for an autoscaler, ``warmup_s`` of node idle
power for every node switched on (at hour boundaries; the day is periodic, so hour 0 follows
hour 23).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.errors import DataError, ScenarioError
from simulator.scenario.schema import Scenario
from simulator.workload.trace import parse_timestamps, read_columns

HOURS = 24
SECONDS_PER_HOUR = 3600.0
J_PER_GWH = 3.6e12
J_PER_KWH = 3.6e6


def daily_curve(sc: Scenario) -> tuple[np.ndarray, str]:
    """The 24 hourly multipliers of the day (their ratios matter) and where they came from."""
    p = sc.projection
    assert p is not None
    if p.hourly_multipliers is not None:
        return np.asarray(p.hourly_multipliers, float), "projection.hourly_multipliers"
    if p.curve_trace is not None:
        return curve_from_trace(sc), f"projection.curve_trace ({p.curve_trace.path})"
    if sc.workload.hourly_multipliers is not None:
        return np.asarray(sc.workload.hourly_multipliers, float), "workload.hourly_multipliers"
    return np.ones(HOURS), "flat (no curve given)"


def curve_from_trace(sc: Scenario) -> np.ndarray:
    """Requests per hour of day in a timestamp trace (every hour must hold one)."""
    ct = sc.projection.curve_trace  # type: ignore[union-attr]
    path = Path(ct.path)
    path = path if path.is_absolute() else sc.base_dir / path
    field = "projection.curve_trace"
    try:
        raw = read_columns(path, (ct.column,), f"{field}.path")[ct.column]
    except DataError as e:
        raise ScenarioError(str(e), file=sc.file, field=f"{field}.path") from None
    try:
        ts = pd.Series(parse_timestamps(path, raw, ct.column, fmt="mixed"))
    except DataError as e:
        raise ScenarioError(str(e), file=sc.file, field=f"{field}.column") from None
    counts = np.bincount(ts.dt.hour.to_numpy(), minlength=HOURS).astype(float)
    missing = [h for h in range(HOURS) if counts[h] == 0]
    if missing:
        raise ScenarioError(f"{path} has no request in {len(missing)} of 24 hours of day"
                            f" (first: hour {missing[0]}); a daily curve needs all 24",
                            file=sc.file, field=field)
    return counts


@dataclass
class DayPlan:
    """Who is on when, and at which per-node rate (arrays over the 24 hours)."""

    multipliers: np.ndarray
    fleet_rate_per_s: np.ndarray  # queries/s of the whole fleet
    nodes_fleet: int
    nodes_on: np.ndarray  # int
    rate_per_node: np.ndarray  # queries/s per node on
    level_of_hour: np.ndarray  # index into levels, -1 for an hour without load
    levels: list[float]  # representative per-node rate of each shared simulation
    nodes_switched_on: np.ndarray  # int: nodes switched on for hour h (warming in hour h-1)

    @property
    def peak_hour(self) -> int:
        return int(np.argmax(self.fleet_rate_per_s))


def fleet_rate(queries_per_day: float, m: np.ndarray) -> np.ndarray:
    """Queries/s in each hour: the day's volume split by the curve."""
    return queries_per_day * m / m.sum() / SECONDS_PER_HOUR


def nodes_for(rate_per_s: float, capacity_per_node: float, headroom: float) -> int:
    """ceil(headroom x rate / capacity), at least 1 (with a 1e-9 guard against float noise)."""
    return max(1, math.ceil(headroom * rate_per_s / capacity_per_node - 1e-9))


def group_levels(rates: np.ndarray, weights: np.ndarray, tol: float) -> tuple[np.ndarray, list[float]]:
    """Share simulations between hours with nearly equal per-node rates: greedy runs over the
    sorted rates whose max/min stays within 1 + tol; each level's rate is the weighted mean."""
    level = np.full(rates.size, -1, dtype=int)
    levels: list[float] = []
    order = [i for i in np.argsort(rates, kind="stable") if rates[i] > 0]
    group: list[int] = []

    def close() -> None:
        if group:
            w = weights[group]
            levels.append(float(np.average(rates[group], weights=w if w.sum() > 0 else None)))
            level[group] = len(levels) - 1

    for i in order:
        if group and rates[i] > rates[group[0]] * (1.0 + tol) * (1 + 1e-12):
            close()
            group = []
        group.append(i)
    close()
    return level, levels


def plan_day(sc: Scenario, m: np.ndarray, capacity_per_node: float | None) -> DayPlan:
    """Fleet size and the hourly schedule (capacity: per-node queries/s within the SLO; needed
    for fleet 'auto' and for the autoscaler)."""
    p = sc.projection
    assert p is not None
    q = fleet_rate(p.queries_per_day, m)
    if p.fleet.nodes == "auto":
        assert capacity_per_node is not None
        n_fleet = nodes_for(float(q.max()), capacity_per_node, p.fleet.headroom)
    else:
        n_fleet = int(p.fleet.nodes)
    if p.idle.policy == "autoscale":
        assert capacity_per_node is not None
        on = np.array([min(n_fleet, max(p.idle.min_nodes,
                                        nodes_for(x, capacity_per_node, p.fleet.headroom) if x > 0
                                        else p.idle.min_nodes)) for x in q], dtype=int)
    else:
        on = np.full(HOURS, n_fleet, dtype=int)
    per_node = q / on
    level, levels = group_levels(per_node, q, p.sample.level_tolerance)
    switched = np.maximum(0, on - np.roll(on, 1))
    return DayPlan(m, q, n_fleet, on, per_node, level, levels, switched)


@dataclass(frozen=True)
class Facility:
    """Inputs applied after simulation: host power (:class:`~simulator.physics.host.HostPower`
    figures of a node) and PUE."""

    pue: float
    host_idle_w: float
    host_load_factor: float


def integrate_day(plan: DayPlan, hourly_power: list[dict[str, float]], fac: Facility,
                  warmup_s: float, gpu_idle_w_node: float,
                  carbon_g_per_kwh: list[float] | None) -> tuple[dict[str, float], pd.DataFrame]:
    """Daily energy totals (J) and the hourly table from each hour's per-node power parts (W:
    gpu_prefill_w, gpu_decode_w, gpu_idle_w, host_idle_w, host_busy_w).

    Warm-up: nodes switched on for hour h draw node idle power (GPUs idle + host idle) for
    ``warmup_s`` at the end of hour h - 1 (periodic day)."""
    rows = []
    # energy spent in hour h warming the nodes that start serving in hour h + 1
    warming_s = np.roll(plan.nodes_switched_on, -1) * warmup_s
    warm_gpu = warming_s * gpu_idle_w_node
    warm_host = warming_s * fac.host_idle_w
    for h in range(HOURS):
        pw = hourly_power[h]
        n = plan.nodes_on[h]
        parts = {k: v * n * SECONDS_PER_HOUR for k, v in pw.items()}
        rows.append({"hour": h, "multiplier": plan.multipliers[h],
                     "queries_per_s": plan.fleet_rate_per_s[h], "nodes_on": int(n),
                     "nodes_warming": int(plan.nodes_switched_on[(h + 1) % HOURS]),
                     "queries_per_s_per_node": plan.rate_per_node[h],
                     "energy_gpu_prefill_j": parts["gpu_prefill_w"],
                     "energy_gpu_decode_j": parts["gpu_decode_w"],
                     "energy_gpu_idle_j": parts["gpu_idle_w"],
                     "energy_host_idle_j": parts["host_idle_w"],
                     "energy_host_busy_j": parts["host_busy_w"],
                     "energy_warmup_gpu_j": float(warm_gpu[h]),
                     "energy_warmup_host_j": float(warm_host[h])})
    df = pd.DataFrame(rows)
    # warm-up is idle power: it counts in GPU idle and host idle (and in its own column)
    df["energy_warmup_j"] = df["energy_warmup_gpu_j"] + df["energy_warmup_host_j"]
    df["energy_gpu_idle_j"] += df["energy_warmup_gpu_j"]
    df["energy_host_idle_j"] += df["energy_warmup_host_j"]
    df["energy_gpu_j"] = df[["energy_gpu_prefill_j", "energy_gpu_decode_j", "energy_gpu_idle_j"]].sum(axis=1)
    df["energy_host_j"] = df["energy_host_idle_j"] + df["energy_host_busy_j"]
    df["energy_it_j"] = df["energy_gpu_j"] + df["energy_host_j"]
    df["energy_facility_j"] = df["energy_it_j"] * fac.pue
    df["it_power_w"] = df["energy_it_j"] / SECONDS_PER_HOUR
    df["facility_power_w"] = df["energy_facility_j"] / SECONDS_PER_HOUR
    if carbon_g_per_kwh is not None:
        df["carbon_g_per_kwh"] = carbon_g_per_kwh
        df["co2_t"] = df["energy_facility_j"] / J_PER_KWH * df["carbon_g_per_kwh"] / 1e6
    tot = {c: float(df[c].sum()) for c in df.columns if c.startswith("energy_")}
    tot["co2_t"] = float(df["co2_t"].sum()) if "co2_t" in df else math.nan
    return tot, df
