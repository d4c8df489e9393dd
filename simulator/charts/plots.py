"""One function per planning chart. Each takes a tidy DataFrame (columns documented per
function, units in the names) and returns the Figure; :func:`save` writes it as PNG and SVG.
Figures are built with :class:`matplotlib.figure.Figure` (Agg canvas), never pyplot, so nothing
global changes and charts can be drawn in parallel.

What every chart does, so that a planner can read it at a glance: a title that names the
scenario and the question the chart answers; engineering units on the axes (kW or MW, kWh or
GWh per day, k tok/s, chosen from the data: :func:`simulator.units.axis_scale`), energy and
power axes from zero; the SLO drawn as a line wherever latency is drawn; P5-P95 bands wherever
a projection has them; one series per distinct configuration (points are never pooled
silently); the Okabe-Ito colour-blind-safe palette, with line styles and markers that also tell
the series apart in grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from simulator.units import axis_scale

SECONDS_PER_DAY = 86400.0
SECONDS_PER_HOUR = 3600.0
WH_PER_GWH = 1e9
#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
#: vision deficiency (black first is left out: it is kept for reference lines)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":"]
SLO_COLOUR = "#D55E00"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def gwh_per_day(energy_facility_wh_per_day, fleet_scale: float = 1.0):
    """Facility energy per day at the simulated load, GWh/day, from a run's steady-state
    ``energy_facility_wh_per_day`` (window mean facility power x 24 h) x copies of the fleet."""
    return np.asarray(energy_facility_wh_per_day, float) / WH_PER_GWH * fleet_scale


def _figure(w_in: float = 7.5, h_in: float = 4.6, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(w_in, h_in), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_prop_cycle(color=PALETTE)
    return fig, axes


def _title(fig_or_ax, question: str, scenario: str = "", detail: str = "") -> None:
    """``scenario: question`` on the first line, the detail (load, assumptions) below."""
    head = f"{scenario}: {question}" if scenario else question
    text = head + (f"\n{detail}" if detail else "")
    if isinstance(fig_or_ax, Figure):
        fig_or_ax.suptitle(text, fontsize="medium")
    else:
        fig_or_ax.set_title(text, fontsize="medium")


def save(fig: Figure, out_base: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``<out_base>.<ext>`` for each format (byte-for-byte reproducible: no date in the
    metadata); return the paths."""
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        p = out_base.with_suffix(f".{ext}")
        meta = {"Date": None} if ext == "svg" else None
        if ext == "svg":
            import matplotlib

            with matplotlib.rc_context({"svg.hashsalt": "fleetsim"}):
                fig.savefig(p, metadata=meta)
        else:
            fig.savefig(p, dpi=120 if ext == "png" else None, metadata=meta)
        paths.append(p)
    return paths


def scaled_x(x: pd.Series, label: str) -> tuple[np.ndarray, str]:
    """Large counts on an x axis in thousands, millions or billions (never a '1e8' offset)."""
    v = pd.to_numeric(x, errors="coerce").to_numpy(float)
    top = np.nanmax(np.abs(v)) if v.size and np.isfinite(v).any() else 0.0
    for size, word in ((1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if top >= 10 * size:
            return v / size, f"{label} ({word})"
    return v, label


def energy_per_day_vs(df: pd.DataFrame, x_label: str, scenario: str = "",
                      detail: str = "", fleet_scale: float = 1.0) -> Figure:
    """Facility energy per day against one swept input (a class's share of the mix, a daily
    volume), one line per other configuration, a P5-P95 band where the rows have one.

    ``df``: ``x``, ``gwh_per_day`` (P50 or steady-state), optional ``gwh_per_day_p5`` /
    ``gwh_per_day_p95``, ``series`` (line label).
    """
    fig, (ax,) = _figure()
    vals = df["gwh_per_day"] * WH_PER_GWH
    if "gwh_per_day_p95" in df:
        vals = pd.concat([vals, df["gwh_per_day_p95"] * WH_PER_GWH])
    factor, unit = axis_scale(vals, "Wh")
    xs, x_label = scaled_x(df["x"], x_label)
    df = df.assign(x=xs)
    for i, (name, g) in enumerate(df.groupby("series", sort=False)):
        g = g.sort_values("x")
        y = g["gwh_per_day"].to_numpy() * WH_PER_GWH * factor
        ax.plot(g["x"], y, marker=MARKERS[i % len(MARKERS)], color=colour(i),
                linestyle=LINESTYLES[i % len(LINESTYLES)], label=str(name) or "P50")
        if "gwh_per_day_p5" in g and g["gwh_per_day_p5"].notna().any():
            ax.fill_between(g["x"], g["gwh_per_day_p5"] * WH_PER_GWH * factor,
                            g["gwh_per_day_p95"] * WH_PER_GWH * factor, color=colour(i),
                            alpha=0.2, label=f"P5-P95 {name}".strip())
    ax.set_xlabel(x_label)
    scale = "" if fleet_scale == 1 else f", x {fleet_scale:g} fleets"
    ax.set_ylabel(f"facility energy ({unit}/day{scale})")
    ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1e-12))
    _title(ax, f"how does energy per day change with {x_label.split(' (')[0]}?", scenario,
           detail)
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(fontsize="small")
    return fig


def energy_per_query_by_class(df: pd.DataFrame, scenario: str = "",
                              max_rows: int = 30) -> Figure:
    """Facility energy per completed query: median and interquartile range for every
    configuration (one row each, never pooled) and class (one colour and marker each).

    ``df``: ``group`` (a configuration's label), ``class``, ``p25``, ``p50``, ``p75`` (Wh).
    """
    groups = list(dict.fromkeys(df["group"].astype(str)))
    shown = groups[:max_rows]
    classes = list(dict.fromkeys(df["class"].astype(str)))
    fig, (ax,) = _figure(w_in=8.0, h_in=max(3.0, 0.32 * len(shown) * max(1, len(classes)) ** 0.5 + 1.8))
    factor, unit = axis_scale(df["p75"], "Wh")
    off = np.linspace(-0.25, 0.25, len(classes)) if len(classes) > 1 else np.zeros(1)
    for ci, cls in enumerate(classes):
        d = df[(df["class"].astype(str) == cls) & df["group"].astype(str).isin(shown)]
        y = np.array([shown.index(g) for g in d["group"].astype(str)]) + off[ci]
        ax.errorbar(d["p50"] * factor, y,
                    xerr=[(d["p50"] - d["p25"]) * factor, (d["p75"] - d["p50"]) * factor],
                    fmt=MARKERS[ci % len(MARKERS)], color=colour(ci), capsize=3, label=cls)
    ax.set_yticks(range(len(shown)), shown, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_xlabel(f"facility energy per query ({unit}; marker = median, bar = P25-P75)")
    more = f" (first {len(shown)} of {len(groups)} configurations)" if len(shown) < len(groups) else ""
    _title(ax, "how much energy does one query take, by class?", scenario,
           "completed, measured requests" + more)
    ax.legend(fontsize="small", title="class")
    return fig


def _closed_steps(t_h: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Append the closing edge of the last step (hour 23-24 stays visible)."""
    if t_h.size == 0:
        return (t_h, *ys)
    width = float(np.median(np.diff(t_h))) if t_h.size > 1 else 1.0
    return (np.append(t_h, t_h[-1] + width), *(np.append(y, y[-1]) for y in ys))


def facility_power_24h(ts: pd.DataFrame, start_hour: float = 0.0, scenario: str = "",
                       detail: str = "", series: dict[str, pd.DataFrame] | None = None) -> Figure:
    """Facility power over a day: the nominal curve, the P5-P95 band when the frame has
    ``facility_power_w_p5`` / ``_p95``, and the nodes switched on (right axis).

    ``ts``: ``t_s`` (start of each bin, s since ``start_hour``), ``facility_power_w`` (mean
    over the bin, W), optional ``facility_power_w_p5``, ``facility_power_w_p95``, ``nodes_on``.
    ``series``: more labelled frames of the same form, overlaid (projection sweeps, compare).
    """
    frames = series if series else {"facility power": ts}
    fig, (ax,) = _figure(w_in=8.5)
    cols = [f[c] for f in frames.values() for c in ("facility_power_w", "facility_power_w_p95")
            if c in f]
    factor, unit = axis_scale(pd.concat(cols), "W")
    ax2 = None
    for i, (name, f) in enumerate(frames.items()):
        hours = start_hour + f["t_s"].to_numpy() / SECONDS_PER_HOUR
        h, p = _closed_steps(hours, f["facility_power_w"].to_numpy() * factor)
        ax.step(h, p, where="post", color=colour(i), linestyle=LINESTYLES[i % 4],
                label=name if series else "facility power, nominal")
        if "facility_power_w_p5" in f and "facility_power_w_p95" in f:
            _, lo, hi = _closed_steps(hours, f["facility_power_w_p5"].to_numpy() * factor,
                                      f["facility_power_w_p95"].to_numpy() * factor)
            ax.fill_between(h, lo, hi, step="post", color=colour(i), alpha=0.2,
                            label="P5-P95 over draws" if not series else None)
        if "nodes_on" in f and not series:
            ax2 = ax.twinx()
            hn, n = _closed_steps(hours, f["nodes_on"].to_numpy().astype(float))
            ax2.step(hn, n, where="post", color="0.35", linestyle="--", label="nodes on")
            ax2.set_ylabel("nodes on (count)", color="0.35")
            ax2.set_ylim(0, max(1.0, float(np.nanmax(n))) * 1.15)
            ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("hour of day (h)")
    ax.set_ylabel(f"facility power ({unit})")
    ax.set_ylim(bottom=0)
    ax.set_xlim(start_hour, start_hour + 24.0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=13, integer=True))
    handles, labels = ax.get_legend_handles_labels()
    if ax2 is not None:
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize="small", loc="lower right")
    _title(ax, "how much power does the site draw, hour by hour?", scenario, detail)
    return fig


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of the points not dominated when minimising both x and y."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.ones(x.size, bool)
    for i in range(x.size):
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep


def efficiency_pareto(df: pd.DataFrame, slo_target: float, scenario: str = "") -> Figure:
    """Energy per query against output throughput per GPU, one Pareto front per load.

    ``df``: ``load`` (the offered load's label), ``tokens_per_s_per_gpu``, ``energy_wh``
    (facility Wh per query, mean), ``feasible`` (every class met the SLO target), ``label``.
    Only feasible points enter a front (the front maximises throughput per GPU and minimises
    energy per query); infeasible ones are drawn hollow, for context.
    """
    fig, (ax,) = _figure(w_in=8.0)
    factor, unit = axis_scale(df["energy_wh"], "Wh")
    for i, (load, g) in enumerate(df.groupby("load", sort=False)):
        ok, bad = g[g["feasible"]], g[~g["feasible"]]
        c, m = colour(i), MARKERS[i % len(MARKERS)]
        if len(bad):
            ax.scatter(bad["tokens_per_s_per_gpu"], bad["energy_wh"] * factor, facecolors="none",
                       edgecolors=c, marker=m, label=f"{load}: misses the SLO")
        if not len(ok):
            continue
        ax.scatter(ok["tokens_per_s_per_gpu"], ok["energy_wh"] * factor, color=c, marker=m,
                   alpha=0.5)
        front = ok[pareto_front(-ok["tokens_per_s_per_gpu"].to_numpy(), ok["energy_wh"].to_numpy())]
        front = front.sort_values("tokens_per_s_per_gpu")
        ax.plot(front["tokens_per_s_per_gpu"], front["energy_wh"] * factor, color=c, marker=m,
                linestyle=LINESTYLES[i % 4], label=f"{load}: Pareto front")
        for _, r in front.head(8).iterrows():
            ax.annotate(str(r["label"]), (r["tokens_per_s_per_gpu"], r["energy_wh"] * factor),
                        fontsize="x-small", xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("output throughput per GPU (tok/s per GPU)")
    ax.set_ylabel(f"facility energy per query, mean ({unit})")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    _title(ax, "which configurations serve this load with the least energy?", scenario,
           f"front over configurations meeting the SLO (every class >= {slo_target:.0%});"
           " hollow: misses it")
    ax.legend(fontsize="small")
    return fig


def power_cap_tradeoff(df: pd.DataFrame, slo_ttft_s: float | None = None,
                       slo_tpot_s: float | None = None, scenario: str = "") -> Figure:
    """Latency and energy against the GPU power cap, with the SLO targets drawn.

    ``df``: ``cap_w``, ``ttft_s_p99``, ``tpot_s_p99``, ``energy_wh`` (per query), ``series``.
    """
    fig, (a1, a2, a3) = _figure(w_in=13.0, ncols=3)
    for si, (name, g) in enumerate(df.groupby("series", sort=False)):
        g = g.sort_values("cap_w")
        lab = f" ({name})" if name else ""
        a1.plot(g["cap_w"], g["ttft_s_p99"] * 1e3, marker="o", color=colour(si),
                linestyle=LINESTYLES[si % 4], label=f"TTFT p99{lab}")
        a2.plot(g["cap_w"], g["tpot_s_p99"] * 1e3, marker="s", color=colour(si),
                linestyle=LINESTYLES[si % 4], label=f"TPOT p99{lab}")
        a3.plot(g["cap_w"], g["energy_wh"], marker="o", color=colour(si),
                linestyle=LINESTYLES[si % 4], label=name or None)
    for ax, slo, what in ((a1, slo_ttft_s, "TTFT"), (a2, slo_tpot_s, "TPOT")):
        if slo is not None and np.isfinite(slo):
            ax.axhline(slo * 1e3, color=SLO_COLOUR, linestyle=":", linewidth=1.5,
                       label=f"SLO {what} {slo * 1e3:g} ms")
        ax.set_xlabel("GPU power cap (W)")
        ax.set_ylabel(f"{what} p99 (ms)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small")
    a1.set_title("time to first token", fontsize="medium")
    a2.set_title("time per output token", fontsize="medium")
    a3.set_xlabel("GPU power cap (W)")
    a3.set_ylabel("facility energy per query, mean (Wh)")
    a3.set_ylim(bottom=0)
    a3.set_title("energy per query", fontsize="medium")
    if df["series"].nunique() > 1:
        a3.legend(fontsize="small")
    _title(fig, "what does a GPU power cap cost in latency, and save in energy?", scenario)
    return fig


def nodes_needed(df: pd.DataFrame, slo_target: float, scenario: str = "") -> Figure:
    """Smallest fleet meeting the SLO against daily volume.

    ``df``: ``queries_per_day``, ``nodes`` (NaN when no swept size met the SLO),
    ``max_nodes`` (largest size swept), ``series``.
    """
    fig, (ax,) = _figure()
    factor, unit = axis_scale(df["queries_per_day"], "")
    unit = {"": "", "k": "thousand ", "M": "million ", "G": "billion ", "T": "trillion "}.get(unit, unit)
    for si, (name, g) in enumerate(df.groupby("series", sort=False)):
        g = g.sort_values("queries_per_day")
        x = g["queries_per_day"].to_numpy() * factor
        ax.step(x, g["nodes"], where="post", marker=MARKERS[si % len(MARKERS)], color=colour(si),
                label=name or "nodes needed", linestyle=LINESTYLES[si % 4],
                markersize=max(3, 8 - 2 * si))
        miss = g["nodes"].isna().to_numpy()
        if miss.any():
            ax.scatter(x[miss], g["max_nodes"].to_numpy()[miss] + 0.5, marker="^", color=colour(si),
                       label=f"not met with ≤ {int(g['max_nodes'].max())} nodes")
    ax.set_xlabel(f"daily volume ({unit}queries/day)")
    ax.set_ylabel("nodes needed (count)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _title(ax, "how many nodes does each daily volume need?", scenario,
           f"smallest fleet with every class ≥ {slo_target:.0%} of requests within SLO")
    ax.legend(fontsize="small")
    return fig


def tornado(df: pd.DataFrame, baseline_gwh: float, fleet_scale: float = 1.0,
            scenario: str = "") -> Figure:
    """GWh/day sensitivity to uncertain inputs, one bar per input (low to high value).

    ``df``: ``input`` (dotted path), ``low``, ``high`` (input values), ``gwh_low``, ``gwh_high``.
    """
    d = df.assign(swing=(df["gwh_high"] - df["gwh_low"]).abs()).sort_values("swing")
    fig, (ax,) = _figure(h_in=max(3.0, 0.6 * len(d) + 1.8))
    factor, unit = axis_scale(pd.concat([d["gwh_low"], d["gwh_high"]]) * WH_PER_GWH, "Wh")
    k = WH_PER_GWH * factor
    y = np.arange(len(d))
    base = baseline_gwh * k
    lo = d["gwh_low"].to_numpy() * k - base
    hi = d["gwh_high"].to_numpy() * k - base
    ax.barh(y, lo, left=base, color=PALETTE[0], label="input at its low value")
    ax.barh(y, hi, left=base, color=PALETTE[1], hatch="//", label="input at its high value")
    ax.axvline(base, color="k", linewidth=1)
    ax.set_yticks(y, [f"{r.input}\n{r.low:g} – {r.high:g}" for r in d.itertuples()], fontsize="small")
    scale = "" if fleet_scale == 1 else f", x {fleet_scale:g} fleets"
    ax.set_xlabel(f"facility energy ({unit}/day{scale})")
    ax.set_ylabel("uncertain input (low – high)")
    _title(ax, "which uncertain input moves energy per day most?", scenario,
           f"baseline {base:.3g} {unit}/day")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def metric_vs(df: pd.DataFrame, x_label: str, y_label: str, question: str,
              scenario: str = "", detail: str = "") -> Figure:
    """A metric against one swept input, one line per other configuration, optional P5-P95
    band. ``df``: ``x``, ``y``, optional ``y_p5`` / ``y_p95``, ``series``."""
    fig, (ax,) = _figure()
    xs, x_label = scaled_x(df["x"], x_label)
    df = df.assign(x=xs)
    for i, (name, g) in enumerate(df.groupby("series", sort=False)):
        g = g.sort_values("x")
        ax.plot(g["x"], g["y"], marker=MARKERS[i % len(MARKERS)], color=colour(i),
                linestyle=LINESTYLES[i % 4], label=str(name) or None)
        if "y_p5" in g and g["y_p5"].notna().any():
            ax.fill_between(g["x"], g["y_p5"], g["y_p95"], color=colour(i), alpha=0.2)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_ylim(bottom=0)
    _title(ax, question, scenario, detail)
    if df["series"].nunique() > 1:
        ax.legend(fontsize="small")
    return fig


def relative_bars(df: pd.DataFrame, names: list[str], scenario: str = "") -> Figure:
    """Each metric of every folder relative to the first (%), one bar group per metric.

    ``df``: the compare table (``metric``, ``<name> vs <first> %`` columns)."""
    d = df[[f"{n} vs {names[0]} %" for n in names[1:]] + ["metric"]].dropna(how="all")
    fig, (ax,) = _figure(w_in=8.5, h_in=max(3.0, 0.35 * len(d) * max(1, len(names) - 1) ** 0.5 + 1.6))
    y = np.arange(len(d))
    width = 0.8 / max(1, len(names) - 1)
    for i, n in enumerate(names[1:]):
        ax.barh(y + (i - (len(names) - 2) / 2) * width, d[f"{n} vs {names[0]} %"].fillna(0.0),
                height=width, color=colour(i + 1), hatch=["", "//", "..", "xx"][i % 4],
                label=f"{n} vs {names[0]}")
    ax.axvline(0, color="k", linewidth=1)
    ax.set_yticks(y, d["metric"], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel(f"difference from {names[0]} (%)")
    _title(ax, f"how do they differ from {names[0]}?", scenario)
    ax.legend(fontsize="small")
    return fig


def waterfall(r: dict) -> Figure:
    """A bridge (``fleetsim bridge``) as a waterfall: A's value, one bar per group of fields
    (up: raises the metric, down: lowers it), B's value."""
    steps = r["steps"]
    labels = ["A"] + [s["group"] for s in steps] + ["B"]
    fig, (ax,) = _figure(w_in=max(7.5, 0.9 * len(labels) + 2.0))
    x = np.arange(len(labels))
    ax.bar(x[0], r["value_a"], color=PALETTE[7], width=0.6)
    level = r["value_a"]
    for i, s in enumerate(steps, start=1):
        d = s["delta"]
        ax.bar(x[i], d, bottom=level, width=0.6, color=PALETTE[3] if d > 0 else PALETTE[2])
        ax.plot([x[i - 1] + 0.3, x[i] - 0.3], [level, level], color="0.5", linewidth=0.8)
        level += d
    ax.plot([x[-2] + 0.3, x[-1] - 0.3], [level, level], color="0.5", linewidth=0.8)
    ax.bar(x[-1], r["value_b"], color=PALETTE[0], width=0.6)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel(r["metric"])
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    _title(ax, "which change moves the metric from A to B, and by how much?",
           f"{Path(r['a']).stem} -> {Path(r['b']).stem}",
           f"{r['method']} bridge; steps sum to B - A = {r['difference']:+.4g}")
    return fig


def generations(df: pd.DataFrame, scenario: str = "", detail: str = "") -> Figure:
    """The same load and SLO on different GPU types: one bar per GPU in each group (a group is
    one other configuration, e.g. a query mix), five panels: nodes, peak facility power, facility
    energy per day (P50 with its P5-P95 range), GPU energy per output token over the day, and
    facility energy per query (P50) of each class.

    ``df``: ``gpu``, ``group``, ``nodes``, ``peak_w``, ``gwh``, ``gwh_p5``, ``gwh_p95``,
    ``j_per_token``, and ``wh_per_query.<class>`` columns (NaN where a class is not served).
    """
    fig = Figure(figsize=(13.0, 7.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(2, 3, i + 1) for i in range(6)]
    gpus = list(dict.fromkeys(df["gpu"]))
    groups = list(dict.fromkeys(df["group"]))
    width = 0.8 / max(1, len(gpus))
    x0 = np.arange(len(groups))
    classes = [c[len("wh_per_query."):] for c in df.columns if c.startswith("wh_per_query.")]

    def bars(ax, col, label, unit, lo=None, hi=None, si=1.0):
        vals = df[col].astype(float) * si  # si: to the unit's SI base (GWh -> Wh)
        factor, u = axis_scale(vals.to_numpy(), unit) if unit else (1.0, "")
        factor *= si
        for i, g in enumerate(gpus):
            d = df[df["gpu"] == g].set_index("group").reindex(groups)
            y = d[col].to_numpy(float) * factor
            err = None
            if lo is not None:
                err = np.vstack([y - d[lo].to_numpy(float) * factor, d[hi].to_numpy(float) * factor - y])
            ax.bar(x0 + (i - (len(gpus) - 1) / 2) * width, y, width, color=colour(i), label=g,
                   yerr=err, capsize=3, hatch=["", "//", "..", "xx"][i % 4], edgecolor="white")
        ax.set_xticks(x0, groups, fontsize="small")
        ax.set_ylabel(f"{label} ({u})" if u else label)
        ax.set_ylim(bottom=0)
        ax.grid(True, axis="y", alpha=0.3)

    bars(axes[0], "nodes", "nodes (fleet, peak hour)", None)
    axes[0].set_title("nodes", fontsize="medium")
    bars(axes[1], "peak_w", "peak facility power", "W")
    axes[1].set_title("peak facility power (hourly mean)", fontsize="medium")
    bars(axes[2], "gwh", "facility energy per day", "Wh", "gwh_p5", "gwh_p95", si=WH_PER_GWH)
    axes[2].set_title("energy per day (P50, P5-P95 range)", fontsize="medium")
    bars(axes[3], "j_per_token", "GPU J per output token", None)
    axes[3].set_title("GPU energy per output token (day)", fontsize="medium")
    ax = axes[4]
    w2 = 0.8 / max(1, len(gpus) * len(classes))
    k = 0
    for ci, cls in enumerate(classes):
        for i, g in enumerate(gpus):
            d = df[df["gpu"] == g].set_index("group").reindex(groups)
            y = d[f"wh_per_query.{cls}"].to_numpy(float)
            ax.bar(x0 + (k - (len(gpus) * len(classes) - 1) / 2) * w2, y, w2, color=colour(i),
                   hatch=["", "//", "..", "xx"][ci % 4], edgecolor="white",
                   label=f"{g} {cls}")
            k += 1
    ax.set_xticks(x0, groups, fontsize="small")
    ax.set_ylabel("facility Wh per query (P50)")
    ax.set_yscale("log")
    ax.set_title("energy per query by class (hatch: class)", fontsize="medium")
    ax.grid(True, axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    axes[5].axis("off")
    axes[5].legend(handles, labels, loc="center", fontsize="small", ncol=max(1, len(classes)),
                   title="GPU and class (energy per query)")
    axes[0].legend(fontsize="small")
    _title(fig, "what does the same load at the same SLO need on each GPU generation?", scenario,
           detail)
    return fig
