"""Run the bridges the docs quote and rewrite their generated blocks (never typed by hand):

* docs/bridge.md: 1b-chat -> 1b-chat-10pct-long (what ten per cent of long answers cost);
* docs/oviedo.md: the setting of Oviedo et al. (scenarios/oviedo-*.yaml) -> each reference
  scenario, beside the paper's published figures.

    python scripts/bridge_examples.py [--out out/bridges] [--workers 2]

``--from-results`` rebuilds the blocks from the bridge folders without running anything. The
figures also go to docs/data/oviedo.json, which the validation page reads (and a test holds
that page to it); the bridge folders themselves are not in the repository, so no test reruns
the bridges.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BRIDGES = {  # name: (A, B, metric)
    "chat-to-long": ("1b-chat", "1b-chat-10pct-long", "gwh_per_day_facility_nominal"),
    "oviedo-chat-to-1b-chat": ("oviedo-chat", "1b-chat", "gwh_per_day_facility_nominal"),
    "oviedo-long-to-1b-long": ("oviedo-10pct-long", "1b-chat-10pct-long",
                               "gwh_per_day_facility_nominal"),
    "oviedo-long-to-1b-efficient": ("oviedo-10pct-long", "1b-efficient",
                                    "gwh_per_day_facility_nominal"),
}
#: Oviedo et al. (arXiv:2509.20241), published figures (v1 abstract; v2 abstract, 2026)
PAPER = [
    ("median Wh per query, frontier-scale (>200B) model on H100, traditional outputs",
     "0.34 (IQR 0.18-0.67)", "0.31 (IQR 0.16-0.60)", "wh_chat"),
    ("median Wh per query, test-time scaling (15x the tokens)", "4.32", "3.91 (IQR 2.15-7.05)",
     "wh_long"),
    ("1 billion queries a day, baseline, GWh/day", "0.8", "0.7", "gwh_chat"),
    ("1 billion queries a day, 10 % long queries, GWh/day", "1.8", "1.7", "gwh_long"),
    ("1 billion queries a day, with efficiency interventions, GWh/day", "0.9", "0.8", "gwh_eff"),
]


def run(out: Path, workers: int) -> None:
    sys.path.insert(0, str(ROOT))
    from simulator.bridge.run import plan_bridge, run_bridge

    for name, (a, b, metric) in BRIDGES.items():
        plan = plan_bridge(str(ROOT / "scenarios" / f"{a}.yaml"), str(ROOT / "scenarios" / f"{b}.yaml"),
                           "project", metric)
        run_bridge(plan, out / name, workers=workers, progress=False, overwrite=True)
        print(f"{name}: done", file=sys.stderr)


def _load(out: Path, name: str) -> dict:
    return json.loads((out / name / "bridge.json").read_text())


def _table(r: dict) -> list[str]:
    a, b = Path(r["a"]).stem, Path(r["b"]).stem
    lines = [f"`{a}` -> `{b}`: {r['metric']} {r['value_a']:.3g} -> {r['value_b']:.3g}"
             f" ({r['difference']:+.3g}, {100 * r['difference'] / r['value_a']:+.0f} %).", "",
             "| step | group | change | % of A | value after | fields |", "|---:|---|---:|---:|---:|---|"]
    for i, s in enumerate(r["steps"], 1):
        fields = ", ".join(f"`{f}`" for f in s["fields"][:5]) + (" ..." if len(s["fields"]) > 5 else "")
        lines.append(f"| {i} | {s['group']} | {s['delta']:+.3g} | {100 * s['delta'] / r['value_a']:+.0f} % |"
                     f" {s['value']:.3g} | {fields} |")
    return lines + [""]


def _point_summary(out: Path, name: str, which: str) -> dict:
    """The summary of bridge ``name``'s first (A) or last (B) scenario."""
    sweep = json.loads((out / name / "sweep.json").read_text())
    pid = sweep["points"][0 if which == "A" else -1]["id"]
    return json.loads((out / name / "points" / pid / "summary.json").read_text())


def blocks(out: Path) -> dict[str, str]:
    bridge = ["Ten per cent of long answers (median 5,000 tokens) on the chat day:", ""]
    bridge += _table(_load(out, "chat-to-long"))
    oc = _point_summary(out, "oviedo-chat-to-1b-chat", "A")
    ol = _point_summary(out, "oviedo-long-to-1b-long", "A")
    ours = {"wh_chat": f"{oc['wh_per_query_p50']['chat']:.3g} (IQR"
                       f" {oc['wh_per_query_p25']['chat']:.2g}-{oc['wh_per_query_p75']['chat']:.2g})",
            "wh_long": f"{ol['wh_per_query_p50']['reasoning']:.3g} (IQR"
                       f" {ol['wh_per_query_p25']['reasoning']:.3g}-{ol['wh_per_query_p75']['reasoning']:.3g})",
            "gwh_chat": f"{oc['gwh_per_day_facility_nominal']:.3g}",
            "gwh_long": f"{ol['gwh_per_day_facility_nominal']:.3g}",
            "gwh_eff": "see `1b-efficient` below"}
    oviedo = ["| figure | paper v1 (2025) | paper v2 (2026) | fleetsim, the paper's setting |",
              "|---|---|---|---|"]
    for label, v1, v2, key in PAPER:
        oviedo.append(f"| {label} | {v1} | {v2} | {ours[key]} |")
    oviedo += [""]
    for name in ("oviedo-chat-to-1b-chat", "oviedo-long-to-1b-long", "oviedo-long-to-1b-efficient"):
        oviedo += _table(_load(out, name))
    rows = [
        {"figure": "median Wh per query, >200B model on H100, traditional outputs",
         "paper": "0.34 / 0.31", "paper_v2": 0.31, "fleetsim": oc["wh_per_query_p50"]["chat"],
         "reason": "the same setting (full batch, 500-token prompts, exponential outputs); fleetsim"
                   " prices the node from its calibrated power and host models"},
        {"figure": "median Wh per long query (outputs median 5,000)", "paper": "4.32 / 3.91",
         "paper_v2": 3.91, "fleetsim": ol["wh_per_query_p50"]["reasoning"],
         "reason": "fleetsim's batch is bounded by KV memory when answers are long"},
        {"figure": "GWh/day, 1 billion queries, chat", "paper": "0.8 / 0.7", "paper_v2": 0.7,
         "fleetsim": oc["gwh_per_day_facility_nominal"],
         "reason": "the paper's fleet figure averages a mix of model sizes; not median x 10^9"},
        {"figure": "GWh/day, 1 billion queries, 10 % long", "paper": "1.8 / 1.7", "paper_v2": 1.7,
         "fleetsim": ol["gwh_per_day_facility_nominal"],
         "reason": "as above, and the KV-memory bound on long answers"},
    ]
    data = ROOT / "docs" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "oviedo.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return {"docs/bridge.md": "\n".join(bridge).rstrip(), "docs/oviedo.md": "\n".join(oviedo).rstrip()}


START, END = "<!-- bridge-examples:start -->", "<!-- bridge-examples:end -->"


def rewrite(page: Path, text: str) -> None:
    sys.path.insert(0, str(ROOT))
    from simulator.docblocks import replace_block

    replace_block(page, START, END, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bridges")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--from-results", action="store_true", help="do not run: rebuild the blocks")
    a = ap.parse_args()
    if not a.from_results:
        run(a.out, a.workers)
    for page, text in blocks(a.out).items():
        rewrite(ROOT / page, text)
        print(f"rewrote {page}", file=sys.stderr)


if __name__ == "__main__":
    main()
