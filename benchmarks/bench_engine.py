"""Engine speed benchmark (issues 2 and 18): simulated requests per CPU-second on one core.

One node of 8 H100 serving Llama-3.1-70B at TP8 under Poisson chat load (500 input tokens,
output exponential with median 300) at about 70 % of its capacity, 100,000 requests.
The capacity is measured first with a short saturated closed-loop run, so "70 %" follows the
calibration in use. Last line: ``requests_per_cpu_s=<number>`` (target: 60,000).

    python benchmarks/bench_engine.py [--requests N] [--repeat 3]

Time covers the whole ``simulate()`` call (scenario set-up, engine, request table and
summary), as CPU time of this process (``time.process_time``: on a shared machine the wall
clock also counts other processes); the best of ``--repeat`` runs counts (a busy machine only
ever adds time). Wall time is printed too.
"""

from __future__ import annotations

import argparse
import time

from simulator.api import simulate
from simulator.scenario.load import scenario_from_dict

CHAT = {"input_tokens": {"dist": "fixed", "value": 500},
        "output_tokens": {"dist": "exponential", "median": 300}}


def scenario(workload: dict, requests: int, nodes: int = 1) -> dict:
    return {"name": "bench", "model": "Llama-3.1-70B",
            "deployment": {"nodes": nodes, "tp": 8, "precision": "bf16"},
            "workload": {**workload, "classes": {"chat": CHAT}},
            "simulation": {"requests": requests, "warmup_requests": requests // 10, "seed": 1}}


def capacity_per_node() -> float:
    """Requests/s one node completes with its batch full (closed loop, 256 clients)."""
    sat = simulate(scenario_from_dict(scenario({"arrival": "closed_loop", "clients": 256}, 4000)))
    return sat.summary["throughput_requests_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--load", type=float, default=0.7)
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best CPU time counts")
    a = ap.parse_args()
    capacity = capacity_per_node()
    rate = a.load * capacity
    sc = scenario_from_dict(scenario({"arrival": "poisson", "rate_per_s": rate}, a.requests))
    cpus, walls = [], []
    for _ in range(a.repeat):  # best of N, as timeit does: the machine's noise only adds time
        t0, c0 = time.perf_counter(), time.process_time()
        res = simulate(sc)
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - t0)
    cpu = min(cpus)
    s = res.summary
    print(f"capacity_requests_per_s={capacity:.3f} (closed loop, 256 clients)")
    print(f"rate_per_s={rate:.3f} load={a.load}")
    print(f"simulated_time_s={s['simulated_time_s']:.1f} mean_batch={s['mean_batch_size']:.1f}"
          f" ttft_p50_s={s['ttft_s_p50']:.3f} tpot_p50_s={s['tpot_s_p50']:.4f}")
    print(f"cpu_s={cpu:.2f} (best of {a.repeat}: {', '.join(f'{c:.2f}' for c in cpus)})"
          f" wall_s={min(walls):.2f} requests={a.requests}")
    print(f"requests_per_wall_s={a.requests / min(walls):.0f}")
    print(f"requests_per_cpu_s={a.requests / cpu:.0f}")


if __name__ == "__main__":
    main()
