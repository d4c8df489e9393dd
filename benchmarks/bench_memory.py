"""Peak memory of a large run (issue 18): the engine benchmark's workload (one node,
Llama-3.1-70B TP8, Poisson chat at 70 % of capacity) with 1 million requests, ``simulate()``
and its summary, in a fresh process; peak resident memory from the operating system
(``getrusage``). Last line: ``peak_mb=<MiB> bytes_per_request=<B>`` (target: under 700 MB).

    python benchmarks/bench_memory.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[4])
from bench_engine import scenario
from simulator.api import simulate
from simulator.scenario.load import scenario_from_dict
n, rate = int(sys.argv[2]), float(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sc = scenario_from_dict(scenario({"arrival": "poisson", "rate_per_s": rate}, n))
t0 = time.process_time()
res = simulate(sc)
cpu = time.process_time() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"peak_kib": peak, "start_kib": base, "cpu_s": cpu,
                  "completed": res.summary["requests_completed"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=None,
                    help="arrival rate, requests/s (default: 70 %% of the measured capacity)")
    ap.add_argument("--code", default=str(ROOT),
                    help="the checkout whose simulator runs (to measure an older one)")
    a = ap.parse_args()
    rate = a.rate
    if rate is None:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        sys.path.insert(0, str(ROOT))
        from bench_engine import capacity_per_node

        rate = 0.7 * capacity_per_node()
    out = subprocess.run([sys.executable, "-c", CHILD, a.code, str(a.requests), str(rate),
                          str(ROOT / "benchmarks")],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    peak_mb = r["peak_kib"] * 1024 / 2**20
    start_mb = r["start_kib"] * 1024 / 2**20
    print(f"requests={a.requests} rate_per_s={rate:.3f} completed={r['completed']}"
          f" cpu_s={r['cpu_s']:.1f} start_mb={start_mb:.0f}")
    per = (r["peak_kib"] - r["start_kib"]) * 1024 / a.requests
    print(f"peak_mb={peak_mb:.0f} bytes_per_request={per:.0f}")


if __name__ == "__main__":
    main()
