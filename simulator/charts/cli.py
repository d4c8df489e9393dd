"""``fleetsim plot`` and ``fleetsim report``."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.cli_options import OVERWRITE

_SCALE = click.option("--fleet-scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
                      show_default=True,
                      help="copies of the simulated fleet for GWh/day charts (at the simulated load)")
_SLO = click.option("--slo-target", type=click.FloatRange(0, 1), default=0.99, show_default=True,
                    help="SLO attainment (fraction, worst class) a configuration must reach")


@click.command("plot")
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(), default=None,
              help="folder for the charts (default RESULTS/charts)")
@_SCALE
@_SLO
@OVERWRITE
def plot_cmd(results: str, out_dir: str | None, fleet_scale: float, slo_target: float,
             overwrite: bool) -> None:
    """Draw every chart that the sweep (or run) folder RESULTS supports, as PNG and SVG."""
    from simulator.charts.draw import load_results, plot_all
    from simulator.output import AtomicDir

    out = Path(out_dir) if out_dir is not None else Path(results) / "charts"
    r = load_results(results)
    # the charts folder is written whole or not at all, and never over anything not ours
    with AtomicDir(out, overwrite=overwrite, inputs=[results], kind="charts") as tmp:
        made, skipped = plot_all(r, tmp, fleet_scale=fleet_scale, slo_target=slo_target)
    for chart in made:
        chart.paths = [out / p.relative_to(tmp) for p in chart.paths]
    for chart in made:
        click.echo(f"drew {chart.name}: {', '.join(str(p) for p in chart.paths)}")
    for name, why in skipped:
        click.echo(f"skipped {name}: {why}")


@click.command("report")
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_path", type=click.Path(), default=None,
              help="HTML file (default RESULTS/report.html)")
@_SCALE
@_SLO
@OVERWRITE
def report_cmd(results: str, out_path: str | None, fleet_scale: float, slo_target: float,
               overwrite: bool) -> None:
    """Write one self-contained HTML report (charts inlined, results table) for RESULTS."""
    from simulator.charts.report import write_report

    path = write_report(results, out_path, fleet_scale=fleet_scale, slo_target=slo_target,
                        overwrite=overwrite)
    click.echo(f"wrote {path}")


@click.command("compare")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="also write compare.csv and overlaid charts (PNG, SVG) into this folder")
def compare_cmd(folders: tuple[str, ...], out_dir: str | None) -> None:
    """Compare run, projection or sweep-point FOLDERS: key metrics side by side, each one's
    difference from the first, and (with -o) overlaid charts."""
    from simulator.charts.compare import compare_charts, compare_table, format_table, load_all
    from simulator.errors import FleetsimError

    if len(folders) < 2:
        raise FleetsimError("compare needs at least two folders")
    rs = load_all(list(folders))
    df = compare_table(rs)
    click.echo(format_table(rs, df))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / ".compare.csv.tmp"
        df.to_csv(tmp, index=False)
        tmp.replace(out / "compare.csv")
        paths = compare_charts(rs, out / "charts")
        click.echo(f"wrote {out / 'compare.csv'} and {len(paths)} chart files in {out / 'charts'}")
