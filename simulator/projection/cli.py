"""``fleetsim project``: a fleet-day projection of a scenario with a ``projection`` section."""

from __future__ import annotations

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
@click.option("--no-charts", is_flag=True, help="skip the PNG/SVG charts")
@click.option("--quiet", is_flag=True, help="no progress bar or summary")
@OVERWRITE
@FORCE
def project_cmd(scenario: str, out_dir: str, overrides: tuple[str, ...], workers: int,
                no_charts: bool, quiet: bool, overwrite: bool, force: bool) -> None:
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
                                      mininterval=0.5, leave=False)
        try:
            proj = project(sc, workers=workers, progress=bar.update if bar is not None else None,
                           force=force)
        finally:
            if bar is not None:
                bar.close()
        write_projection_files(proj, tmp, charts=not no_charts)
    if not quiet:
        click.echo(format_projection(proj.summary, out_dir, charts=not no_charts))


def format_projection(s: dict, out_dir: str, charts: bool = True) -> str:
    """The one-screen summary printed after a projection."""
    def f(x, fmt=".3g"):
        return "n/a" if x is None or x != x else format(x, fmt)
    cls = lambda d, fmt=".3g": "  ".join(f"{k} {f(v, fmt)}" for k, v in d.items())  # noqa: E731
    lines = [
        f"{s['scenario']}: {s['model']}, {f(s['queries_per_day'])} queries/day, {s['idle_policy']}",
        f"  fleet      {s['nodes_fleet']} nodes; on per hour: peak {s['nodes_peak']}"
        f"  mean {f(s['nodes_mean'], '.1f')}  min {s['nodes_min']}"
        + (f"  (capacity {f(s['capacity_queries_per_s_per_node'])} queries/s/node at the SLO)"
           if s.get("capacity_queries_per_s_per_node") else ""),
        f"  facility   {f(s['gwh_per_day_facility_p50'])} GWh/day P50"
        f"  [P5 {f(s['gwh_per_day_facility_p5'])}, P95 {f(s['gwh_per_day_facility_p95'])}]"
        f"  ({s['uncertainty']['draws']} draws; nominal {f(s['gwh_per_day_facility_nominal'])})",
        f"  IT         {f(s['gwh_per_day_it_p50'])} GWh/day P50; nominal: GPU"
        f" {f(s['gwh_per_day_gpu'])} (prefill {f(s['gwh_per_day_gpu_prefill'])}, decode"
        f" {f(s['gwh_per_day_gpu_decode'])}, idle {f(s['gwh_per_day_gpu_idle'])}), host"
        f" {f(s['gwh_per_day_host'])}, overhead {f(s['gwh_per_day_facility_overhead'])}",
        f"  Wh/query   P50 {cls(s['wh_per_query_p50'])} | IQR {cls(s['wh_per_query_iqr'])}"
        f" | all-in {f(s['wh_per_query_all_in'])}",
        "  SLO        " + cls({k: 100 * v for k, v in s["slo_attainment"].items()}, ".2f") + " %",
    ]
    if "tco2_per_day_p50" in s:
        lines.append(f"  carbon     {f(s['tco2_per_day_p50'])} tCO2/day P50  [P5"
                     f" {f(s['tco2_per_day_p5'])}, P95 {f(s['tco2_per_day_p95'])}]")
    lines.append(f"  wrote {Path(out_dir) / 'summary.json'}, hourly.csv, draws.csv"
                 + (", charts/" if charts else ""))
    return "\n".join(lines)
