"""The analytical estimate against the simulator (issue 18): error and speed on the bundled
steady-state scenarios (``simulator/estimate/validate.py`` says how each is checked).

    python benchmarks/bench_estimate.py [--requests 8000] [--write-doc]

Targets: within 10 % of the simulator's energy per query and capacity on every scenario,
at least 1,000x less CPU than the simulations it stands in for, per point of a sweep
(``fleetsim sweep --estimate``: the worker's cache already holds the scenario's lengths and
pool models from another point at another rate; :func:`simulator.estimate.validate.estimate_cpu_s`).
The cold figure (a fresh cache: a sweep's first point, a lone ``fleetsim estimate``) is printed
too. Last line: ``estimate_worst_error=<fraction> estimate_min_speedup=<factor>
estimate_min_cold_speedup=<factor>``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.docblocks import replace_block  # noqa: E402
from simulator.estimate.validate import STEADY_SCENARIOS, check, table  # noqa: E402

DOC = ROOT / "docs" / "estimate.md"
START, END = "<!-- bench-estimate:start -->", "<!-- bench-estimate:end -->"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=8000)
    ap.add_argument("--write-doc", action="store_true", help="rewrite the table in docs/estimate.md")
    a = ap.parse_args()
    checks = []
    for name in STEADY_SCENARIOS:
        c = check(ROOT / "scenarios" / f"{name}.yaml", a.requests)
        checks.append(c)
        print(f"{name}: energy {c.energy_error:+.1%}, capacity {c.capacity_error:+.1%},"
              f" {c.estimate_cpu_s * 1e3:.2f} ms a sweep point"
              f" ({c.estimate_cold_cpu_s * 1e3:.2f} cold) vs {c.simulate_cpu_s:.2f} s"
              f" ({c.speedup:,.0f}x; {c.cold_speedup:,.0f}x cold)",
              flush=True)
    text = table(checks)
    worst = max(max(abs(c.energy_error), abs(c.capacity_error)) for c in checks)
    slowest = min(c.speedup for c in checks)
    slowest_cold = min(c.cold_speedup for c in checks)
    print(text)
    if a.write_doc:
        replace_block(DOC, START, END,
                      f"{text}\n\nOutput of `python benchmarks/bench_estimate.py` on"
                      f" {time.strftime('%Y-%m-%d')} ({platform.machine()}, Python"
                      f" {platform.python_version()}); `--write-doc` rewrites this block.")
    print(f"estimate_worst_error={worst:.4f} estimate_min_speedup={slowest:.0f}"
          f" estimate_min_cold_speedup={slowest_cold:.0f}")


if __name__ == "__main__":
    main()
