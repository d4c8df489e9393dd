"""``fleetsim bridge A B``: which group of fields moves a metric from scenario A to B."""

from __future__ import annotations

import click

from simulator.cli_options import FORCE, OVERWRITE


@click.command("bridge")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(),
              help="bridge folder: bridge.md/.csv/.json, charts/bridge_waterfall, points/ (resumable)")
@click.option("--command", "command", type=click.Choice(["project", "run"]), default="project",
              show_default=True, help="what each scenario runs")
@click.option("--metric", default=None, help="summary key (dotted for nested, e.g."
              " wh_per_query_p50.chat); default gwh_per_day_facility_nominal for project,"
              " energy_per_query_wh_mean for run")
@click.option("--shapley", is_flag=True, help="order-independent split (every subset of the"
              " groups: 2^n scenarios, at most 8 groups) instead of the ordered bridge")
@click.option("--draws", type=click.IntRange(min=0), default=0, show_default=True,
              help="Monte Carlo draws per projection (0: the nominal day, whose steps add up)")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="local worker processes (default: CPU count)")
@click.option("--quiet", is_flag=True, help="no progress bar")
@OVERWRITE
@FORCE
def bridge_cmd(a, b, out_dir, command, metric, shapley, draws, workers, quiet, overwrite,
               force) -> None:
    """Decompose metric(B) - metric(A) into steps that each change one group of fields (model
    and precision, KV precision, hardware, parallelism, batch limits, SLO, workload mix,
    headroom, idle policy, host, PUE, daily load, other), applied in that order; the steps sum
    exactly to the difference."""
    from simulator.bridge.run import format_table, plan_bridge, run_bridge
    from simulator.output import check_output_dir

    check_output_dir(out_dir, overwrite=True, inputs=[a, b])  # the never-replaced kinds, first
    plan = plan_bridge(a, b, command, metric, shapley, draws)
    res = run_bridge(plan, out_dir, workers=workers, progress=not quiet, overwrite=overwrite,
                     force=force)
    click.echo(format_table(res))
    if not quiet:
        click.echo(f"wrote {out_dir}/bridge.md, bridge.csv, bridge.json,"
                   " charts/bridge_waterfall.png/.svg")
