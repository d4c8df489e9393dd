"""Fleet-day projection speed and sampling error (issue 5).

    python benchmarks/bench_projection.py                 # all three parts
    python benchmarks/bench_projection.py --part one      # one draw, one core
    python benchmarks/bench_projection.py --part hundred  # 100 draws, two workers
    python benchmarks/bench_projection.py --part sampling # sampled vs every node simulated
    python benchmarks/bench_projection.py --write-doc     # also fill docs/projection.md

Targets: the 1-billion-query fleet-day (``scenarios/1b-chat.yaml``) with one Monte Carlo draw
in at most 2 minutes on one core (``workers=1``), with 100 draws in at most 10 minutes on two
cores (``workers=2``); the sampled projection within 1 % of simulating every node of a 64-node
fleet. Wall time covers the whole ``project()`` call (capacity search, nominal levels, draws);
it is printed, never asserted (tests do not time anything).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.docblocks import replace_block  # noqa: E402
from simulator.projection.project import project  # noqa: E402
from simulator.projection.validate import full_fleet_day  # noqa: E402
from simulator.scenario.load import load_scenario  # noqa: E402

SCENARIO = ROOT / "scenarios" / "1b-chat.yaml"
TINY = ROOT / "tests" / "projection" / "tiny.yaml"
START, END = "<!-- bench-projection:start -->", "<!-- bench-projection:end -->"


def timed(draws: int, workers: int) -> tuple[float, dict]:
    sc = load_scenario(str(SCENARIO), [f"projection.uncertainty.draws={draws}"])
    t0 = time.perf_counter()
    p = project(sc, workers=workers)
    return time.perf_counter() - t0, p.summary


def line_of(label: str, wall: float, s: dict, target_s: float) -> str:
    ok = "met" if wall <= target_s else "MISSED"
    return (f"{label}: {wall:.1f} s (target {target_s:.0f} s, {ok}); {s['nodes_peak']} nodes,"
            f" {s['gwh_per_day_facility_p50']:.4g} GWh/day P50 [P5"
            f" {s['gwh_per_day_facility_p5']:.4g}, P95 {s['gwh_per_day_facility_p95']:.4g}],"
            f" {s['sampling']['simulations']} simulations")


def sampling() -> list[str]:
    out = []
    cases = {
        "always on, 64 nodes": ["projection.fleet.nodes=64", "projection.queries_per_day=3.0e7"],
        "autoscaled, auto-sized": ["projection.fleet.nodes=auto", "projection.queries_per_day=2.5e8",
                                   "projection.idle.policy=autoscale", "projection.idle.min_nodes=4",
                                   "projection.fleet.capacity_tolerance=0.1"],
    }
    for label, sets in cases.items():
        sc = load_scenario(str(TINY), sets + ["projection.uncertainty.draws=0",
                                               "projection.sample.requests=2000",
                                               "projection.sample.nodes=2"])
        t0 = time.perf_counter()
        p = project(sc)
        t1 = time.perf_counter()
        c = full_fleet_day(p, requests_per_node=150 if "64" in label else 60)
        t2 = time.perf_counter()
        out.append(f"sampling error, {label} (peak {p.summary['nodes_peak']} nodes): sampled"
                   f" {c.sampled_gwh:.5g} GWh/day ({t1 - t0:.1f} s) vs every node simulated"
                   f" {c.full_gwh:.5g} GWh/day ({c.simulations} fleet simulations, {t2 - t1:.1f} s):"
                   f" {c.relative_error:+.3%} (target within 1 %)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["one", "hundred", "sampling", "all"], default="all")
    ap.add_argument("--draws", type=int, default=100, help="draws of the 'hundred' part")
    ap.add_argument("--workers", type=int, default=2, help="workers of the 'hundred' part")
    ap.add_argument("--write-doc", action="store_true",
                    help="write the figures into docs/projection.md between its markers")
    a = ap.parse_args()
    lines = [f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores,"
             f" Python {platform.python_version()}; scenario {SCENARIO.relative_to(ROOT)}"]
    print(lines[0], flush=True)
    if a.part in ("one", "all"):
        wall, s = timed(1, 1)
        lines.append(line_of("1 draw, 1 worker", wall, s, 120))
        print(lines[-1], flush=True)
    if a.part in ("hundred", "all"):
        wall, s = timed(a.draws, a.workers)
        lines.append(line_of(f"{a.draws} draws, {a.workers} workers", wall, s, 600))
        print(lines[-1], flush=True)
    if a.part in ("sampling", "all"):
        for ln in sampling():
            lines.append(ln)
            print(ln, flush=True)
    if a.write_doc:
        body = "\n".join(f"- {ln}" for ln in lines)
        body += "\n\nWritten by `python benchmarks/bench_projection.py --write-doc`."
        replace_block(ROOT / "docs" / "projection.md", START, END, body)


if __name__ == "__main__":
    main()
