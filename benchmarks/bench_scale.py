"""Cost per request as the fleet grows (issue 18): the engine benchmark's workload at the same
load per node (70 % of a node's capacity) on 1 node and on 256 nodes behind the
least-outstanding router, ``simulate()`` CPU time per simulated request, best of
``--repeat``. Last line: ``cost_ratio_256_vs_1=<ratio>`` (target: at most 1.3).

    python benchmarks/bench_scale.py [--per-node 1000] [--nodes 256] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time

from bench_engine import capacity_per_node, scenario

from simulator.api import simulate
from simulator.scenario.load import scenario_from_dict


def cost_per_request_s(nodes: int, rate_per_node: float, requests: int, repeat: int) -> float:
    d = scenario({"arrival": "poisson", "rate_per_s": rate_per_node * nodes}, requests, nodes)
    d["router"] = {"policy": "least_outstanding"}
    sc = scenario_from_dict(d)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        simulate(sc)
        best = min(best, time.process_time() - t0)
    return best / requests


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=256)
    ap.add_argument("--per-node", type=int, default=1000,
                    help="requests per node of the large fleet (the single node gets 100x)")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    rate = 0.7 * capacity_per_node()
    one = cost_per_request_s(1, rate, 100 * a.per_node, a.repeat)
    many = cost_per_request_s(a.nodes, rate, a.nodes * a.per_node, a.repeat)
    print(f"rate_per_node={rate:.3f} 1 node: {one * 1e6:.1f} us/request;"
          f" {a.nodes} nodes: {many * 1e6:.1f} us/request")
    print(f"cost_ratio_{a.nodes}_vs_1={many / one:.3f}")


if __name__ == "__main__":
    main()
