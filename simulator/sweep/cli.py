"""``fleetsim sweep``: run a scenario over a grid, a list of points or a random sample."""

from __future__ import annotations

import click

from simulator.cli_options import FORCE, OVERWRITE


@click.command("sweep")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(),
              help="sweep folder: points/<id>/, results.parquet, results.csv (resumable)")
@click.option("--grid", "grid", multiple=True, metavar="PATH=V1,V2,...",
              help="sweep a field over values (YAML, comma-separated); repeat for a product")
@click.option("--points", "points_file", type=click.Path(dir_okay=False),
              help="YAML list of points, each a mapping {dotted.path: value}")
@click.option("--sample", "sample_n", type=click.IntRange(min=1), metavar="N",
              help="N points of a Latin hypercube over the --range bounds (scipy.stats.qmc)")
@click.option("--seed", "sample_seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="seed of --sample")
@click.option("--range", "ranges", multiple=True, metavar="PATH=LOW:HIGH",
              help="bounds of a sampled field (integers when both bounds are)")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override the base scenario by dotted path (repeatable)")
@click.option("--command", "command", default=None, metavar="NAME",
              help="what runs at each point: run, run-summary (no requests.parquet), estimate,"
                   " project (default: the sweep section's, else 'run')")
@click.option("--estimate", "use_estimate", is_flag=True,
              help="the analytical estimate at each point (--command estimate): milliseconds a"
                   " point, to screen a large sweep before simulating its interesting points")
@click.option("--no-requests", "no_requests", is_flag=True,
              help="runs write no per-request table (--command run-summary)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="local worker processes (default: CPU count; 1 = in this process)")
@click.option("--cluster", metavar="ADDRESS", default=None,
              help="run on a Dask distributed scheduler (e.g. tcp://host:8786); OUT must be on"
                   " a filesystem the workers share")
@click.option("--quiet", is_flag=True, help="no progress bar")
@OVERWRITE
@FORCE
def sweep_cmd(scenario, out_dir, grid, points_file, sample_n, sample_seed, ranges, overrides,
              command, use_estimate, no_requests, workers, cluster, quiet, overwrite,
              force) -> None:
    """Run SCENARIO at every point of a sweep (from the flags, or else its sweep: section).

    Flags that define points (--grid, --points, --sample) replace the file's sweep: section.
    Every point is validated before any runs (and before OUT is made); a rerun skips finished
    points.
    """
    from simulator.output import check_output_dir
    from simulator.sweep.runner import run_sweep
    from simulator.sweep.spec import build_sweep, spec_from_options

    if use_estimate or no_requests:
        chosen = "estimate" if use_estimate else "run-summary"
        if command not in (None, chosen) or (use_estimate and no_requests):
            raise click.UsageError("--estimate, --no-requests and --command choose the same"
                                   " thing: give one")
        command = chosen
    inputs = [scenario, *([points_file] if points_file else [])]
    check_output_dir(out_dir, overwrite=True, inputs=inputs)  # the never-replaced kinds, first
    cli_spec = spec_from_options(grid, points_file, sample_n, sample_seed, ranges, command)
    sw = build_sweep(scenario, overrides, cli_spec, command, force=force)
    if points_file:
        sw.inputs.append(points_file)
    res = run_sweep(sw, out_dir, workers=workers, cluster=cluster, progress=not quiet,
                    overwrite=overwrite)
    if not quiet:
        click.echo(f"{len(sw.points)} points ({res['ran']} run, {res['skipped']} already done);"
                   f" wrote {out_dir}/results.parquet, results.csv, points/")
