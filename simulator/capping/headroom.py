"""What capping costs and what it buys: latency cost per class, and nodes that fit a budget.

* :func:`latency_cost`: run a scenario with and without its power section (no caps, no
  budget) and compare P99 TTFT and TPOT per class (ratio capped / uncapped).
* :func:`capacity`: keep the scenario's row budget fixed (one row) and run it at increasing
  node counts, the arrival rate scaled with the nodes; the headline is the most nodes whose
  latency cost stays within ``max_impact`` (e.g. 0.1 = 10 %) against the same fleet uncapped,
  minus the nodes the budget covers at nameplate.

    fleetsim headroom SCENARIO [--max-impact 0.1]   (or python -m simulator.capping.headroom)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from simulator.api import simulate
from simulator.scenario.power import PowerSpec
from simulator.errors import ScenarioError
from simulator.projection.sample import with_nodes
from simulator.scenario.load import load_scenario
from simulator.scenario.schema import Scenario
from simulator.strict import replace

METRICS = ("ttft_s_p99", "tpot_s_p99")


def _variant(sc: Scenario, nodes: int | None = None, rate_scale: float = 1.0,
             uncapped: bool = False, budget_w: float | None = None) -> Scenario:
    """``sc`` with ``nodes`` nodes, the arrival rate times ``rate_scale``, and either no power
    section or one row of all nodes under ``budget_w`` (validated)."""
    out = sc if nodes is None else with_nodes(sc, nodes)
    changes: dict = {}
    if rate_scale != 1.0:
        if sc.workload.rate_per_s is None:
            raise ScenarioError("capacity needs workload.rate_per_s to scale the load with nodes",
                                field="workload.rate_per_s")
        changes["workload"] = replace(sc.workload, rate_per_s=sc.workload.rate_per_s * rate_scale)
    if uncapped:
        changes["power"] = PowerSpec()
    elif budget_w is not None:
        changes["power"] = replace(sc.power, row_budget_w=budget_w, rows=None,
                                   oversubscription=None, node_caps_w=None)
    return out.derive(**changes) if changes else out


def latency_cost(capped: dict[str, Any], uncapped: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per class: capped / uncapped of each P99 metric (1.0 = no cost)."""
    out = {}
    for name, c in capped["classes"].items():
        u = uncapped["classes"][name]
        out[name] = {m: (c[m] / u[m] if u[m] and c[m] == c[m] else math.nan) for m in METRICS}
    return out


def compare(sc: Scenario) -> dict[str, Any]:
    cap = simulate(sc).summary
    unc = simulate(_variant(sc, uncapped=True)).summary
    return {"capping": cap.get("capping"), "latency_cost": latency_cost(cap, unc)}


def capacity(sc: Scenario, max_impact: float = 0.1, max_extra: int = 8,
             progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    p = sc.power
    n0 = sc.nodes
    plates = [pool.profile().node.rated_power_w for pool in sc.pool_specs()
              for _ in range(pool.deployment.nodes)]
    plate = p.nameplate_node_w if p.nameplate_node_w is not None else max(plates)
    budget = p.budget_w(list(range(n0)), plates) if p.has_budget else n0 * plate
    at_nameplate = int(budget // plate)
    points, best = [], None
    for n in range(max(1, at_nameplate), at_nameplate + max_extra + 1):
        scale = n / n0
        capped = simulate(_variant(sc, n, scale, budget_w=budget)).summary
        unc = simulate(_variant(sc, n, scale, uncapped=True)).summary
        cost = latency_cost(capped, unc)
        worst = max((v for c in cost.values() for v in c.values() if v == v), default=math.nan)
        ok = worst <= 1.0 + max_impact
        points.append({"nodes": n, "worst_p99_ratio": worst, "ok": ok,
                       "time_over_budget_s": capped["capping"]["time_over_budget_s"],
                       "min_cap_w": capped["capping"]["min_cap_w"], "latency_cost": cost})
        if progress is not None:
            progress(points[-1])
        if ok:
            best = n
        else:
            break
    return {"budget_w": budget, "nodes_at_nameplate": at_nameplate, "max_impact": max_impact,
            "max_nodes_within_impact": best,
            "extra_nodes": (best - at_nameplate) if best is not None else None, "points": points}


def main(argv: list[str] | None = None) -> None:
    import json

    argv = sys.argv[1:] if argv is None else argv
    sc = load_scenario(argv[0])
    res = capacity(sc, float(argv[1]) if len(argv) > 1 else 0.1)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
