"""One self-contained HTML report of a run, a projection or a sweep (``fleetsim report``).

The page (a jinja2 template, ``templates/report.html.j2``) holds: a headline panel (nodes,
peak facility power, energy per day with its band, the worst class's SLO attainment, cost),
the recommended configuration when the results are a search (a sweep), every chart the
results support as inline SVG, and a sortable table of the columns that matter, with units.
Nothing outside the file is referenced; a little plain JavaScript sorts the table.

The recommendation: among the points whose every class meets the SLO target, per load and
assumptions (points that differ in ``workload.*`` or ``facility.*`` are not alternatives to
each other), the one with the lowest cost per 1,000 queries when the scenario has a ``cost``
section, else the lowest energy per query (runs) or facility GWh/day P50 (projections).
"""

from __future__ import annotations

import html
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from simulator import units
from simulator.charts.draw import Results, _label, _series, kind_of, load_results, plot_all


@dataclass(frozen=True)
class Column:
    """A table column: the results column (or a function of the row), its heading, unit and
    how a value reads."""

    key: str | Callable[[pd.Series], Any]
    header: str
    unit: str = ""
    fmt: Callable[[Any], str] = lambda x: units.NA if x is None or x != x else f"{x:.3g}"
    type: str = "num"


def _worst_slo(row: pd.Series) -> float:
    vals = [row[c] for c in row.index if c.startswith("slo_attainment.") and row[c] == row[c]]
    return min(vals) if vals else math.nan


RUN_COLUMNS = [
    Column("nodes", "nodes", "count", units.count),
    Column("gpus", "GPUs", "count", units.count),
    Column("offered_requests_per_s", "offered", "req/s"),
    Column("throughput_requests_per_s", "served", "req/s"),
    Column("throughput_output_tokens_per_s", "output", "tok/s", units.tokens_per_s),
    Column("ttft_s_p99", "TTFT p99", "", units.seconds),
    Column("tpot_s_p99", "TPOT p99", "", units.seconds),
    Column(_worst_slo, "SLO met", "worst class", units.pct),
    Column("energy_per_query_wh_mean", "energy per query", "facility, mean", units.energy_wh),
    Column("facility_power_w_mean", "facility power", "mean", units.power),
    Column("energy_facility_wh_per_day", "energy per day", "facility, at this load", units.energy_wh),
]
PROJECTION_COLUMNS = [
    Column("nodes_fleet", "fleet", "nodes", units.count),
    Column("nodes_peak", "nodes on", "peak hour", units.count),
    Column("facility_power_w_peak", "peak power", "facility", units.power),
    Column("gwh_per_day_facility_p50", "energy per day", "facility, P50", units.gwh),
    Column("gwh_per_day_facility_p5", "P5", "per day", units.gwh),
    Column("gwh_per_day_facility_p95", "P95", "per day", units.gwh),
    Column("wh_per_query_all_in", "energy per query", "all-in", units.energy_wh),
    Column(_worst_slo, "SLO met", "worst class, nominal", units.pct),
    Column("uncertainty.slo_attainment_min_worst", "worst draw", "worst class", units.pct),
]
COST_COLUMNS = [
    Column("cost.usd_per_day", "cost", "USD/day", units.money),
    Column("cost.usd_per_1000_queries", "cost per 1,000 queries", "USD", units.money),
]


def _value(row: pd.Series, key) -> Any:
    if callable(key):
        return key(row)
    v = row.get(key, math.nan)
    return v


def _param_column(p: str, table: pd.DataFrame) -> Column:
    numeric = pd.api.types.is_numeric_dtype(table[p])
    return Column(p, p.rsplit(".", 1)[-1], p.rsplit(".", 1)[0] if "." in p else "",
                  (lambda x: "" if x != x else f"{x:g}") if numeric else (lambda x: "" if x is None or x != x else str(x)),
                  "num" if numeric else "text")


def columns_for(r: Results) -> list[Column]:
    """Swept inputs first, then the metrics that matter for the kind of results."""
    cols = [_param_column(p, r.table) for p in r.params if p in r.table]
    cols += PROJECTION_COLUMNS if r.is_projection else RUN_COLUMNS
    if "cost.usd_per_day" in r.table:
        cols += COST_COLUMNS
    return [c for c in cols if callable(c.key) or c.key in r.table]


def _objective(r: Results) -> tuple[str, str]:
    t = r.table
    if "cost.usd_per_1000_queries" in t:
        return "cost.usd_per_1000_queries", "the lowest cost per 1,000 queries"
    if r.is_projection:
        return "gwh_per_day_facility_p50", "the lowest facility energy per day (P50)"
    return "energy_per_query_wh_mean", "the lowest facility energy per query"


def recommendations(r: Results, slo_target: float) -> list[dict[str, Any]]:
    """Per load (and assumptions): the feasible point that is best on the objective."""
    if not r.is_sweep or len(r.table) < 2:
        return []
    t = r.table.copy()
    obj, why = _objective(r)
    if obj not in t:
        return []
    t["_worst"] = t.apply(_worst_slo, axis=1)
    v = r.varying()
    group_params = [p for p in v if kind_of(p) != "design"]
    design = [p for p in v if kind_of(p) == "design"]
    t["_group"] = _series(t, group_params).replace("", "as given")
    out = []
    for g, rows in t.groupby("_group", sort=False):
        ok = rows[(rows["_worst"] >= slo_target) & rows[obj].notna()]
        if len(rows) < 2 and group_params:
            continue
        if ok.empty:
            out.append({"group": g, "label": "none", "point_id": None,
                        "why": f"no point meets the SLO (every class >= {slo_target:.0%})"})
            continue
        best = ok.loc[ok[obj].idxmin()]
        label = _label(best, design) or _label(best, v) or str(best["point_id"])
        out.append({"group": g, "label": label, "point_id": best["point_id"],
                    "why": f"{why} among {len(ok)} of {len(rows)} points meeting the SLO"
                           f" (every class >= {slo_target:.0%})"})
    return out


def _tiles(row: pd.Series, is_projection: bool, slo_target: float) -> list[dict[str, Any]]:
    worst = _worst_slo(row)
    tiles = []
    if is_projection:
        tiles += [
            {"key": "nodes", "value": units.count(row.get("nodes_fleet")),
             "note": f"peak hour {units.count(row.get('nodes_peak'))} on"},
            {"key": "peak facility power", "value": units.power(row.get("facility_power_w_peak")),
             "note": f"peak hour P95 {units.power(row.get('facility_power_w_peak_p95'))}"},
            {"key": "energy per day", "value": units.gwh(row.get("gwh_per_day_facility_p50")),
             "note": f"P5 {units.gwh(row.get('gwh_per_day_facility_p5'))} –"
                     f" P95 {units.gwh(row.get('gwh_per_day_facility_p95'))}"},
        ]
        wd = row.get("uncertainty.slo_attainment_min_worst", math.nan)
        tiles.append({"key": "SLO attainment", "value": units.pct(worst),
                      "note": f"worst class, nominal; worst draw {units.pct(wd)}",
                      "miss": (worst < slo_target) or (wd == wd and wd < slo_target)})
    else:
        tiles += [
            {"key": "nodes", "value": units.count(row.get("nodes")),
             "note": f"{units.count(row.get('gpus'))} GPUs"},
            {"key": "peak node power", "value": units.power(row.get("node_power_w_peak")),
             "note": f"facility mean {units.power(row.get('facility_power_w_mean'))}"},
            {"key": "energy per day", "value": units.energy_wh(row.get("energy_facility_wh_per_day")),
             "note": "at the simulated load (no band: one run)"},
            {"key": "SLO attainment", "value": units.pct(worst), "note": "worst class",
             "miss": worst < slo_target},
        ]
    if "cost.usd_per_day" in row.index:
        tiles.append({"key": "cost", "value": f"{units.money(row.get('cost.usd_per_day'))}/day",
                      "note": f"{units.money(row.get('cost.usd_per_1000_queries'))} per 1,000"
                              f" queries; {units.money(row.get('cost.usd_per_million_output_tokens'))}"
                              " per million output tokens"})
    return tiles


def _svg(path: Path, idx: int) -> str:
    """An SVG file as inline markup: XML header dropped, ids made unique per chart."""
    text = path.read_text()
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r'id="([^"]+)"', rf'id="c{idx}-\1"', text)
    text = re.sub(r'(xlink:href|href)="#([^"]+)"', rf'\1="#c{idx}-\2"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#c{idx}-\1)", text)
    return text


def render_report(results: str | Path | Results, fleet_scale: float = 1.0,
                  slo_target: float = 0.99) -> str:
    """The report page as a string."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    r = results if isinstance(results, Results) else load_results(results)
    with tempfile.TemporaryDirectory() as tmp:
        made, skipped = plot_all(r, tmp, fleet_scale=fleet_scale, slo_target=slo_target,
                                 formats=("svg",))
        charts = [{"name": c.name, "title": c.title, "svg": _svg(c.paths[0], i)}
                  for i, c in enumerate(made)]
    recs = recommendations(r, slo_target)
    rec_ids = {x["point_id"] for x in recs if x["point_id"] is not None}
    headline_row = r.table.iloc[0]
    recommended = None
    if recs:
        first = next((x for x in recs if x["point_id"] is not None), None)
        if first is not None:
            headline_row = r.table[r.table["point_id"] == first["point_id"]].iloc[0]
            recommended = {"label": first["label"] + ("" if len(recs) == 1 else f" ({first['group']})"),
                           "why": first["why"]}
    cols = columns_for(r)
    rows = []
    for _, row in r.table.iterrows():
        cells = []
        for c in cols:
            v = _value(row, c.key)
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            raw = (v if num and v == v else "") if c.type == "num" else ("" if v is None else str(v))
            miss = c.header in ("SLO met", "worst draw") and num and v == v and v < slo_target
            cells.append({"v": raw, "text": c.fmt(v), "miss": miss})
        rows.append({"cells": cells, "rec": row["point_id"] in rec_ids})
    kind = {"run": "run", "projection": "fleet-day projection", "sweep-run": "sweep of runs",
            "sweep-project": "sweep of projections"}[r.kind]
    sub = f"{kind} in <code>{html.escape(str(r.dir))}</code>"
    if r.manifest:
        sub = (f"{kind}: scenario <code>{html.escape(str(r.manifest.get('scenario')))}</code>,"
               f" {len(r.manifest.get('points', []))} points ({len(r.table)} finished); swept:"
               f" {html.escape(', '.join(r.params) or 'nothing')}")
    notes = [f"SLO target: {slo_target:.0%} of every class's requests within both TTFT and TPOT"
             " targets (a red figure misses it).",
             "Energy per day of runs is the steady-state window's mean facility power held for"
             " 24 h" + ("" if fleet_scale == 1 else f", x {fleet_scale:g} fleets") + "; of"
             " projections, the projected day (P50, band P5-P95 over Monte Carlo draws)."]
    if "cost.usd_per_day" in r.table:
        notes.append("Costs use the scenario's cost section: prices are user inputs.")
    env = Environment(loader=PackageLoader("simulator.charts", "templates"),
                      autoescape=select_autoescape(["j2", "html"]))
    from markupsafe import Markup

    return env.get_template("report.html.j2").render(
        title=f"{r.scenario}: {kind}", subtitle=Markup(sub), tiles=_tiles(headline_row, r.is_projection, slo_target),
        recommended=recommended, recommendations=recs, charts=charts, skipped=skipped,
        columns=cols, rows=rows, notes=notes)


#: the line every report holds (an existing file is replaced only when it holds it)
SIGNATURE = "<title>fleetsim report:"


def write_report(results: str | Path, out_path: str | Path | None = None, fleet_scale: float = 1.0,
                 slo_target: float = 0.99, overwrite: bool = False) -> Path:
    """Write ``report.html`` (default inside ``results``) atomically; an existing file is
    replaced only when it is a fleetsim report, or with ``overwrite``
    (:func:`simulator.output.write_text_file`)."""
    from simulator.output import write_text_file

    r = load_results(results)
    out = Path(out_path) if out_path else r.dir / "report.html"
    page = render_report(r, fleet_scale, slo_target)
    return write_text_file(out, page, signature=SIGNATURE, overwrite=overwrite)

