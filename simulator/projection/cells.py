"""A disaggregated fleet's day in cells, and back in nodes (pure functions of numbers).

A request on a disaggregated fleet needs a prefill node and a decode node, and its KV cache
moves between them, so the projection scales a *cell* (the pools as the scenario gives them,
e.g. 1 prompt + 2 token nodes; :func:`~simulator.projection.sample.unit_nodes`) the way it
scales a node of a one-pool fleet: the capacity search, the day plan and the Monte Carlo
levels all run on ``sample.nodes`` cells behind the router, and the fleet is a whole number of
cells. This module turns the cell-based result back into nodes for the summary and tables, and
splits the day's energy between the pools:

* nodes of pool p = cells x (p's nodes per cell), in every hour;
* pool p's share of hour h's IT energy = its share of the cell's IT power at that hour's load
  level: its GPUs' measured mean power (busy and idle, the exact ledger integral over the
  level's window) plus its nodes' host power at that GPU power (the host model); hours
  without load split the idle power. The KV links' added power is the fleet's (reported
  apart, ``kv_link_w_per_cell``), apportioned like the rest.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from simulator.projection.day import J_PER_GWH
from simulator.projection.sample import LevelResult, UnitPool, unit_nodes, unit_pools
from simulator.scenario.schema import Scenario
from simulator.strict import replace


def with_split(sc: Scenario, prefill_nodes: int, decode_nodes: int) -> Scenario:
    """``sc`` with its cell set to ``prefill_nodes`` + ``decode_nodes`` (no split search)."""
    p = sc.projection
    assert p is not None and sc.pools is not None
    pools = [replace(pl, deployment=replace(
        pl.deployment, nodes=prefill_nodes if pl.role == "prefill" else decode_nodes))
        for pl in sc.pools]
    return sc.derive(pools=pools, projection=replace(
        p, fleet=replace(p.fleet, prefill_decode_splits=None)))


def pool_it_w(parts: list[UnitPool], gpu_w: dict[str, float]) -> dict[str, float]:
    """IT power of each pool's nodes in one cell, W: the GPUs' power ``gpu_w`` (per pool, per
    cell) plus the pool's hosts at it (each node carrying an equal share)."""
    return {u.name: gpu_w[u.name] + u.nodes * float(u.host.node_w(gpu_w[u.name] / u.nodes))
            for u in parts}


def pool_shares(sc: Scenario, level_of_hour: np.ndarray,
                levels: list[LevelResult]) -> list[dict[str, float]]:
    """Each hour's share of the IT energy by pool (see the module docstring)."""
    parts = unit_pools(sc)
    idle = pool_it_w(parts, {u.name: u.nodes * u.gpus_per_node * u.gpu_idle_w for u in parts})
    by_level = [pool_it_w(parts, lv.pool_gpu_w) if lv.pool_gpu_w else idle for lv in levels]
    out = []
    for li in level_of_hour:
        w = idle if li < 0 else by_level[int(li)]
        tot = sum(w.values())
        out.append({k: v / tot if tot > 0 else 0.0 for k, v in w.items()})
    return out


def to_nodes(sc: Scenario, summary: dict[str, Any], hourly: pd.DataFrame,
             levels: pd.DataFrame, level_of_hour: np.ndarray,
             nominal: list[LevelResult]) -> None:
    """Rewrite a cell-based projection's summary and tables in nodes (in place), and add
    ``disaggregation``: the cell, the fleet in cells, and every pool's nodes and energy."""
    cell = unit_nodes(sc)
    per_cell = sum(cell.values())
    cells_fleet = int(summary["nodes_fleet"])
    cells_on = np.asarray(summary["hourly"]["nodes_on"], int)
    cap_cell = summary["capacity_queries_per_s_per_node"]
    for k in ("nodes_fleet", "nodes_peak", "nodes_min"):
        summary[k] = int(summary[k]) * per_cell
    summary["nodes_mean"] = float(summary["nodes_mean"]) * per_cell
    summary["hourly"]["nodes_on"] = [int(x) * per_cell for x in cells_on]
    if cap_cell is not None:
        summary["capacity_queries_per_s_per_node"] = cap_cell / per_cell
        ci = summary.get("capacity_ci_queries_per_s_per_node")
        if ci:
            summary["capacity_ci_queries_per_s_per_node"] = [x / per_cell for x in ci]
    hourly.insert(hourly.columns.get_loc("nodes_on"), "cells_on", hourly["nodes_on"])
    hourly["nodes_on"] = hourly["cells_on"] * per_cell
    hourly["queries_per_s_per_node"] = hourly["queries_per_s_per_node"] / per_cell
    levels.insert(1, "queries_per_s_per_cell", levels["queries_per_s_per_node"])
    levels["queries_per_s_per_node"] = levels["queries_per_s_per_cell"] / per_cell
    for c in ("throughput_per_node", "gpu_prefill_w", "gpu_decode_w", "gpu_idle_w"):
        levels[c] = levels[c] / per_cell
    shares = pool_shares(sc, level_of_hour, nominal)
    it_j = hourly["energy_it_j"].to_numpy()
    fac_j = hourly["energy_facility_j"].to_numpy()
    pools: dict[str, Any] = {}
    specs = {pl.name: pl for pl in sc.pool_specs()}
    total_fac = float(fac_j.sum())
    for name, n in cell.items():
        share = np.array([s[name] for s in shares])
        fac = float((share * fac_j).sum())
        hourly[f"energy_it_j.{name}"] = share * it_j
        pools[name] = {
            "role": specs[name].role, "gpu": specs[name].hardware.gpu,
            "nodes_per_cell": n, "nodes_fleet": cells_fleet * n,
            "nodes_peak": int(cells_on.max()) * n, "nodes_min": int(cells_on.min()) * n,
            "gpus_peak": int(cells_on.max()) * n * specs[name].gpus_per_node,
            "gwh_per_day_facility": fac / J_PER_GWH,
            "gwh_per_day_it": float((share * it_j).sum()) / J_PER_GWH,
            "share_of_energy": fac / total_fac if total_fac > 0 else math.nan,
            # the fleet's band carried by the pool's share (the share barely moves per draw)
            "gwh_per_day_facility_p5": summary["gwh_per_day_facility_p5"] * fac / total_fac
            if total_fac > 0 else math.nan,
            "gwh_per_day_facility_p95": summary["gwh_per_day_facility_p95"] * fac / total_fac
            if total_fac > 0 else math.nan,
        }
    link = [lv.link_w for lv in nominal]
    summary["disaggregation"] = {
        "cell": dict(cell), "nodes_per_cell": per_cell, "cells_fleet": cells_fleet,
        "cells_peak": int(cells_on.max()),
        "capacity_queries_per_s_per_cell": cap_cell,
        "kv_link_w_per_cell_max": max(link) if link else 0.0,
        "pools": pools,
        "method": ("the fleet is a whole number of cells (the pools as given per cell), sized"
                   " for the peak hour; each pool's energy is its share of each hour's IT"
                   " power at that hour's load level (its GPUs' measured power plus its hosts)"),
    }
