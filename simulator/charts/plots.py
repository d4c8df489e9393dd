"""One function per planning chart. Each takes a tidy DataFrame (columns documented per
function, units in the names) and returns the Figure; :func:`save` writes it as PNG and SVG. Figures are built with :class:`matplotlib.figure.Figure` (Agg canvas), never
pyplot, so nothing global changes and charts can be drawn in parallel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

SECONDS_PER_DAY = 86400.0
J_PER_GWH = 3.6e12
W_PER_KW = 1e3


def gwh_per_day(energy_facility_j, simulated_time_s, fleet_scale: float = 1.0):
    """Facility energy per day at the simulated load, GWh/day: mean facility power over the run
    (energy / simulated time, W) x 86400 s/day / 3.6e12 J/GWh x copies of the fleet."""
    return np.asarray(energy_facility_j, float) / np.asarray(simulated_time_s, float) \
        * SECONDS_PER_DAY / J_PER_GWH * fleet_scale


def _figure(w_in: float = 7.0, h_in: float = 4.5, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(w_in, h_in), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def save(fig: Figure, out_base: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``<out_base>.<ext>`` for each format; return the paths."""
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        p = out_base.with_suffix(f".{ext}")
        fig.savefig(p, dpi=120 if ext == "png" else None)
        paths.append(p)
    return paths


def gwh_vs_mix(df: pd.DataFrame, mix_class: str, fleet_scale: float = 1.0) -> Figure:
    """Facility GWh/day against one class's share of the mix.

    ``df``: ``share`` (fraction of requests), ``gwh_per_day``, ``series`` (line label).
    """
    fig, (ax,) = _figure()
    for name, g in df.groupby("series", sort=False):
        g = g.sort_values("share")
        ax.plot(g["share"], g["gwh_per_day"], marker="o", label=str(name) or "all points")
    ax.set_xlabel(f"share of '{mix_class}' queries (fraction of requests)")
    scale = "" if fleet_scale == 1 else f" x {fleet_scale:g} fleets"
    ax.set_ylabel(f"facility energy (GWh/day{scale})")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useMathText=True)
    ax.set_title(f"Facility energy per day vs query mix\n(at the simulated load{scale})")
    if df["series"].nunique() > 1:
        ax.legend(fontsize="small")
    return fig


def energy_per_query_by_class(df: pd.DataFrame) -> Figure:
    """Distribution of facility energy per completed query, by class.

    ``df``: ``class``, ``energy_facility_wh`` (Wh per query), ``group`` (a point label).
    """
    classes = list(dict.fromkeys(df["class"].astype(str)))
    groups = list(dict.fromkeys(df["group"].astype(str)))
    fig, (ax,) = _figure(w_in=max(7.0, 1.2 * len(classes) * len(groups)))
    width = 0.8 / len(groups)
    handles = []
    for gi, grp in enumerate(groups):
        data, pos = [], []
        for ci, cls in enumerate(classes):
            v = df.loc[(df["group"].astype(str) == grp) & (df["class"].astype(str) == cls),
                       "energy_facility_wh"].to_numpy()
            v = v[np.isfinite(v)]
            if v.size:
                data.append(v)
                pos.append(ci + (gi - (len(groups) - 1) / 2) * width)
        if not data:
            continue
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                        showfliers=False, manage_ticks=False)
        color = f"C{gi % 10}"
        for box in bp["boxes"]:
            box.set_facecolor(color)
            box.set_alpha(0.6)
        handles.append((bp["boxes"][0], grp))
    ax.set_xticks(range(len(classes)), classes)
    ax.set_xlabel("query class")
    ax.set_ylabel("facility energy per query (Wh)")
    pooled = f", {groups[0]}" if len(groups) == 1 and groups[0] else ""
    ax.set_title(f"Energy per query by class{pooled}\n(completed requests; box = quartiles,"
                 " whiskers = 1.5 IQR)", fontsize="medium")
    if len(groups) > 1:
        ax.legend([h for h, _ in handles], [n for _, n in handles], fontsize="small")
    return fig


def facility_power_24h(ts: pd.DataFrame, start_hour: float = 0.0,
                       subtitle: str = "") -> Figure:
    """Facility power over a day, with the number of nodes switched on.

    ``ts``: ``t_s`` (start of each bin, s since the start), ``facility_power_w`` (mean over the
    bin, W), optionally ``nodes_on`` (count). A projection's tidy output plugs in directly.
    """
    fig, (ax,) = _figure(w_in=8.0)
    hours = start_hour + ts["t_s"].to_numpy() / 3600.0
    ax.step(hours, ts["facility_power_w"].to_numpy() / W_PER_KW, where="post", color="C0",
            label="facility power")
    ax.set_xlabel("hour of day (h)")
    ax.set_ylabel("facility power (kW)", color="C0")
    ax.set_ylim(bottom=0)
    if "nodes_on" in ts:
        ax2 = ax.twinx()
        ax2.step(hours, ts["nodes_on"].to_numpy(), where="post", color="C3", linestyle="--",
                 label="nodes on")
        ax2.set_ylabel("nodes on (count)", color="C3")
        ax2.set_ylim(0, max(1.0, float(ts["nodes_on"].max())) * 1.15)
        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(start_hour, start_hour + max(24.0, float(hours.max() - start_hour)))
    ax.set_title("Facility power over 24 hours with nodes on" + (f"\n{subtitle}" if subtitle else ""))
    return fig


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of the points not dominated when minimising both x and y."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.ones(x.size, bool)
    for i in range(x.size):
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep


def latency_energy_pareto(df: pd.DataFrame, latency_label: str) -> Figure:
    """Energy per query against latency for every configuration; the Pareto front joined.

    ``df``: ``latency_s``, ``energy_wh`` (facility Wh per query), ``label``.
    """
    fig, (ax,) = _figure()
    front = pareto_front(df["latency_s"], df["energy_wh"])
    ax.scatter(df["latency_s"], df["energy_wh"], color="0.6", label="configuration")
    f = df[front].sort_values("latency_s")
    ax.plot(f["latency_s"], f["energy_wh"], color="C3", marker="o", label="Pareto front")
    step = max(1, int(np.ceil(len(f) / 8)))  # at most 8 labels, so they stay readable
    for i, (_, r) in enumerate(f.iterrows()):
        if i % step and i != len(f) - 1:
            continue
        ax.annotate(str(r["label"]), (r["latency_s"], r["energy_wh"]), fontsize="x-small",
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"{latency_label} (s)")
    ax.set_ylabel("facility energy per query, mean (Wh)")
    ax.set_title("Latency-energy Pareto front across configurations")
    ax.legend(fontsize="small")
    return fig


def power_cap_tradeoff(df: pd.DataFrame) -> Figure:
    """Latency and energy against the GPU power cap.

    ``df``: ``cap_w``, ``ttft_s_p99``, ``tpot_s_p99``, ``energy_wh`` (per query), ``series``.
    """
    fig, (a1, a2) = _figure(w_in=11.0, ncols=2)
    for si, (name, g) in enumerate(df.groupby("series", sort=False)):
        g = g.sort_values("cap_w")
        lab = f" ({name})" if name else ""
        a1.plot(g["cap_w"], g["ttft_s_p99"] * 1e3, marker="o", color=f"C{si}", label=f"TTFT p99{lab}")
        a1.plot(g["cap_w"], g["tpot_s_p99"] * 1e3, marker="s", linestyle="--", color=f"C{si}",
                label=f"TPOT p99{lab}")
        a2.plot(g["cap_w"], g["energy_wh"], marker="o", color=f"C{si}", label=name or None)
    a1.set_xlabel("GPU power cap (W)")
    a1.set_ylabel("latency (ms)")
    a1.set_title("Latency vs power cap")
    a1.legend(fontsize="small")
    a2.set_xlabel("GPU power cap (W)")
    a2.set_ylabel("facility energy per query, mean (Wh)")
    a2.set_title("Energy per query vs power cap")
    if df["series"].nunique() > 1:
        a2.legend(fontsize="small")
    fig.suptitle("Power cap against latency and energy")
    return fig


def nodes_needed(df: pd.DataFrame, slo_target: float) -> Figure:
    """Smallest fleet meeting the SLO against daily volume.

    ``df``: ``queries_per_day``, ``nodes`` (NaN when no swept size met the SLO),
    ``max_nodes`` (largest size swept), ``series``.
    """
    fig, (ax,) = _figure()
    for si, (name, g) in enumerate(df.groupby("series", sort=False)):
        g = g.sort_values("queries_per_day")
        x = g["queries_per_day"].to_numpy() / 1e6
        ax.step(x, g["nodes"], where="post", marker="o", color=f"C{si}", label=name or "nodes needed",
                linestyle=("-", "--", ":", "-.")[si % 4], markersize=max(3, 8 - 2 * si))
        miss = g["nodes"].isna().to_numpy()
        if miss.any():
            ax.scatter(x[miss], g["max_nodes"].to_numpy()[miss] + 0.5, marker="^", color=f"C{si}",
                       label=f"not met with ≤ {int(g['max_nodes'].max())} nodes")
    ax.set_xlabel("daily volume (million queries/day)")
    ax.set_ylabel("nodes needed (count)")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Nodes needed vs daily volume at the SLO\n(every class ≥ {slo_target:.0%} of"
                 " requests within SLO)")
    ax.legend(fontsize="small")
    return fig


def tornado(df: pd.DataFrame, baseline_gwh: float, fleet_scale: float = 1.0) -> Figure:
    """GWh/day sensitivity to uncertain inputs, one bar per input (low to high value).

    ``df``: ``input`` (dotted path), ``low``, ``high`` (input values), ``gwh_low``, ``gwh_high``.
    """
    d = df.assign(swing=(df["gwh_high"] - df["gwh_low"]).abs()).sort_values("swing")
    fig, (ax,) = _figure(h_in=max(3.0, 0.6 * len(d) + 1.8))
    y = np.arange(len(d))
    lo = d["gwh_low"].to_numpy() - baseline_gwh
    hi = d["gwh_high"].to_numpy() - baseline_gwh
    ax.barh(y, lo, left=baseline_gwh, color="C0", label="input at low value")
    ax.barh(y, hi, left=baseline_gwh, color="C3", label="input at high value")
    ax.axvline(baseline_gwh, color="k", linewidth=1)
    ax.set_yticks(y, [f"{r.input}\n{r.low:g} – {r.high:g}" for r in d.itertuples()], fontsize="small")
    scale = "" if fleet_scale == 1 else f" x {fleet_scale:g} fleets"
    ax.set_xlabel(f"facility energy (GWh/day{scale}, at the simulated load)")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useMathText=True)
    ax.set_ylabel("uncertain input (low – high)")
    ax.set_title(f"Sensitivity of GWh/day to uncertain inputs\n(baseline {baseline_gwh:.4g} GWh/day)")
    ax.legend(fontsize="small", loc="lower right")
    return fig
