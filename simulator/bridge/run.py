"""``fleetsim bridge A B``: the scenarios of a bridge, run on the sweep machinery, and its table.

The scenarios between A and B (:mod:`simulator.bridge.core`) become the points of a sweep whose
base is A resolved (every default filled in, every path absolute), so they run in parallel,
resume after an interruption and fail early on a scenario that cannot run. A projection bridge
runs the nominal day (``projection.uncertainty.draws`` 0 unless asked): the steps of a nominal
metric add up exactly; Monte Carlo percentiles do not.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from simulator.bridge.core import (MAX_SHAPLEY_GROUPS, Item, apply, diff, group_items,
                                   sequential_points, shapley_values, subsets)
from simulator.errors import FleetsimError, ScenarioError, did_you_mean
from simulator.scenario.load import load_scenario
from simulator.scenario.schema import Scenario

DEFAULT_METRIC = {"project": "gwh_per_day_facility_nominal", "run": "energy_per_query_wh_mean"}


def resolved_dict(sc: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in and every file path absolute."""
    d = sc.model_dump(mode="json")
    wl = d["workload"]
    for k, p in (wl.get("traces") or {}).items():
        wl["traces"][k] = str(sc.resolve(p))
    for qc in wl["classes"].values():
        for side in ("input_tokens", "output_tokens"):
            spec = qc.get(side)
            if isinstance(spec, dict) and spec.get("trace"):
                spec["trace"] = str(sc.resolve(spec["trace"]))
    if d["simulation"].get("calibration"):
        d["simulation"]["calibration"] = str(sc.resolve(d["simulation"]["calibration"]))
    for hw in [d.get("hardware")] + [p.get("hardware") for p in d.get("pools") or []]:
        if isinstance(hw, dict) and hw.get("calibration"):
            hw["calibration"] = str(sc.resolve(hw["calibration"]))
    proj = d.get("projection")
    if isinstance(proj, dict) and isinstance(proj.get("curve_trace"), dict):
        proj["curve_trace"]["path"] = str(sc.resolve(proj["curve_trace"]["path"]))
    return d


@dataclass
class BridgePlan:
    a_file: str
    b_file: str
    command: str
    metric: str
    shapley: bool
    base: dict[str, Any]                      # A resolved
    groups: dict[str, list[Item]]             # the items of each group, in bridge order
    points: list[tuple[str, dict[str, Any]]]  # (label, overrides on A), A first
    labels: dict[str, frozenset[str]] = field(default_factory=dict)  # Shapley: label -> subset


def _overrides(base: dict[str, Any], items: list[Item]) -> dict[str, Any]:
    """The point as sweep overrides: every top-level section the items change, whole."""
    d = apply(base, items)
    return {k: d[k] for k in d if d.get(k) != base.get(k)}


def plan_bridge(a_file: str, b_file: str, command: str = "project", metric: str | None = None,
                shapley: bool = False, draws: int = 0) -> BridgePlan:
    """Read both scenarios, find what differs, group it and lay out the scenarios to run."""
    if command not in DEFAULT_METRIC:
        raise ScenarioError(f"unknown command {command!r}{did_you_mean(command, DEFAULT_METRIC)};"
                            f" valid: {', '.join(DEFAULT_METRIC)}", field="--command")
    sa, sb = load_scenario(a_file), load_scenario(b_file)
    da, db = resolved_dict(sa), resolved_dict(sb)
    if command == "project":
        for f, d in ((a_file, da), (b_file, db)):
            if d.get("projection") is None:
                raise ScenarioError("missing: a projection bridge needs a projection section in"
                                    " both scenarios", file=f, field="projection")
            d["projection"]["uncertainty"]["draws"] = draws
    groups = group_items(da, diff(da, db))
    if not groups:
        raise ScenarioError(f"{b_file} describes the same scenario as {a_file}: nothing to bridge",
                            file=b_file)
    names = list(groups)
    plan = BridgePlan(a_file, b_file, command, metric or DEFAULT_METRIC[command], shapley, da,
                      groups, [])
    if shapley:
        if len(names) > MAX_SHAPLEY_GROUPS:
            raise ScenarioError(f"{len(names)} groups differ ({', '.join(names)}): an exact Shapley"
                                f" split needs 2^{len(names)} scenarios; at most"
                                f" {MAX_SHAPLEY_GROUPS} groups (use the ordered bridge)",
                                field="--shapley")
        for s in subsets(names):
            label = " + ".join(g for g in names if g in s) or "A"
            plan.labels[label] = s
            plan.points.append((label, _overrides(da, [it for g in names if g in s for it in groups[g]])))
    else:
        plan.points = [(label, _overrides(da, items)) for label, items in sequential_points(groups)]
    return plan


def run_bridge(plan: BridgePlan, out_dir: str | Path, workers: int | None = None,
               progress: bool = True, overwrite: bool = False, force: bool = False) -> dict[str, Any]:
    """Run the plan's scenarios (sweep machinery) into ``out_dir`` and write the bridge table
    (``bridge.csv``, ``bridge.md``), ``bridge.json`` and the waterfall chart."""
    from simulator.sweep.runner import run_sweep
    from simulator.sweep.spec import SweepSpec, build_sweep, point_id

    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        base_file = Path(tmp) / "bridge-base.yaml"
        base_file.write_text(yaml.safe_dump(plan.base, sort_keys=False))
        spec = SweepSpec(command=plan.command, points=[ov for _, ov in plan.points])
        sweep = build_sweep(str(base_file), (), spec, plan.command, force=force)
        sweep.inputs = [plan.a_file, plan.b_file]
        res = run_sweep(sweep, out, workers=workers, progress=progress, overwrite=overwrite)
    table = res["table"].set_index("point_id")
    if plan.metric not in table.columns:
        cols = [c for c in table.columns if isinstance(c, str)]
        raise ScenarioError(f"no metric {plan.metric!r} in the summaries"
                            f"{did_you_mean(plan.metric, cols)}", field="--metric")
    value = {label: float(table.loc[point_id(ov), plan.metric]) for label, ov in plan.points}
    result = _result(plan, value)
    _write(result, plan, out)
    return result


def _result(plan: BridgePlan, value: dict[str, float]) -> dict[str, Any]:
    names = list(plan.groups)
    a = value["A"]
    b_label = plan.points[-1][0]
    b = value[b_label]
    steps = []
    if plan.shapley:
        phi = shapley_values({s: value[label] for label, s in plan.labels.items()}, names)
        for g in names:
            steps.append({"group": g, "delta": phi[g], "value": None,
                          "fields": [it.describe() for it in plan.groups[g]]})
    else:
        prev = a
        for (label, _), g in zip(plan.points[1:], names):
            steps.append({"group": g, "delta": value[label] - prev, "value": value[label],
                          "fields": [it.describe() for it in plan.groups[g]]})
            prev = value[label]
    total = sum(s["delta"] for s in steps)
    if abs(total - (b - a)) > 1e-9 * max(1.0, abs(b - a), abs(a)):
        raise FleetsimError(f"bridge steps sum to {total:.6g}, not B - A = {b - a:.6g}")
    return {"a": plan.a_file, "b": plan.b_file, "command": plan.command, "metric": plan.metric,
            "method": "shapley" if plan.shapley else "ordered", "value_a": a, "value_b": b,
            "difference": b - a, "steps": steps, "scenarios_run": len(plan.points)}


def format_table(r: dict[str, Any]) -> str:
    """The bridge as a markdown table (also what the command prints)."""
    def g(x):
        return "" if x is None else f"{x:,.4g}"

    lines = [f"{r['metric']}: A = {g(r['value_a'])} ({r['a']}), B = {g(r['value_b'])} ({r['b']});"
             f" B - A = {g(r['difference'])} ({r['method']} bridge, {r['scenarios_run']} scenarios)",
             "", "| step | group | change | % of A | value after | fields (B's values) |",
             "|---:|---|---:|---:|---:|---|"]
    for i, s in enumerate(r["steps"], 1):
        pct = 100 * s["delta"] / r["value_a"] if r["value_a"] else float("nan")
        fields = ", ".join(s["fields"][:6]) + (f", ... ({len(s['fields'])} fields)"
                                               if len(s["fields"]) > 6 else "")
        lines.append(f"| {i} | {s['group']} | {s['delta']:+,.4g} | {pct:+.1f} % |"
                     f" {g(s['value'])} | {fields} |")
    return "\n".join(lines)


def _write(r: dict[str, Any], plan: BridgePlan, out: Path) -> None:
    from simulator.output import write_json

    write_json(out / "bridge.json", r)
    pd.DataFrame([{"step": i, "group": s["group"], "delta": s["delta"], "value_after": s["value"],
                   "fields": "; ".join(s["fields"])} for i, s in enumerate(r["steps"], 1)]
                 ).to_csv(out / "bridge.csv", index=False)
    (out / "bridge.md").write_text(format_table(r) + "\n")
    (out / "scenario-a.resolved.yaml").write_text(yaml.safe_dump(plan.base, sort_keys=False))
    b = apply(plan.base, [it for its in plan.groups.values() for it in its])
    (out / "scenario-b.resolved.yaml").write_text(yaml.safe_dump(b, sort_keys=False))
    from simulator.charts import plots

    plots.save(plots.waterfall(r), out / "charts" / "bridge_waterfall")
