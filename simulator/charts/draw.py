"""From a results folder to charts: which charts the results support, and their tidy inputs.

A results folder is a sweep's ``OUT`` (``results.parquet``, ``sweep.json``, ``points/<id>/``)
or a single run's folder (``summary.json``, ``requests.parquet``, ``power/``). A folder may also
hold ``facility_power.parquet`` (columns ``t_s``, ``facility_power_w``, optional ``nodes_on``:
a projection's day), which the 24-hour chart prefers to a simulated run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from simulator.charts import plots
from simulator.errors import DataError
from simulator.sweep.results import flatten_summary

MIX_PREFIX = "workload.mix."
CAP = "deployment.gpu_cap_w"
RATE = "workload.rate_per_s"
NODES = "deployment.nodes"
PARETO_LATENCY = ("e2e_s_p99", "end-to-end latency p99")
#: at most this many points get their own box in the energy-per-query chart (else pooled)
MAX_GROUPS = 6
#: 24-hour chart resolution, s
POWER_BIN_S = 600.0


@dataclass
class Results:
    """A results folder, read: the table, the swept parameters and each row's folder."""

    dir: Path
    table: pd.DataFrame
    params: list[str]
    point_dirs: list[Path]
    is_sweep: bool = True
    grid_params: list[str] = field(default_factory=list)

    def varying(self, cols: list[str] | None = None) -> list[str]:
        cols = self.params if cols is None else cols
        return [c for c in cols if c in self.table and self.table[c].nunique(dropna=True) > 1]


@dataclass
class Chart:
    name: str
    title: str
    paths: list[Path] = field(default_factory=list)


def load_results(path: str | Path) -> Results:
    d = Path(path)
    if (d / "results.parquet").exists():
        table = pd.read_parquet(d / "results.parquet")
        params: list[str] = []
        grid: list[str] = []
        if (d / "sweep.json").exists():
            manifest = json.loads((d / "sweep.json").read_text())
            grid = list(manifest.get("grid", []))
            for p in manifest["points"]:
                params += [k for k in p["overrides"] if k not in params]
        dirs = [d / "points" / pid for pid in table["point_id"]]
        return Results(d, table, [p for p in params if p in table], dirs, grid_params=grid)
    if (d / "summary.json").exists():
        table = pd.DataFrame([flatten_summary(json.loads((d / "summary.json").read_text()))])
        table.insert(0, "point_id", d.name)
        return Results(d, table, [], [d], is_sweep=False)
    raise DataError("not a sweep (results.parquet) or run (summary.json) folder", file=str(d))


def _label(row: pd.Series, params: list[str]) -> str:
    parts = []
    for p in params:
        v = row.get(p)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        parts.append(f"{p.rsplit('.', 1)[-1]}={v:g}" if isinstance(v, (int, float)) else
                     f"{p.rsplit('.', 1)[-1]}={v}")
    return ", ".join(parts)


def _series(df: pd.DataFrame, params: list[str]) -> pd.Series:
    return df.apply(lambda r: _label(r, params), axis=1) if params and len(df) else \
        pd.Series([""] * len(df), index=df.index, dtype=object)


def _numeric(table: pd.DataFrame, col: str) -> bool:
    return col in table and pd.api.types.is_numeric_dtype(table[col])


def _gwh(t: pd.DataFrame, scale: float) -> np.ndarray:
    return plots.gwh_per_day(t["energy_facility_j"], t["simulated_time_s"], scale)


# ------------------------------------------------------------------ chart builders
# each returns (Chart) or raises _Skip(reason)

class _Skip(Exception):
    pass


def _mix_chart(r: Results, out: Path, scale: float, formats: tuple[str, ...], **_) -> Chart:
    mix = [c for c in r.varying() if c.startswith(MIX_PREFIX) and _numeric(r.table, c)]
    if not mix:
        raise _Skip(f"needs a sweep over a numeric {MIX_PREFIX}<class> share")
    col = mix[0]
    t = r.table
    df = pd.DataFrame({"share": t[col], "gwh_per_day": _gwh(t, scale),
                       "series": _series(t, [c for c in r.varying() if c != col])})
    df = df[df["share"].notna()]
    c = Chart("gwh_vs_mix", "Facility energy per day vs query mix (at the simulated load)")
    c.paths = plots.save(plots.gwh_vs_mix(df, col[len(MIX_PREFIX):], scale), out / c.name, formats)
    return c


def _energy_class_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    frames = []
    pooled = len(r.point_dirs) > MAX_GROUPS
    for (_, row), d in zip(r.table.iterrows(), r.point_dirs):
        f = d / "requests.parquet"
        if not f.exists():
            continue
        q = pd.read_parquet(f, columns=["class", "state", "warmup", "energy_facility_wh"])
        q = q[(q["state"].astype(str) == "completed") & ~q["warmup"]]
        label = "all points pooled" if pooled else (_label(row, r.varying()) or str(row["point_id"]))
        frames.append(pd.DataFrame({"class": q["class"].astype(str), "group": label,
                                    "energy_facility_wh": q["energy_facility_wh"]}))
    if not frames or not sum(len(f) for f in frames):
        raise _Skip("needs requests.parquet with completed requests in the point folders")
    c = Chart("energy_per_query_by_class", "Energy per query by class")
    fig = plots.energy_per_query_by_class(pd.concat(frames, ignore_index=True))
    c.paths = plots.save(fig, out / c.name, formats)
    return c


def power_series(run_dir: Path, bin_s: float = POWER_BIN_S) -> tuple[pd.DataFrame, float]:
    """Facility power of a run folder binned to ``bin_s`` (exact bin means of the node
    timelines x PUE) and the nodes on; returns the tidy series and the start hour."""
    sc = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text())
    pue = float(sc["facility"]["pue"])
    files = sorted((run_dir / "power").glob("node-*.parquet"))
    end_s = max(float(pd.read_parquet(f, columns=["t_end_s"])["t_end_s"].max()) for f in files)
    edges = np.arange(0.0, end_s + bin_s, bin_s)
    edges[-1] = min(edges[-1], end_s) if edges[-1] > end_s and edges.size > 2 else edges[-1]
    energy = np.zeros(edges.size - 1)
    for f in files:
        p = pd.read_parquet(f, columns=["t_start_s", "t_end_s", "node_power_w"])
        t = np.concatenate([[p["t_start_s"].iloc[0]], p["t_end_s"].to_numpy()])
        cum = np.concatenate([[0.0], np.cumsum(p["node_power_w"].to_numpy() * np.diff(t))])
        e_at = np.interp(edges, t, cum)  # exact: power is constant within each interval
        energy += np.diff(e_at)
    width = np.diff(edges)
    keep = width > 0
    df = pd.DataFrame({"t_s": edges[:-1][keep],
                       "facility_power_w": energy[keep] / width[keep] * pue,
                       "nodes_on": float(len(files))})
    return df, float(sc["workload"].get("start_hour", 0.0))


def _power_day_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    c = Chart("facility_power_24h", "Facility power over 24 hours with nodes on")
    proj = r.dir / "facility_power.parquet"
    if proj.exists():
        fig = plots.facility_power_24h(pd.read_parquet(proj), subtitle="projection")
        c.paths = plots.save(fig, out / c.name, formats)
        return c
    for (_, row), d in zip(r.table.iterrows(), r.point_dirs):
        f = d / "scenario.resolved.yaml"
        if not f.exists() or not (d / "power").is_dir():
            continue
        sc = yaml.safe_load(f.read_text())
        if sc["workload"].get("hourly_multipliers") and row.get("simulated_time_s", 0) >= 3600:
            ts, h0 = power_series(d)
            label = _label(row, r.varying()) or "simulated run"
            fig = plots.facility_power_24h(ts, start_hour=h0, subtitle=label)
            c.paths = plots.save(fig, out / c.name, formats)
            return c
    raise _Skip("needs a run with workload.hourly_multipliers simulated over >= 1 h"
                " (24 h for a full day), or a projection's facility_power.parquet")


def _pareto_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    col, name = PARETO_LATENCY
    t = r.table
    if len(t) < 2 or col not in t or "energy_per_query_wh_mean" not in t:
        raise _Skip("needs at least two configurations with latency and energy")
    df = pd.DataFrame({"latency_s": t[col], "energy_wh": t["energy_per_query_wh_mean"],
                       "label": _series(t, r.varying())}).dropna(subset=["latency_s", "energy_wh"])
    if len(df) < 2:
        raise _Skip("needs at least two configurations with finite latency and energy")
    c = Chart("latency_energy_pareto", "Latency-energy Pareto front")
    c.paths = plots.save(plots.latency_energy_pareto(df, name), out / c.name, formats)
    return c


def _cap_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    if CAP not in r.varying() or not _numeric(r.table, CAP):
        raise _Skip(f"needs a sweep over {CAP}")
    t = r.table[r.table[CAP].notna()]
    df = pd.DataFrame({"cap_w": t[CAP], "ttft_s_p99": t["ttft_s_p99"], "tpot_s_p99": t["tpot_s_p99"],
                       "energy_wh": t["energy_per_query_wh_mean"],
                       "series": _series(t, [c for c in r.varying() if c != CAP])})
    c = Chart("power_cap", "Power cap against latency and energy")
    c.paths = plots.save(plots.power_cap_tradeoff(df), out / c.name, formats)
    return c


def nodes_needed_frame(table: pd.DataFrame, other_params: list[str], slo_target: float) -> pd.DataFrame:
    """Per arrival rate (and per combination of ``other_params``): the smallest swept
    ``deployment.nodes`` whose worst class reaches ``slo_target`` SLO attainment (NaN if none).

    Columns: ``series``, ``rate_per_s``, ``queries_per_day``, ``nodes``, ``max_nodes``.
    """
    t = table[table[RATE].notna() & table[NODES].notna()].copy()
    slo_cols = [c for c in t.columns if c.startswith("slo_attainment.")]
    if not slo_cols:
        raise _Skip("needs slo_attainment.<class> columns")
    t["_worst"] = t[slo_cols].min(axis=1)
    t["_series"] = _series(t, other_params)
    rows = []
    for (series, rate), g in t.groupby(["_series", RATE], sort=True):
        ok = g[g["_worst"] >= slo_target]
        rows.append({"series": series, "rate_per_s": float(rate),
                     "queries_per_day": float(rate) * plots.SECONDS_PER_DAY,
                     "nodes": float(ok[NODES].min()) if len(ok) else math.nan,
                     "max_nodes": float(g[NODES].max())})
    return pd.DataFrame(rows)


def _nodes_chart(r: Results, out: Path, slo_target: float, formats: tuple[str, ...], **_) -> Chart:
    v = r.varying()
    if RATE not in v or NODES not in v or not (_numeric(r.table, RATE) and _numeric(r.table, NODES)):
        raise _Skip(f"needs a sweep over both {RATE} and {NODES}")
    df = nodes_needed_frame(r.table, [c for c in v if c not in (RATE, NODES)], slo_target)
    c = Chart("nodes_needed", "Nodes needed vs daily volume at the SLO")
    c.paths = plots.save(plots.nodes_needed(df, slo_target), out / c.name, formats)
    return c


def _tornado_chart(r: Results, out: Path, scale: float, formats: tuple[str, ...], **_) -> Chart:
    t = r.table
    params = [p for p in r.params if p in t]
    if not params:
        raise _Skip("needs one-at-a-time points (a baseline {} plus points that each change one input)")
    setn = t[params].notna().sum(axis=1)
    base = t[setn == 0]
    if base.empty:
        raise _Skip("needs a baseline point with no overrides ({} in sweep.points)")
    base_gwh = float(_gwh(base.iloc[[0]], scale)[0])
    rows = []
    for p in params:
        if p in r.grid_params:  # grid axes are studied by other charts, not uncertain inputs
            continue
        one = t[(setn == 1) & t[p].notna()]
        if one.empty or not _numeric(t, p):
            continue
        lo, hi = one.loc[one[p].idxmin()], one.loc[one[p].idxmax()]
        rows.append({"input": p, "low": lo[p], "high": hi[p],
                     "gwh_low": float(plots.gwh_per_day(lo["energy_facility_j"], lo["simulated_time_s"], scale)),
                     "gwh_high": float(plots.gwh_per_day(hi["energy_facility_j"], hi["simulated_time_s"], scale))})
    if not rows:
        raise _Skip("needs points that each change one numeric input from the baseline")
    c = Chart("tornado_gwh", "Sensitivity of GWh/day to uncertain inputs")
    c.paths = plots.save(plots.tornado(pd.DataFrame(rows), base_gwh, scale), out / c.name, formats)
    return c


BUILDERS = {
    "gwh_vs_mix": _mix_chart,
    "energy_per_query_by_class": _energy_class_chart,
    "facility_power_24h": _power_day_chart,
    "latency_energy_pareto": _pareto_chart,
    "power_cap": _cap_chart,
    "nodes_needed": _nodes_chart,
    "tornado_gwh": _tornado_chart,
}


def plot_all(results: str | Path | Results, out_dir: str | Path, fleet_scale: float = 1.0,
             slo_target: float = 0.99, formats: tuple[str, ...] = ("png", "svg"),
             ) -> tuple[list[Chart], list[tuple[str, str]]]:
    """Draw every chart the results support into ``out_dir`` (each as PNG and SVG by default);
    return (charts drawn, [(chart, why it was skipped)])."""
    r = results if isinstance(results, Results) else load_results(results)
    out = Path(out_dir)
    made, skipped = [], []
    for name, build in BUILDERS.items():
        try:
            made.append(build(r, out, scale=fleet_scale, slo_target=slo_target, formats=formats))
        except _Skip as e:
            skipped.append((name, str(e)))
    return made, skipped
