"""Command line: ``fleetsim run|validate|reference|schema|project|size|bridge|sweep|plot|report|
compare|headroom|calibrate|profile``.

User errors (bad scenario, bad data) print one line to stderr and exit with code 2; nothing
half-written is left behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from simulator.cli_options import FORCE, OVERWRITE
from simulator.errors import FleetsimError


def _fail(e: Exception) -> None:
    click.echo(f"error: {e}", err=True)
    sys.exit(2)


#: commands that live in their own packages, imported only when named (``fleetsim run``
#: never imports the charts, the sweep machinery or the calibration pipeline)
LAZY_COMMANDS = {
    "sweep": "simulator.sweep.cli:sweep_cmd",
    "plot": "simulator.charts.cli:plot_cmd",
    "report": "simulator.charts.cli:report_cmd",
    "compare": "simulator.charts.cli:compare_cmd",
    "headroom": "simulator.capping.cli:headroom_cmd",
    "project": "simulator.projection.cli:project_cmd",
    "size": "simulator.projection.cli:size_cmd",
    "estimate": "simulator.estimate.cli:estimate_cmd",
    "bridge": "simulator.bridge.cli:bridge_cmd",
    "calibrate": "simulator.calibration.cli:calibrate_cmd",
    "profile": "simulator.calibration.cli:profile_cmd",
}


class Group(click.Group):
    """Every error a user can cause is one line on stderr: FleetsimError and click's usage
    errors exit with code 2, running out of memory too (a run beyond what the limits
    estimated). Commands of :data:`LAZY_COMMANDS` are imported when first named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None and name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            cmd = getattr(importlib.import_module(module), attr)
            self.add_command(cmd, name)
        return cmd

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FleetsimError as e:
            _fail(e)
        except MemoryError:
            _fail(Exception("out of memory: the run needs more memory than this machine has"
                            " (see the limits in docs/invariants.md); make it smaller"))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "fleetsim"
            click.echo(f"error: {where}: {' '.join(e.format_message().split())} (see"
                       f" '{where} --help')", err=True)
            sys.exit(2)
        except click.ClickException as e:
            click.echo(f"error: {' '.join(e.format_message().split())}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=Group)
@click.version_option(package_name="fleetsim")
def main() -> None:
    """fleetsim: simulate LLM serving on GPU fleets (latency, power, energy)."""


def _load(scenario: str, overrides: tuple[str, ...], force: bool = False):
    """Load, check memory fit and the resource limits (before anything is built)."""
    from simulator.engine.fleet import check_memory
    from simulator.scenario import limits
    from simulator.scenario.load import load_scenario

    sc = load_scenario(scenario, overrides)
    limits.check(sc, force)
    check_memory(sc)
    return sc


def _build(sc, force: bool):
    """Build the world; a replay's request count is checked again with the traces' rate."""
    from simulator.api import build
    from simulator.scenario import limits

    sim = build(sc)  # reads traces and builds the fleet: input errors surface here
    if sc.workload.arrival == "replay":
        limits.check(sc, force, rate_per_s=sim.workload.mean_rate_per_s())
    return sim


def warn(lines) -> None:
    for line in lines:
        click.echo(f"warning: {line}", err=True)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override a scenario field by dotted path (repeatable)")
@FORCE
def validate(scenario: str, overrides: tuple[str, ...], force: bool) -> None:
    """Check SCENARIO (schema, references, memory fit, limits) without running it."""
    sc = _load(scenario, overrides, force)
    sim = _build(sc, force)  # builds the workload (reads traces) and the fleet, runs nothing
    lines = [f"{scenario}: ok (" + "; ".join(
        f"{p.name}: {p.model_shape().name} on {p.deployment.nodes} x {p.gpus_per_node}"
        f" {p.profile().name}, tp={p.deployment.tp}, {p.replicas_per_node} replica(s)/node"
        for p in sc.pool_specs()) + ")"]
    for pool in sim.fleet.pools:
        p, g = pool.spec, pool.memory.as_gib()
        lines.append(
            f"  {p.name}: {p.model_shape().name} ({p.deployment.precision}) on {pool.nodes} x"
            f" {pool.gpus_per_node} {pool.profile.name}, tp={pool.tp},"
            f" {pool.replicas_per_node} replica(s)/node")
        lines.append(
            f"    memory per GPU ({p.stack().name}): {g['usable_gib']:.2f} GiB usable ="
            f" weights {g['weights_gib']:.2f} + activations {g['activations_gib']:.2f} +"
            f" overhead {g['overhead_gib']:.2f} + KV cache {g['kv_cache_gib']:.2f}"
            + (f" ({g['kv_capacity_tokens']:,} tokens per rank, {g['replica_kv_capacity_tokens']:,}"
               f" per replica of {g['data_parallel_ranks']} data-parallel ranks)"
               if "data_parallel_ranks" in g else f" ({g['kv_capacity_tokens']:,} tokens per replica)"))
    click.echo("\n".join(lines))


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(),
              help="output folder (replaced atomically)")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="override a scenario field by dotted path (repeatable)")
@click.option("--csv", is_flag=True, help="also write requests.csv")
@click.option("--no-requests", "no_requests", is_flag=True,
              help="write no per-request table (requests.parquet): summary and power only")
@click.option("--quiet", is_flag=True, help="no progress bar or summary")
@OVERWRITE
@FORCE
def run(scenario: str, out_dir: str, overrides: tuple[str, ...], csv: bool, no_requests: bool,
        quiet: bool, overwrite: bool, force: bool) -> None:
    """Simulate SCENARIO and write results to OUT."""
    from tqdm import tqdm

    from simulator.api import run as run_sim
    from simulator.output import AtomicDir, scenario_inputs, write_run_files

    sc = _load(scenario, overrides, force)
    # the output folder is checked and reserved before anything runs
    with AtomicDir(out_dir, overwrite=overwrite, inputs=scenario_inputs(sc)) as tmp:
        sim = _build(sc, force)
        total = sc.simulation.requests
        bar = None if quiet else tqdm(total=total, unit="req", desc="simulating",
                                      file=sys.stderr, mininterval=0.5, leave=False)
        try:
            res = run_sim(sim, bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        write_run_files(res, tmp, csv, requests=not no_requests)
    warn(res.summary.get("warnings", []))
    if not quiet:
        click.echo(format_summary(res.summary, out_dir, requests=not no_requests))


def format_summary(s: dict, out_dir: str, requests: bool = True) -> str:
    """The one-screen summary printed after a run (engineering units)."""
    from simulator import units as u

    ms = lambda x: u.seconds(x)  # noqa: E731
    lines = [
        f"{s['scenario']}: {s['model']} on {u.count(s['nodes'])} node(s) / {u.count(s['gpus'])}"
        f" GPUs (tp={s['tp']}, {s['replicas']} replicas), {u.seconds(s['simulated_time_s'])}"
        " simulated",
        f"  requests   completed {s['requests_completed']:,}  dropped {s['requests_dropped']:,}"
        f"  in flight {s['requests_in_flight']:,}  preemptions {s['preemptions']:,}",
        f"  throughput {s['throughput_requests_per_s']:.3g} req/s (measured completions)  "
        f"{u.tokens_per_s(s['throughput_output_tokens_per_s'])} output  mean batch"
        f" {s['mean_batch_size']:.3g}",
        f"  latency    TTFT p50 {ms(s['ttft_s_p50'])}  p99 {ms(s['ttft_s_p99'])} |"
        f" TPOT p50 {ms(s['tpot_s_p50'])}  p99 {ms(s['tpot_s_p99'])} |"
        f" ITL p50 {ms(s['itl_s_p50'])} | E2E p50 {ms(s['e2e_s_p50'])}  p99 {ms(s['e2e_s_p99'])}",
        f"  power      GPU mean {u.power(s['gpu_power_w_mean'])}  node mean"
        f" {u.power(s['node_power_w_mean'])}  node peak {u.power(s['node_power_w_peak'])}"
        f"  facility mean {u.power(s.get('facility_power_w_mean'))}",
        f"  energy     facility {u.energy_wh(s['energy_facility_j'] / 3600.0)} (whole run)"
        f"  {u.energy_wh(s.get('energy_facility_wh_per_day'))}/day at this load"
        f" | {u.energy_wh(s['energy_per_query_wh_mean'])}/query (facility)"
        f"  {u.eng(s['energy_per_output_token_j'], 'J')}/output token (GPU)",
        "  SLO        " + "  ".join(f"{k} {u.pct(v)}" for k, v in s["slo_attainment"].items()),
    ]
    kv = s.get("kv_transfer")
    if kv is not None:
        lat = kv["latency_s_mean"]
        lines.append(
            f"  kv move    {kv['transfers']:,} transfers  {u.eng(kv['bytes_total'], 'B')}  time p50"
            f" {ms(kv['transfer_s_p50'])}  waited {kv['transfers_waited']:,} (p99"
            f" {ms(kv['wait_s_p99'])}) | mean queue {ms(lat['queue'])}  prefill"
            f" {ms(lat['prefill'])}  wait {ms(lat['kv_wait'])}  transfer {ms(lat['kv_transfer'])}"
            f"  decode {ms(lat['decode'])}")
    if "cost" in s:
        from simulator.projection.cli import cost_line

        lines.append(f"  cost       {cost_line(s['cost'])} (this load, all day)")
    lines.append(f"  wrote {Path(out_dir) / 'summary.json'},"
                 f"{' requests.parquet,' if requests else ''} power/nodes.parquet,"
                 f"{' kv_transfers.parquet,' if kv is not None else ''}"
                 " scenario.resolved.yaml")
    return "\n".join(lines)


@main.command()
@click.option("-o", "--out", "out_path", type=click.Path(),
              help="write the markdown here instead of stdout")
@OVERWRITE
def reference(out_path: str | None, overwrite: bool) -> None:
    """Print the scenario reference (every field, type, unit, default), generated from the schema."""
    from simulator.output import write_text_file
    from simulator.scenario.reference import render_reference

    text = render_reference()
    if out_path is not None:
        # a file fleetsim wrote holds this line (an old reference is replaced)
        write_text_file(out_path, text, signature="by `fleetsim reference`; do not edit",
                        overwrite=overwrite)
    else:
        click.echo(text)


@main.command()
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False),
              help="write the JSON Schema here instead of stdout")
def schema(out_path: str | None) -> None:
    """Print the JSON Schema of a scenario file (for editors: validation and completion).

    In VS Code with the YAML extension, add to settings.json:
    "yaml.schemas": {"/path/to/fleetsim-scenario.schema.json": "scenarios/*.yaml"}."""
    import json

    from simulator.planning import scenario_json_schema

    text = json.dumps(scenario_json_schema(), indent=2) + "\n"
    if out_path:
        Path(out_path).write_text(text)
    else:
        click.echo(text, nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
