"""``fleetsim project``: a fleet-day projection of a scenario with a ``projection`` section."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from simulator.cli_options import FORCE, OVERWRITE


@click.command("project")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(),
              help="output folder (replaced atomically)")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override a scenario field by dotted path (repeatable),"
                   " e.g. projection.uncertainty.draws=10")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="processes simulating load levels and draws in parallel")
@click.option("--cluster", metavar="ADDRESS", default=None,
              help="simulate the levels and draws on a Dask distributed scheduler (e.g."
                   " tcp://host:8786) instead of local processes; the same results")
@click.option("--no-charts", is_flag=True, help="skip the PNG/SVG charts")
@click.option("--quiet", is_flag=True, help="no progress bar or summary")
@OVERWRITE
@FORCE
def project_cmd(scenario: str, out_dir: str, overrides: tuple[str, ...], workers: int,
                cluster: str | None, no_charts: bool, quiet: bool, overwrite: bool,
                force: bool) -> None:
    """Project a whole day of SCENARIO's fleet (GWh/day with uncertainty) into OUT."""
    from tqdm import tqdm

    from simulator.engine.fleet import check_memory
    from simulator.errors import ScenarioError
    from simulator.output import AtomicDir, scenario_inputs
    from simulator.projection.output import write_projection_files
    from simulator.projection.project import check_projection_limits, project
    from simulator.projection.sample import level_calibration
    from simulator.scenario.load import load_scenario

    sc = load_scenario(scenario, overrides)
    if sc.projection is None:
        raise ScenarioError("missing: `fleetsim project` needs a projection section (at least"
                            " projection.queries_per_day)", file=scenario, field="projection")
    check_memory(sc)
    level_calibration(sc)  # a bad calibration file is reported before anything runs
    check_projection_limits(sc, workers, force)
    with AtomicDir(out_dir, overwrite=overwrite, inputs=scenario_inputs(sc),
                   kind="projection") as tmp:
        bar = None if quiet else tqdm(unit="sim", desc="projecting", file=sys.stderr,
                                      mininterval=0.5, leave=False, dynamic_ncols=True)

        def set_total(n: int) -> None:
            if bar is not None:
                bar.total = n
                bar.set_description("simulating the day")
                bar.refresh()
        try:
            proj = project(sc, workers=workers, progress=bar.update if bar is not None else None,
                           on_total=set_total, force=force, cluster=cluster)
        finally:
            if bar is not None:
                bar.close()
        write_projection_files(proj, tmp, charts=not no_charts)
    if not quiet:
        click.echo(format_projection(proj.summary, out_dir, charts=not no_charts))


def slo_line(s: dict) -> str:
    """SLO attainment as it is: the nominal day per class, and the worst class in the worst
    Monte Carlo draw (a draw that misses the target is never hidden behind a 100 % nominal)."""
    from simulator import units

    target = s.get("slo_target", math.nan)
    nominal = ", ".join(f"{k} {units.pct(v)}" for k, v in s["slo_attainment"].items())
    line = f"target {units.pct(target, 0)} of every class; nominal day {nominal}"
    u = s.get("uncertainty", {})
    n = u.get("draws", 0)
    worst = u.get("slo_attainment_min_worst")
    if n and worst is not None and worst == worst:
        below = u.get("draws_below_slo_target", 0)
        line += (f"; worst draw {units.pct(worst)} (P5 over draws"
                 f" {units.pct(u.get('slo_attainment_min_p5'))})")
        line += f", MISSED in {below} of {n} draws" if below else f", met in all {n} draws"
    return line


def format_projection(s: dict, out_dir: str, charts: bool = True) -> str:
    """The one-screen summary printed after a projection (engineering units)."""
    from simulator import units as u

    cls = lambda d, fn: ", ".join(f"{k} {fn(v)}" for k, v in d.items())  # noqa: E731
    cap = s.get("capacity_queries_per_s_per_node")
    lines = [
        f"{s['scenario']}: {s['model']}, {u.count(s['queries_per_day'])} queries/day"
        f" ({s['daily_curve']}), {s['idle_policy']}",
        f"  fleet      {u.count(s['nodes_fleet'])} nodes ({u.count(s['gpus_peak'])} GPUs at the"
        f" peak); on per hour: peak {u.count(s['nodes_peak'])}, mean {s['nodes_mean']:,.1f},"
        f" min {u.count(s['nodes_min'])}"
        + (f"; capacity {cap:.3g} queries/s per node at the SLO" if cap else "")
        + (" [{:.3g}, {:.3g}]".format(*s["capacity_ci_queries_per_s_per_node"])
           if cap and s.get("capacity_ci_queries_per_s_per_node") else ""),
        f"  power      peak {u.power(s['facility_power_w_peak'])} facility (hourly mean; the"
        f" peak hour's P95 {u.power(s.get('facility_power_w_peak_p95'))}), day mean"
        f" {u.power(s['facility_power_w_mean'])}",
        f"  energy     {u.gwh(s['gwh_per_day_facility_p50'])}/day facility P50"
        f" [P5 {u.gwh(s['gwh_per_day_facility_p5'])}, P95 {u.gwh(s['gwh_per_day_facility_p95'])}]"
        f" ({s['uncertainty']['draws']} draws; nominal {u.gwh(s['gwh_per_day_facility_nominal'])});"
        f" IT {u.gwh(s['gwh_per_day_it_p50'])}/day P50",
        f"  split      nominal GPU {u.gwh(s['gwh_per_day_gpu'])} (prefill"
        f" {u.gwh(s['gwh_per_day_gpu_prefill'])}, decode {u.gwh(s['gwh_per_day_gpu_decode'])},"
        f" idle {u.gwh(s['gwh_per_day_gpu_idle'])}), host {u.gwh(s['gwh_per_day_host'])},"
        f" cooling and distribution {u.gwh(s['gwh_per_day_facility_overhead'])}",
        f"  per query  P50 {cls(s['wh_per_query_p50'], u.energy_wh)} | IQR"
        f" {cls(s['wh_per_query_iqr'], u.energy_wh)} | all-in {u.energy_wh(s['wh_per_query_all_in'])}",
        f"  SLO        {slo_line(s)}",
    ]
    if "disaggregation" in s:
        lines[2:2] = disaggregation_lines(s["disaggregation"])
    if "cost" in s:
        lines.append(f"  cost       {cost_line(s['cost'], band=True)}")
    if "tco2_per_day_p50" in s:
        lines.append(f"  carbon     {s['tco2_per_day_p50']:,.3g} tCO2/day P50  [P5"
                     f" {s['tco2_per_day_p5']:,.3g}, P95 {s['tco2_per_day_p95']:,.3g}]")
    lines.append(f"  wrote {Path(out_dir) / 'summary.json'}, hourly.csv, draws.csv"
                 + (", charts/" if charts else ""))
    return "\n".join(lines)


def disaggregation_lines(d: dict) -> list[str]:
    """A disaggregated fleet: its cell, each pool's nodes and energy, the split search."""
    from simulator import units as u

    cell = " + ".join(f"{n} {k}" for k, n in d["cell"].items())
    pools = "; ".join(f"{k} ({v['role']}) {u.count(v['nodes_fleet'])} nodes,"
                      f" {u.gwh(v['gwh_per_day_facility'])}/day ({u.pct(v['share_of_energy'])})"
                      for k, v in d["pools"].items())
    out = [f"  cells      {u.count(d['cells_fleet'])} cells of {cell} nodes;"
           f" capacity {d['capacity_queries_per_s_per_cell']:.3g} queries/s per cell",
           f"  pools      {pools} (nominal)"]
    if d.get("split_search"):
        tried = ", ".join(
            f"{r['prefill_nodes']}:{r['decode_nodes']} "
            + (f"{r['capacity_queries_per_s_per_node']:.3g}/s per node" if "error" not in r
               else "failed") + (" (chosen)" if r["chosen"] else "")
            for r in d["split_search"])
        out.append(f"  splits     prefill:decode nodes per cell, capacity at the SLO: {tried}")
    return out


def cost_line(c: dict, band: bool = False) -> str:
    """``$1.2M/day [P5, P95] (hardware, electricity); $/M output tokens; $/1,000 queries``."""
    from simulator import units as u

    text = f"{u.money(c['usd_per_day'])}/day"
    if band and "usd_per_day_p5" in c:
        text += f" [P5 {u.money(c['usd_per_day_p5'])}, P95 {u.money(c['usd_per_day_p95'])}]"
    text += (f" (hardware {u.money(c['usd_per_day_hardware'])}, electricity"
             f" {u.money(c['usd_per_day_electricity'])}); {u.money(c['usd_per_million_output_tokens'])}"
             f" per million output tokens; {u.money(c['usd_per_1000_queries'])} per 1,000 queries")
    by = c.get("usd_per_1000_queries_by_class") or {}
    if len(by) > 1:
        text += " (" + ", ".join(f"{k} {u.money(v)}" for k, v in by.items()) + ")"
    return text


@click.command("size")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--rate", "rate_per_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="queries/s the fleet must serve (the peak)")
@click.option("--queries-per-day", "queries_per_day", type=click.FloatRange(min=0, min_open=True),
              default=None, help="daily volume instead; its peak hour is sized (the scenario's"
              " projection curve, else a flat day)")
@click.option("--slo-target", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="fraction of every class's requests within SLO [default: the scenario's"
              " projection.fleet.slo_target, else 0.99]")
@click.option("--headroom", type=click.FloatRange(1, 10), default=1.0, show_default=True,
              help="spare-capacity factor on the answer (a planning choice)")
@click.option("--replications", type=click.IntRange(1, 50), default=3, show_default=True,
              help="independent capacity searches behind the confidence interval")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), default="size.json",
              show_default=True, help="JSON file with the answer (written atomically)")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override a scenario field by dotted path (repeatable)")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="processes running the replications in parallel")
def size_cmd(scenario, rate_per_s, queries_per_day, slo_target, headroom, replications,
             out_path, overrides, workers) -> None:
    """The smallest number of nodes (per pool) that serves a load within every class's SLO,
    with the capacity's confidence interval: one line, and JSON in OUT."""
    import json
    import os
    import tempfile

    from simulator.engine.fleet import check_memory
    from simulator.errors import ScenarioError
    from simulator.output import _clean
    from simulator.projection.size import size, size_line
    from simulator.scenario.load import load_scenario

    if (rate_per_s is None) == (queries_per_day is None):
        raise ScenarioError("give --rate R or --queries-per-day Q (one of them)", file=scenario)
    sc = load_scenario(scenario, overrides)
    check_memory(sc)
    if slo_target is None:
        slo_target = sc.projection.fleet.slo_target if sc.projection is not None else 0.99
    tol = sc.projection.fleet.capacity_tolerance if sc.projection is not None else 0.02
    s = size(sc, rate_per_s, queries_per_day, slo_target, headroom, replications, tol, workers)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(_clean(s), indent=2) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    click.echo(f"{size_line(s)}; wrote {out}")
