"""From a results folder to charts: which charts the results support, and their tidy inputs.

A results folder is one of

* a run (``fleetsim run``: ``summary.json``, ``requests.parquet``, ``power/``),
* a projection (``fleetsim project``: ``summary.json`` with ``projection_schema_version``,
  ``facility_power.parquet``, ``sensitivity.csv``),
* a sweep (``results.parquet``, ``sweep.json``, ``points/<id>/``) of runs or of projections.

Each chart builder says which of these it can draw from and skips, with the reason, when the
results lack what it needs — it never fails on a missing column.

Swept inputs are read by kind (:func:`kind_of`): *load* (``workload.*``, the projection's daily
volume and curve) says what is served; *assumption* (``facility.*``, ``cost.*``,
``projection.uncertainty.*``) is what is not known or not chosen; everything else (deployment,
serving, router, power caps, pools) is a *design* choice. A Pareto front compares designs only:
never across loads or assumptions.
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
QPD = "projection.queries_per_day"
ASSUMPTION_PREFIXES = ("facility.", "cost.", "projection.uncertainty.", "projection.carbon")
LOAD_PREFIXES = ("workload.", "projection.queries_per_day", "projection.hourly_multipliers",
                 "projection.curve_trace")
#: at most this many configurations get their own row / series in one chart (the title says so)
MAX_SERIES = 8
#: 24-hour chart resolution, s
POWER_BIN_S = 600.0


def kind_of(param: str) -> str:
    """'assumption', 'load' or 'design' (see the module docstring)."""
    if param.startswith(ASSUMPTION_PREFIXES):
        return "assumption"
    if param.startswith(LOAD_PREFIXES):
        return "load"
    return "design"


@dataclass
class Results:
    """A results folder, read: the table, the swept parameters and each row's folder.

    ``kind``: ``run``, ``projection``, ``sweep-run`` or ``sweep-project``."""

    dir: Path
    table: pd.DataFrame
    params: list[str]
    point_dirs: list[Path]
    kind: str = "sweep-run"
    grid_params: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @property
    def is_sweep(self) -> bool:
        return self.kind.startswith("sweep")

    @property
    def is_projection(self) -> bool:
        return self.kind in ("projection", "sweep-project")

    @property
    def scenario(self) -> str:
        if "scenario" in self.table and len(self.table):
            return str(self.table["scenario"].iloc[0])
        return self.dir.name

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
        manifest: dict = {}
        if (d / "sweep.json").exists():
            manifest = json.loads((d / "sweep.json").read_text())
            grid = list(manifest.get("grid", []))
            for p in manifest["points"]:
                params += [k for k in p["overrides"] if k not in params]
        command = manifest.get("command") or (
            "project" if "gwh_per_day_facility_p50" in table else "run")
        for p in params:  # "1.0e7" is a string to YAML 1.1: read numbers as numbers
            if p in table and not pd.api.types.is_numeric_dtype(table[p]) and not pd.api.types.is_bool_dtype(table[p]):
                num = pd.to_numeric(table[p], errors="coerce")
                if num.notna().sum() == table[p].notna().sum():
                    table[p] = num
        dirs = [d / "points" / pid for pid in table["point_id"]]
        return Results(d, table, [p for p in params if p in table], dirs, f"sweep-{command}",
                       grid, manifest)
    if (d / "summary.json").exists():
        try:
            summary = json.loads((d / "summary.json").read_text())
        except ValueError as e:
            raise DataError(f"malformed JSON: {e}", file=str(d / "summary.json")) from None
        table = pd.DataFrame([flatten_summary(summary)])
        table.insert(0, "point_id", d.name)
        kind = "projection" if "projection_schema_version" in summary else "run"
        return Results(d, table, [], [d], kind)
    raise DataError("not a sweep (results.parquet), run or projection (summary.json) folder",
                    file=str(d))


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        v = int(v)
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _label(row: pd.Series, params: list[str]) -> str:
    parts = []
    for p in params:
        v = row.get(p)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        parts.append(f"{p.rsplit('.', 1)[-1]}={_fmt(v)}")
    return ", ".join(parts)


def _series(df: pd.DataFrame, params: list[str]) -> pd.Series:
    return df.apply(lambda r: _label(r, params), axis=1) if params and len(df) else \
        pd.Series([""] * len(df), index=df.index, dtype=object)


def _numeric(table: pd.DataFrame, col: str) -> bool:
    return col in table and pd.api.types.is_numeric_dtype(table[col])


class _Skip(Exception):
    pass


def _need(r: Results, *cols: str) -> None:
    missing = [c for c in cols if c not in r.table]
    if missing:
        raise _Skip(f"needs {', '.join(missing)} in the results")


def energy_per_day_frame(r: Results, scale: float = 1.0) -> pd.DataFrame:
    """Facility GWh/day of every row: a projection's P50 with its P5-P95 band, or a run's
    steady-state window held for 24 h (``energy_facility_wh_per_day``) x ``scale`` fleets."""
    t = r.table
    if "gwh_per_day_facility_p50" in t:
        return pd.DataFrame({"gwh_per_day": t["gwh_per_day_facility_p50"],
                             "gwh_per_day_p5": t["gwh_per_day_facility_p5"],
                             "gwh_per_day_p95": t["gwh_per_day_facility_p95"]}, index=t.index)
    if "energy_facility_wh_per_day" in t:
        return pd.DataFrame({"gwh_per_day": plots.gwh_per_day(t["energy_facility_wh_per_day"], scale)},
                            index=t.index)
    raise _Skip("needs energy per day (energy_facility_wh_per_day or gwh_per_day_facility_p50):"
                " results from an older fleetsim? run them again")


def _energy_detail(r: Results, scale: float) -> str:
    if r.is_projection:
        return "projected fleet-day, P50 with the P5-P95 band over Monte Carlo draws"
    return ("at the simulated load, steady state (window mean power x 24 h)"
            + ("" if scale == 1 else f", x {scale:g} fleets"))


# ------------------------------------------------------------------ chart builders
# each returns a Chart or raises _Skip(reason)

def _mix_chart(r: Results, out: Path, scale: float, formats: tuple[str, ...], **_) -> Chart:
    mix = [c for c in r.varying() if c.startswith(MIX_PREFIX) and _numeric(r.table, c)]
    if not mix:
        raise _Skip(f"needs a sweep over a numeric {MIX_PREFIX}<class> share")
    col = mix[0]
    t = r.table
    df = energy_per_day_frame(r, scale).assign(
        x=t[col], series=_series(t, [c for c in r.varying() if c != col]))
    df = df[df["x"].notna()]
    c = Chart("gwh_vs_mix", "Facility energy per day vs query mix")
    fig = plots.energy_per_day_vs(df, f"share of '{col[len(MIX_PREFIX):]}' queries (fraction)",
                                  r.scenario, _energy_detail(r, scale), scale)
    c.paths = plots.save(fig, out / c.name, formats)
    return c


def _energy_vs_input_chart(r: Results, out: Path, scale: float, formats: tuple[str, ...],
                           **_) -> Chart:
    if r.kind != "sweep-project":
        raise _Skip("needs a sweep of projections (--command project)")
    cand = [c for c in r.varying() if _numeric(r.table, c) and not c.startswith(MIX_PREFIX)]
    if not cand:
        raise _Skip("needs a projection sweep over a numeric input other than the mix")
    col = QPD if QPD in cand else cand[0]
    t = r.table
    df = energy_per_day_frame(r, scale).assign(
        x=t[col], series=_series(t, [c for c in r.varying() if c != col]))
    df = df[df["x"].notna()]
    c = Chart("energy_per_day_vs_input", f"Facility energy per day vs {col}")
    fig = plots.energy_per_day_vs(df, col, r.scenario, _energy_detail(r, scale))
    c.paths = plots.save(fig, out / c.name, formats)
    return c


def _class_quartiles(r: Results) -> pd.DataFrame:
    """One row per (configuration, class): facility Wh per query P25 / P50 / P75."""
    rows = []
    labels = [_label(row, r.varying()) or str(row["point_id"]) for _, row in r.table.iterrows()]
    if r.is_projection:
        classes = [c[len("wh_per_query_p50."):] for c in r.table if c.startswith("wh_per_query_p50.")]
        for label, (_, row) in zip(labels, r.table.iterrows()):
            for cls in classes:
                rows.append({"group": label, "class": cls,
                             **{q: row.get(f"wh_per_query_{q}.{cls}") for q in ("p25", "p50", "p75")}})
        return pd.DataFrame(rows).dropna(subset=["p50"]) if rows else pd.DataFrame()
    for label, d in zip(labels, r.point_dirs):
        f = d / "requests.parquet"
        if not f.exists():
            continue
        q = pd.read_parquet(f, columns=["class", "state", "warmup", "energy_facility_wh"])
        q = q[(q["state"].astype(str) == "completed") & ~q["warmup"]]
        for cls, g in q.groupby(q["class"].astype(str), sort=False, observed=True):
            v = g["energy_facility_wh"].to_numpy()
            v = v[np.isfinite(v)]
            if v.size:
                rows.append({"group": label, "class": cls, "p25": np.percentile(v, 25),
                             "p50": np.percentile(v, 50), "p75": np.percentile(v, 75)})
    return pd.DataFrame(rows)


def _energy_class_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    df = _class_quartiles(r)
    if df.empty:
        raise _Skip("needs completed requests (requests.parquet) or a projection's"
                    " wh_per_query_* by class")
    c = Chart("energy_per_query_by_class", "Energy per query by class")
    c.paths = plots.save(plots.energy_per_query_by_class(df, r.scenario), out / c.name, formats)
    return c


def power_series(run_dir: Path, bin_s: float = POWER_BIN_S) -> tuple[pd.DataFrame, float]:
    """Facility power of a run folder binned to ``bin_s`` (exact bin means of the node
    timelines x PUE) and the nodes on; returns the tidy series and the start hour."""
    sc = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text())
    pue = float(sc["facility"]["pue"])
    nodes = node_timelines(run_dir, ["t_start_s", "t_end_s", "node_power_w"])
    end_s = max(float(p["t_end_s"].max()) for p in nodes)
    edges = np.arange(0.0, end_s + bin_s, bin_s)
    edges[-1] = min(edges[-1], end_s) if edges[-1] > end_s and edges.size > 2 else edges[-1]
    energy = np.zeros(edges.size - 1)
    for p in nodes:
        t = np.concatenate([[p["t_start_s"].iloc[0]], p["t_end_s"].to_numpy()])
        cum = np.concatenate([[0.0], np.cumsum(p["node_power_w"].to_numpy() * np.diff(t))])
        e_at = np.interp(edges, t, cum)  # exact: power is constant within each interval
        energy += np.diff(e_at)
    width = np.diff(edges)
    keep = width > 0
    df = pd.DataFrame({"t_s": edges[:-1][keep],
                       "facility_power_w": energy[keep] / width[keep] * pue,
                       "nodes_on": float(len(nodes))})
    return df, float(sc["workload"].get("start_hour", 0.0))


def node_timelines(run_dir: Path, columns: list[str]) -> list[pd.DataFrame]:
    """Each node's power timeline of a run folder, in node order: ``power/nodes.parquet``
    (one file, a ``node`` column), or the one file per node (``power/node-<i>.parquet``)
    that runs wrote before it."""
    one = run_dir / "power" / "nodes.parquet"
    if one.exists():
        df = pd.read_parquet(one, columns=["node", *columns])
        return [g.drop(columns="node").reset_index(drop=True)
                for _, g in df.groupby("node", sort=True)]
    files = sorted((run_dir / "power").glob("node-*.parquet"),
                   key=lambda f: int(f.stem.split("-")[1]))
    return [pd.read_parquet(f, columns=columns) for f in files]


def projection_day_figure(ts: pd.DataFrame, summary: dict):
    """The 24-hour chart of a projection (the same figure from `fleetsim project` and from
    `fleetsim plot` on its folder)."""
    from simulator import units

    peak = summary.get("facility_power_w_peak")
    detail = (f"{units.count(summary.get('queries_per_day'))} queries/day,"
              f" {summary.get('idle_policy', '')}, peak {units.power(peak)},"
              f" {units.gwh(summary.get('gwh_per_day_facility_p50'))}/day P50;"
              " band: P5-P95 over draws")
    return plots.facility_power_24h(ts, scenario=str(summary.get("scenario", "")), detail=detail)


def _power_day_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    c = Chart("facility_power_24h", "Facility power over 24 hours with nodes on")
    if r.kind == "projection":
        f = r.dir / "facility_power.parquet"
        if not f.exists():
            raise _Skip("needs the projection's facility_power.parquet")
        summary = json.loads((r.dir / "summary.json").read_text())
        c.paths = plots.save(projection_day_figure(pd.read_parquet(f), summary), out / c.name,
                             formats)
        return c
    if r.kind == "sweep-project":
        frames = {}
        for (_, row), d in zip(r.table.iterrows(), r.point_dirs):
            f = d / "facility_power.parquet"
            if f.exists():
                frames[_label(row, r.varying()) or str(row["point_id"])] = pd.read_parquet(f)
        if not frames:
            raise _Skip("needs the points' facility_power.parquet")
        shown = dict(list(frames.items())[:MAX_SERIES])
        more = f" (first {len(shown)} of {len(frames)} points)" if len(shown) < len(frames) else ""
        fig = plots.facility_power_24h(next(iter(shown.values())), scenario=r.scenario,
                                       detail="projected fleet-days, nominal, bands P5-P95" + more,
                                       series=shown)
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
            fig = plots.facility_power_24h(ts, start_hour=h0, scenario=r.scenario,
                                           detail=f"{label}, simulated, {POWER_BIN_S / 60:g}-minute means")
            c.paths = plots.save(fig, out / c.name, formats)
            return c
    raise _Skip("needs a run with workload.hourly_multipliers simulated over >= 1 h"
                " (24 h for a full day), or a projection's facility_power.parquet")


def pareto_frame(r: Results, slo_target: float) -> pd.DataFrame:
    """Rows for the efficiency Pareto chart: throughput per GPU, energy per query, whether
    every class met ``slo_target``, the load group (load and assumption inputs: points that
    differ in them are never compared) and the design label."""
    t = r.table
    slo_cols = [c for c in t if c.startswith("slo_attainment.")]
    if not slo_cols:
        raise _Skip("needs slo_attainment.<class> columns")
    v = r.varying()
    group_params = [p for p in v if kind_of(p) != "design"]
    design = [p for p in v if kind_of(p) == "design"]
    worst = t[slo_cols].min(axis=1)
    df = pd.DataFrame({
        "tokens_per_s_per_gpu": t["throughput_output_tokens_per_s"] / t["gpus"],
        "energy_wh": t["energy_per_query_wh_mean"],
        "feasible": (worst >= slo_target).to_numpy(),
        "load": _series(t, group_params).replace("", "as given"),
        "label": _series(t, design)}).dropna(subset=["tokens_per_s_per_gpu", "energy_wh"])
    return df


def _pareto_chart(r: Results, out: Path, slo_target: float, formats: tuple[str, ...], **_) -> Chart:
    if r.kind != "sweep-run":
        raise _Skip("needs a sweep of runs over design choices (deployment, serving, caps)")
    _need(r, "throughput_output_tokens_per_s", "gpus", "energy_per_query_wh_mean")
    df = pareto_frame(r, slo_target)
    sizes = df.groupby("load")["label"].nunique()
    if not (sizes >= 2).any():
        raise _Skip("needs at least two design configurations at the same load and assumptions")
    if not df["feasible"].any():
        raise _Skip(f"no configuration meets the SLO (every class >= {slo_target:.0%})")
    c = Chart("efficiency_pareto", "Energy per query vs throughput per GPU: Pareto front")
    c.paths = plots.save(plots.efficiency_pareto(df, slo_target, r.scenario), out / c.name, formats)
    return c


def _slo_of(r: Results) -> tuple[float | None, float | None]:
    """The tightest TTFT and TPOT targets among the classes (from a point's resolved scenario)."""
    for d in r.point_dirs:
        f = d / "scenario.resolved.yaml"
        if f.exists():
            sc = yaml.safe_load(f.read_text())
            slos = [c.get("slo") or {} for c in sc["workload"]["classes"].values()]
            ttft = [s["ttft_s"] for s in slos if "ttft_s" in s]
            tpot = [s["tpot_s"] for s in slos if "tpot_s" in s]
            return (min(ttft) if ttft else None, min(tpot) if tpot else None)
    return None, None


def _cap_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    if CAP not in r.varying() or not _numeric(r.table, CAP):
        raise _Skip(f"needs a sweep over {CAP}")
    _need(r, "ttft_s_p99", "tpot_s_p99", "energy_per_query_wh_mean")
    t = r.table[r.table[CAP].notna()]
    df = pd.DataFrame({"cap_w": t[CAP], "ttft_s_p99": t["ttft_s_p99"], "tpot_s_p99": t["tpot_s_p99"],
                       "energy_wh": t["energy_per_query_wh_mean"],
                       "series": _series(t, [c for c in r.varying() if c != CAP])})
    ttft, tpot = _slo_of(r)
    c = Chart("power_cap", "Power cap against latency and energy")
    c.paths = plots.save(plots.power_cap_tradeoff(df, ttft, tpot, r.scenario), out / c.name, formats)
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
    c = Chart("nodes_needed", "Nodes needed vs daily volume at the SLO")
    if r.kind == "sweep-project":
        if QPD not in v:
            raise _Skip(f"needs a projection sweep over {QPD}")
        t = r.table
        df = pd.DataFrame({"queries_per_day": t[QPD], "nodes": t["nodes_fleet"].astype(float),
                           "max_nodes": t["nodes_fleet"].astype(float),
                           "series": _series(t, [p for p in v if p != QPD])})
        target = float(t["slo_target"].iloc[0]) if "slo_target" in t else slo_target
        c.paths = plots.save(plots.nodes_needed(df, target, r.scenario), out / c.name, formats)
        return c
    if RATE not in v or NODES not in v or not (_numeric(r.table, RATE) and _numeric(r.table, NODES)):
        raise _Skip(f"needs a sweep over both {RATE} and {NODES}, or projections over {QPD}")
    df = nodes_needed_frame(r.table, [c for c in v if c not in (RATE, NODES)], slo_target)
    c.paths = plots.save(plots.nodes_needed(df, slo_target, r.scenario), out / c.name, formats)
    return c


def _tornado_chart(r: Results, out: Path, scale: float, formats: tuple[str, ...], **_) -> Chart:
    c = Chart("tornado_gwh", "Sensitivity of GWh/day to uncertain inputs")
    if r.kind == "projection":
        f = r.dir / "sensitivity.csv"
        sens = pd.read_csv(f) if f.exists() else pd.DataFrame()
        if sens.empty:
            raise _Skip("needs the projection's sensitivity.csv with rows (enough draws)")
        base = float(r.table["gwh_per_day_facility_p50"].iloc[0])
        c.paths = plots.save(plots.tornado(sens, base, scenario=r.scenario), out / c.name, formats)
        return c
    t = r.table
    params = [p for p in r.params if p in t]
    if not params or not r.is_sweep:
        raise _Skip("needs one-at-a-time points (a baseline {} plus points that each change one input)")
    gwh = energy_per_day_frame(r, scale)["gwh_per_day"]
    setn = t[params].notna().sum(axis=1)
    base = t[setn == 0]
    if base.empty:
        raise _Skip("needs a baseline point with no overrides ({} in sweep.points)")
    base_gwh = float(gwh[base.index[0]])
    rows = []
    for p in params:
        if p in r.grid_params:  # grid axes are studied by other charts, not uncertain inputs
            continue
        one = t[(setn == 1) & t[p].notna()]
        if one.empty or not _numeric(t, p):
            continue
        lo, hi = one[p].idxmin(), one[p].idxmax()
        rows.append({"input": p, "low": t.at[lo, p], "high": t.at[hi, p],
                     "gwh_low": float(gwh[lo]), "gwh_high": float(gwh[hi])})
    if not rows:
        raise _Skip("needs points that each change one numeric input from the baseline")
    fig = plots.tornado(pd.DataFrame(rows), base_gwh, scale, r.scenario)
    c.paths = plots.save(fig, out / c.name, formats)
    return c


def _cost_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    col = "cost.usd_per_1000_queries"
    if not r.is_sweep or col not in r.table:
        raise _Skip("needs a sweep whose scenario has a cost section")
    cand = [c for c in r.varying() if _numeric(r.table, c)]
    if not cand:
        raise _Skip("needs a sweep over a numeric input")
    x = QPD if QPD in cand else cand[0]
    t = r.table
    df = pd.DataFrame({"x": t[x], "y": t[col],
                       "series": _series(t, [c for c in r.varying() if c != x])}).dropna()
    if df.empty:
        raise _Skip(f"no point has both {x} and {col}")
    c = Chart("cost_per_query", f"Cost per 1,000 queries vs {x}")
    fig = plots.metric_vs(df, x, "cost per 1,000 queries (USD)",
                          f"what do 1,000 queries cost as {x.rsplit('.', 1)[-1]} changes?",
                          r.scenario, "hardware + electricity at the scenario's prices (user inputs)")
    c.paths = plots.save(fig, out / c.name, formats)
    return c


GPU = "hardware.gpu"


def _mix_label(v) -> str:
    """A swept ``workload.mix`` value as a short label ("chat 90 %, reasoning 10 %")."""
    try:
        d = json.loads(v) if isinstance(v, str) else v
    except ValueError:
        return str(v)
    if not isinstance(d, dict):
        return str(v)
    return ", ".join(f"{k} {100 * float(x):.0f} %" for k, x in d.items()
                     if not isinstance(x, str) and float(x) > 0)


def generations_frame(r: Results) -> pd.DataFrame:
    """One row per point of a projection sweep over ``hardware.gpu``: the GPU (with the pool
    of a multi-pool point named), the group (the other swept inputs), and the five figures the
    generations chart draws."""
    t = r.table
    others = [c for c in r.varying() if c != GPU]
    group = [", ".join(_mix_label(row[c]) if c == "workload.mix" else _label(row, [c])
                       for c in others) or "all" for _, row in t.iterrows()]
    df = pd.DataFrame({"gpu": t[GPU].astype(str), "group": group,
                       "nodes": t["nodes_fleet"], "peak_w": t["facility_power_w_peak"],
                       "gwh": t["gwh_per_day_facility_p50"], "gwh_p5": t["gwh_per_day_facility_p5"],
                       "gwh_p95": t["gwh_per_day_facility_p95"],
                       "j_per_token": t.get("j_per_output_token_gpu", np.nan)})
    for c in t.columns:
        if c.startswith("wh_per_query_p50."):
            df["wh_per_query." + c[len("wh_per_query_p50."):]] = t[c]
    return df


def _generation_chart(r: Results, out: Path, formats: tuple[str, ...], **_) -> Chart:
    if r.kind != "sweep-project" or GPU not in r.varying():
        raise _Skip(f"needs a projection sweep over {GPU}")
    _need(r, "nodes_fleet", "facility_power_w_peak", "gwh_per_day_facility_p50")
    df = generations_frame(r)
    c = Chart("generations", "The same load and SLO on each GPU generation")
    fig = plots.generations(df, r.scenario, "projected fleet-days sized for the peak hour at"
                            " the SLO; energy per day P50 with the P5-P95 range over Monte Carlo"
                            " draws")
    c.paths = plots.save(fig, out / c.name, formats)
    return c


BUILDERS = {
    "generations": _generation_chart,
    "gwh_vs_mix": _mix_chart,
    "energy_per_day_vs_input": _energy_vs_input_chart,
    "energy_per_query_by_class": _energy_class_chart,
    "facility_power_24h": _power_day_chart,
    "efficiency_pareto": _pareto_chart,
    "power_cap": _cap_chart,
    "nodes_needed": _nodes_chart,
    "tornado_gwh": _tornado_chart,
    "cost_per_query": _cost_chart,
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
