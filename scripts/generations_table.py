"""Run the GPU-generations sweep and write its table into README.md.

    python scripts/generations_table.py                          # sweep, chart, README table
    python scripts/generations_table.py --workers 2
    python scripts/generations_table.py --from-results out/generations   # table only

The sweep is ``scenarios/sweep-generations.yaml`` (the same daily load and SLO on H100, H200 and
B200 nodes, for the chat-only and the long-answer mix); its folder goes to
``out/generations/`` with the charts (``charts/generations.png``, copied to
``docs/generations.png`` for the README). The table between
``<!-- generations-table:start -->`` and ``<!-- generations-table:end -->`` in README.md is
rebuilt from the sweep's ``results.parquet``, so no figure in it is typed by hand; ratios to
the H100 row of the same mix are computed here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ROOT / "scenarios" / "sweep-generations.yaml"
MIXED = ROOT / "scenarios" / "mixed-fleet.yaml"
START, END = "<!-- generations-table:start -->", "<!-- generations-table:end -->"


def run(out: Path, workers: int, mixed: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    from simulator.charts.draw import plot_all
    from simulator.projection.output import write_projection
    from simulator.projection.project import project
    from simulator.scenario.load import load_scenario
    from simulator.sweep.runner import run_sweep
    from simulator.sweep.spec import build_sweep

    run_sweep(build_sweep(str(SWEEP), []), out, workers=workers, progress=True)
    plot_all(out, out / "charts")
    shutil.copyfile(out / "charts" / "generations.png", ROOT / "docs" / "generations.png")
    if mixed:
        write_projection(project(load_scenario(MIXED), workers=workers), out / "mixed-fleet")


def _g(x: float, digits: int = 3) -> str:
    return f"{x:,.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def _mix(v) -> str:
    d = json.loads(v) if isinstance(v, str) else v
    long = float(d.get("reasoning", 0.0))
    return "1b-chat (100 % chat)" if long == 0 else f"1b-chat-{100 * long:.0f}pct-long"


def table(out: Path) -> str:
    import pandas as pd

    t = pd.read_parquet(out / "results.parquet")
    t["mix"] = [_mix(v) for v in t["workload.mix"]]
    rows = ["| load | GPU | nodes | peak facility MW | facility GWh/day P50 [P5, P95]"
            " | GPU J per output token | Wh per query P50 by class | vs H100: nodes / GWh / J per token"
            " | SLO attainment |",
            "|---|---|---:|---:|---|---:|---|---|---|"]
    for mix, g in t.groupby("mix", sort=False):
        base = g[g["hardware.gpu"] == "H100"].iloc[0]
        for _, r in g.iterrows():
            whq = ", ".join(f"{c[len('wh_per_query_p50.'):]} {_g(r[c])}" for c in t.columns
                            if c.startswith("wh_per_query_p50.") and r[c] == r[c]
                            and t.loc[g.index, c].notna().all())
            slo = ", ".join(f"{c[len('slo_attainment.'):]} {100 * r[c]:.2f} %" for c in t.columns
                            if c.startswith("slo_attainment.") and r[c] == r[c])
            ratio = (f"{r['nodes_fleet'] / base['nodes_fleet']:.2f} /"
                     f" {r['gwh_per_day_facility_p50'] / base['gwh_per_day_facility_p50']:.2f} /"
                     f" {r['j_per_output_token_gpu'] / base['j_per_output_token_gpu']:.2f}")
            rows.append(
                f"| {mix} | {r['hardware.gpu']} | {int(r['nodes_fleet']):,} |"
                f" {_g(r['facility_power_w_peak'] / 1e6)} | {_g(r['gwh_per_day_facility_p50'])}"
                f" [{_g(r['gwh_per_day_facility_p5'])}, {_g(r['gwh_per_day_facility_p95'])}] |"
                f" {_g(r['j_per_output_token_gpu'])} | {whq} | {ratio} | {slo} |")
    m = out / "mixed-fleet" / "summary.json"
    if m.exists():  # the mixed fleet (scenarios/mixed-fleet.yaml), against the long-mix H100 row
        s = json.loads(m.read_text())
        base = t[(t["mix"] != "1b-chat (100 % chat)") & (t["hardware.gpu"] == "H100")].iloc[0]
        fleet = " + ".join(f"{p['nodes_fleet']:,} {p['gpu'].split('-')[0]}" for p in s["pools"].values())
        whq = ", ".join(f"{c} {_g(v)}" for c, v in s["wh_per_query_p50"].items())
        slo = ", ".join(f"{c} {100 * v:.2f} %" for c, v in s["slo_attainment"].items())
        rows.append(
            f"| 1b-chat-10pct-long, mixed fleet ([`mixed-fleet`](scenarios/mixed-fleet.yaml)) |"
            f" {fleet} | {s['nodes_fleet']:,} | {_g(s['facility_power_w_peak'] / 1e6)} |"
            f" {_g(s['gwh_per_day_facility_p50'])} [{_g(s['gwh_per_day_facility_p5'])},"
            f" {_g(s['gwh_per_day_facility_p95'])}] | {_g(s['j_per_output_token_gpu'])} | {whq} |"
            f" {s['nodes_fleet'] / base['nodes_fleet']:.2f} /"
            f" {s['gwh_per_day_facility_p50'] / base['gwh_per_day_facility_p50']:.2f} /"
            f" {s['j_per_output_token_gpu'] / base['j_per_output_token_gpu']:.2f} | {slo} |")
    draws = int(t["uncertainty.draws"].iloc[0])
    qpd = float(t["queries_per_day"].iloc[0])
    rows += ["", f"Generated by `python scripts/generations_table.py` from the sweep"
             f" `scenarios/sweep-generations.yaml` (fleet-days of {qpd:.3g} queries, auto-sized"
             f" for the peak hour at the SLO with 20 % headroom, always on; {draws} Monte Carlo"
             " draws per point). GPU J per output token: the day's GPU energy (busy and idle) per"
             " output token served. Ratios: to the H100 row of the same load. The mixed fleet"
             " (`scenarios/mixed-fleet.yaml`, projected by the same script) keeps 3,000 H100 nodes"
             " and adds the B200 nodes that serve the rest, load split by capacity."]
    return "\n".join(rows)


def update_readme(text: str, readme: Path = ROOT / "README.md") -> None:
    sys.path.insert(0, str(ROOT))
    from simulator.docblocks import replace_block

    replace_block(readme, START, END, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "generations",
                    help="the sweep folder (default out/generations)")
    ap.add_argument("--workers", type=int, default=1, help="processes (one point each)")
    ap.add_argument("--from-results", action="store_true",
                    help="do not simulate: rebuild the table from OUT/results.parquet")
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    ap.add_argument("--no-mixed", action="store_true", help="skip the mixed-fleet projection")
    a = ap.parse_args()
    if not a.from_results:
        run(a.out, a.workers, not a.no_mixed)
    text = table(a.out)
    print(text)
    if not a.no_readme:
        update_readme(text)


if __name__ == "__main__":
    main()
