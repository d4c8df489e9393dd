"""``fleetsim compare A B ...``: key metrics of runs, projections or sweep points side by side,
with the difference of each from the first (the baseline), and overlaid charts.

All folders must be of one kind (runs, or projections); a sweep point is its own folder
(``OUT/points/<id>``). Every metric is taken from each folder's ``summary.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from simulator import units
from simulator.charts import plots
from simulator.charts.draw import Results, _class_quartiles, load_results
from simulator.errors import DataError


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    fmt: Callable[[Any], str]
    better: str = "lower"  # or "higher", or "" (neither)


def _worst(row: pd.Series) -> float:
    vals = [row[c] for c in row.index if c.startswith("slo_attainment.") and row[c] == row[c]]
    return min(vals) if vals else math.nan


RUN_METRICS = [
    Metric("nodes", "nodes", units.count, ""),
    Metric("offered_requests_per_s", "offered load (req/s)", lambda x: f"{x:.3g}", ""),
    Metric("throughput_requests_per_s", "served (req/s)", lambda x: f"{x:.3g}", "higher"),
    Metric("throughput_output_tokens_per_s", "output throughput", units.tokens_per_s, "higher"),
    Metric("ttft_s_p99", "TTFT p99", units.seconds),
    Metric("tpot_s_p99", "TPOT p99", units.seconds),
    Metric("slo_worst", "SLO met, worst class", units.pct, "higher"),
    Metric("facility_power_w_mean", "facility power, mean", units.power),
    Metric("node_power_w_peak", "node power, peak", units.power),
    Metric("energy_facility_wh_per_day", "energy per day at this load", units.energy_wh),
    Metric("energy_per_query_wh_mean", "energy per query (facility)", units.energy_wh),
    Metric("energy_per_output_token_j", "energy per output token (GPU)", lambda x: units.eng(x, "J")),
    Metric("cost.usd_per_day", "cost per day", units.money),
    Metric("cost.usd_per_1000_queries", "cost per 1,000 queries", units.money),
]
PROJECTION_METRICS = [
    Metric("queries_per_day", "queries per day", units.count, ""),
    Metric("nodes_fleet", "fleet (nodes)", units.count),
    Metric("nodes_peak", "nodes on, peak hour", units.count),
    Metric("facility_power_w_peak", "peak facility power", units.power),
    Metric("gwh_per_day_facility_p50", "energy per day P50", units.gwh),
    Metric("gwh_per_day_facility_p5", "energy per day P5", units.gwh),
    Metric("gwh_per_day_facility_p95", "energy per day P95", units.gwh),
    Metric("wh_per_query_all_in", "energy per query, all-in", units.energy_wh),
    Metric("slo_worst", "SLO met, worst class (nominal)", units.pct, "higher"),
    Metric("uncertainty.slo_attainment_min_worst", "SLO met, worst draw", units.pct, "higher"),
    Metric("tco2_per_day_p50", "tCO2 per day P50", lambda x: f"{x:,.3g} t"),
    Metric("cost.usd_per_day_p50", "cost per day P50", units.money),
    Metric("cost.usd_per_1000_queries", "cost per 1,000 queries", units.money),
]


def load_all(paths: list[str | Path]) -> list[Results]:
    rs = [load_results(p) for p in paths]
    for r in rs:
        if r.is_sweep:
            raise DataError("compare takes run, projection or sweep-point folders; for a sweep"
                            " give its points (OUT/points/<id>) or use `fleetsim report`",
                            file=str(r.dir))
    kinds = {r.kind for r in rs}
    if len(kinds) > 1:
        raise DataError(f"cannot compare runs with projections ({', '.join(sorted(kinds))})",
                        file=str(rs[-1].dir))
    return rs


def names(rs: list[Results]) -> list[str]:
    """Short, distinct names: the folder names (with their parents where they clash)."""
    out = [r.dir.name for r in rs]
    if len(set(out)) < len(out):
        out = [f"{r.dir.parent.name}/{r.dir.name}" for r in rs]
    if len(set(out)) < len(out):
        out = [f"{n} ({i + 1})" for i, n in enumerate(out)]
    return out


def compare_table(rs: list[Results]) -> pd.DataFrame:
    """One row per metric: each folder's value, and each later folder's difference from the
    first (absolute ``<name> - <first>`` and relative ``<name> vs <first> %``)."""
    metrics = PROJECTION_METRICS if rs[0].is_projection else RUN_METRICS
    ns = names(rs)
    rows = []
    for m in metrics:
        vals = []
        for r in rs:
            row = r.table.iloc[0]
            vals.append(_worst(row) if m.key == "slo_worst" else row.get(m.key, math.nan))
        vals = [float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                else math.nan for v in vals]
        if all(math.isnan(v) for v in vals):
            continue
        rec: dict[str, Any] = {"metric": m.label, "key": m.key, "better": m.better}
        for n, v in zip(ns, vals):
            rec[n] = v
        base = vals[0]
        for n, v in zip(ns[1:], vals[1:]):
            rec[f"{n} - {ns[0]}"] = v - base
            rec[f"{n} vs {ns[0]} %"] = (v / base - 1) * 100 if base not in (0, 0.0) and base == base else math.nan
        rows.append(rec)
    return pd.DataFrame(rows)


def format_table(rs: list[Results], df: pd.DataFrame) -> str:
    """The table as text: values in engineering units, differences in %."""
    metrics = {m.key: m for m in (PROJECTION_METRICS if rs[0].is_projection else RUN_METRICS)}
    ns = names(rs)
    header = ["metric", *ns, *[f"{n} vs {ns[0]}" for n in ns[1:]]]
    lines = []
    for _, r in df.iterrows():
        fmt = metrics[r["key"]].fmt
        cells = [r["metric"], *[fmt(r[n]) for n in ns]]
        for n in ns[1:]:
            d = r[f"{n} vs {ns[0]} %"]
            cells.append("n/a" if d != d else ("=" if abs(d) < 0.05 else f"{d:+.1f} %"))
        lines.append(cells)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    out = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(row, widths))) for row in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def compare_charts(rs: list[Results], out: Path, formats: tuple[str, ...] = ("png", "svg")
                   ) -> list[Path]:
    """Overlaid charts: the 24-hour power of projections (with bands), energy per query by
    class of every folder, and the key metrics relative to the first."""
    ns = names(rs)
    paths: list[Path] = []
    title = " vs ".join(ns) if len(ns) <= 3 else f"{ns[0]} and {len(ns) - 1} more"
    if rs[0].is_projection:
        frames = {n: pd.read_parquet(r.dir / "facility_power.parquet")
                  for n, r in zip(ns, rs) if (r.dir / "facility_power.parquet").exists()}
        if frames:
            fig = plots.facility_power_24h(next(iter(frames.values())), scenario=title,
                                           detail="projected fleet-days, nominal, bands P5-P95",
                                           series=frames)
            paths += plots.save(fig, out / "facility_power_24h", formats)
    q = []
    for n, r in zip(ns, rs):
        d = _class_quartiles(r)
        if not d.empty:
            q.append(d.assign(group=n))
    if q:
        paths += plots.save(plots.energy_per_query_by_class(pd.concat(q, ignore_index=True), title),
                            out / "energy_per_query_by_class", formats)
    df = compare_table(rs)
    if len(rs) > 1 and len(df):
        paths += plots.save(plots.relative_bars(df, ns, title), out / "relative_to_first", formats)
    return paths
