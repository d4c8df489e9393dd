"""``fleetsim headroom``: how many more nodes a row budget holds within a latency impact."""

from __future__ import annotations

import json
import sys

import click

from simulator.cli_options import FORCE, OVERWRITE


@click.command("headroom")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--max-impact", type=click.FloatRange(0.0, min_open=True), default=0.1,
              show_default=True, help="largest allowed P99 TTFT/TPOT increase against the same"
              " fleet uncapped, as a fraction (0.1 = 10 %)")
@click.option("--max-extra", type=click.IntRange(1), default=8, show_default=True,
              help="most nodes beyond the budget's nameplate count to try")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override a scenario field by dotted path (repeatable)")
@click.option("-o", "--out", "out_path", type=click.Path(),
              help="also write the full result as JSON here")
@OVERWRITE
@FORCE
def headroom_cmd(scenario: str, max_impact: float, max_extra: int, overrides: tuple[str, ...],
                 out_path: str | None, overwrite: bool, force: bool) -> None:
    """Nodes that fit SCENARIO's row budget within a latency impact (capped vs uncapped).

    The budget stays fixed while the node count (and the arrival rate with it) grows from the
    number the budget covers at nameplate; each size runs capped and uncapped.
    """
    from simulator.capping.headroom import capacity
    from simulator.errors import ScenarioError
    from simulator.scenario import limits
    from simulator.scenario.load import load_scenario

    sc = load_scenario(scenario, overrides)
    if not sc.power.has_budget:
        raise ScenarioError("headroom needs a row budget (power.row_budget_w or"
                            " power.oversubscription)", file=scenario, field="power.row_budget_w")
    limits.check(sc, force)  # each trial size runs the scenario (capped and uncapped)
    res = capacity(sc, max_impact, max_extra,
                   progress=lambda p: click.echo(
                       f"  {p['nodes']} nodes: worst P99 ratio {p['worst_p99_ratio']:.3f}"
                       f" ({'ok' if p['ok'] else 'over'})", err=True))
    best = res["max_nodes_within_impact"]
    click.echo(f"budget {res['budget_w'] / 1e3:.1f} kW covers {res['nodes_at_nameplate']} nodes at"
               f" nameplate; within +{100 * max_impact:.0f} % P99 latency it holds"
               f" {best if best is not None else 'none'}"
               f" ({'+' + str(res['extra_nodes']) if best is not None else 'no'} extra nodes)")
    if out_path is not None:
        from simulator.output import write_text_file

        # a file fleetsim wrote holds this key (an earlier result is replaced)
        write_text_file(out_path, json.dumps(res, indent=2, default=float),
                        signature='"max_nodes_within_impact"', overwrite=overwrite)


if __name__ == "__main__":  # pragma: no cover
    headroom_cmd(sys.argv[1:])
