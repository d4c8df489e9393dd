"""``fleetsim estimate``: the analytical steady state of a scenario, in milliseconds."""

from __future__ import annotations

import click


@click.command("estimate")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override a scenario field by dotted path (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print the estimate as JSON")
def estimate_cmd(scenario: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Estimate SCENARIO's capacity, energy per query and power from the physics alone.

    No simulation and no queueing: the steady state of continuous batching (Little's law on
    the decode batch, the iteration's time and energy from the same physics as the engine).
    It screens configurations in milliseconds; simulate the ones that matter (latency tails
    and SLO attainment need the simulator). Its error against the simulator on the bundled
    scenarios: docs/estimate.md.
    """
    import json
    import time

    from simulator.engine.fleet import check_memory
    from simulator.estimate import estimate
    from simulator.output import _clean
    from simulator.scenario.load import load_scenario
    from simulator import units as u

    sc = load_scenario(scenario, overrides)
    check_memory(sc)
    t0 = time.perf_counter()
    e = estimate(sc)
    took = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps(_clean(e.as_dict()), indent=2))
        return
    state = "above capacity: served at capacity" if e.saturated else f"load {e.load:.0%}"
    click.echo("\n".join([
        f"{sc.name}: analytical estimate ({took * 1e3:.1f} ms; no queueing, see docs/estimate.md)",
        f"  capacity   {e.capacity_requests_per_s:.4g} requests/s (fleet); offered"
        f" {e.offered_requests_per_s:.4g}/s, {state}",
        f"  batch      {e.mean_batch_size:.3g} decoding per busy replica; TPOT"
        f" {u.seconds(e.tpot_s)}; TTFT without queueing {u.seconds(e.ttft_s_no_queue)}",
        f"  power      GPU mean {u.power(e.gpu_power_w_mean)}  node mean"
        f" {u.power(e.node_power_w_mean)}  facility mean {u.power(e.facility_power_w_mean)}",
        f"  energy     {u.energy_wh(e.energy_per_query_wh_mean)}/query (facility)"
        f"  {u.energy_wh(e.energy_facility_wh_per_day)}/day at this load",
    ]))
