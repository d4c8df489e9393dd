"""Click commands ``calibrate`` and ``profile`` (registered in the main ``fleetsim`` group).

Errors are :class:`~simulator.errors.FleetsimError` subclasses; the main CLI prints them as one
line and exits with code 2.
"""

from __future__ import annotations

import click


@click.command("calibrate")
@click.option("--gpu", "gpu", default="H100", show_default=True,
              help="GPU type to calibrate: H100 (per-op, NCCL, Splitwise and ML.ENERGY data) or"
              " B200 (ML.ENERGY runs; per-op fits transferred from the H100)")
@click.option("--data", "data", default="calibration/data", show_default=True,
              type=click.Path(file_okay=False), help="folder with sources/, profiles/ and"
              " mlenergy_conditions.yaml")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False),
              help="fitted calibration file to write [default: the GPU profile's"
              " simulator/devices/<gpu>/calibration.yaml] (for the H100 a '-splitwise2023'"
              " sibling is written next to it)")
@click.option("--report", "report", default=None, type=click.Path(file_okay=False),
              help="folder for the markdown report and charts [default: calibration/report,"
              " calibration/report/<gpu> for other GPUs]")
@click.option("--fast", is_flag=True, hidden=True,
              help="subsampled fit without leave-one-model-out refits (tests only)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def calibrate_cmd(gpu: str, data: str, out: str | None, report: str | None, fast: bool,
                  quiet: bool) -> None:
    """Re-fit the timing and power models from measured data, deterministically.

    Writes the calibration file, its Splitwise-2023 sibling (H100) and the report (markdown and
    PNG charts of predicted against measured for every op and end-to-end point).
    """
    from simulator.devices import load_profile, names
    from simulator.errors import ScenarioError

    if gpu not in names():
        raise ScenarioError(f"unknown GPU {gpu!r}; device profiles: {', '.join(names())}",
                            field="--gpu")
    dev = load_profile(gpu)
    if dev.key != "h100":
        from simulator.calibration.transfer import IDLE_ANCHORS_W, run as run_transfer

        if dev.name not in IDLE_ANCHORS_W:
            raise ScenarioError(f"{dev.name} is not calibrated on measurements (its coefficients"
                                " are derived: python -m simulator.calibration.derive); calibrate"
                                " H100 or B200", field="--gpu")
        report = report or f"calibration/report/{dev.key}"
        res = run_transfer(gpu, data, out, report, fast=fast, progress=not quiet)
        ml = res.errors["mlenergy"]
        click.echo(f"wrote {out or 'the ' + dev.name + ' profile calibration.yaml'}; report in {report}/")
        click.echo(f"{res.errors['method']} MAPE ({dev.name}): ML.ENERGY ITL"
                   f" {100 * ml['itl_mape']:.1f} %, power {100 * ml['gpu_power_mape']:.1f} %,"
                   f" J/token {100 * ml['j_per_token_mape']:.1f} %")
        return
    from simulator.calibration.pipeline import SHIPPED, Options, run

    out = out or SHIPPED
    report = report or "calibration/report"
    res = run(data, out, report, Options(fast=fast), progress=not quiet)
    e = res.errors
    ml = e["mlenergy"]
    sw = e["splitwise"]["llama2_70b"]
    click.echo(f"wrote {out} (and its -splitwise2023 sibling); report in {report}/")
    click.echo(f"{e['method']} MAPE: per-op GEMM {100 * e['per_op']['gemm_mape']:.1f} %,"
               f" all ops {100 * e['per_op']['all_ops_mape']:.1f} %;"
               f" splitwise prefill {100 * sw['prefill_time_mape']:.1f} %,"
               f" decode {100 * sw['decode_time_mape']:.1f} %;"
               f" ML.ENERGY ITL {100 * ml['itl_mape']:.1f} %, power {100 * ml['gpu_power_mape']:.1f} %,"
               f" J/token {100 * ml['j_per_token_mape']:.1f} %")


@click.command("profile")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cuda", show_default=True,
              help="cuda: torch + CUDA events + NVML power on a GPU; cpu: wall-clock timers")
@click.option("--tiny", is_flag=True, help="tiny shapes that run in seconds (CPU smoke test)")
@click.option("--model", "model", default=None, help="catalog model whose shapes to profile"
              " (default: Llama-3.1-8B; ignored with --tiny)")
@click.option("--tp", "tps", multiple=True, type=click.Choice(["1", "2", "4", "8"]),
              help="tensor-parallel degrees whose per-GPU shards to profile (repeatable;"
              " default 1 2 4 8)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="per-op CSV (Vidur mlp.csv schema + metadata); power goes to <out>_power.csv")
@click.option("--repeats", default=None, type=int, help="timed repetitions per point")
@click.option("--backend", type=click.Choice(["auto", "torch", "numpy"]), default="auto",
              show_default=True, help="CPU only: numpy works without torch")
@click.option("--no-power", is_flag=True, help="skip the NVML power measurement")
def profile_cmd(device: str, tiny: bool, model: str | None, tps: tuple[str, ...], out: str,
                repeats: int | None, backend: str, no_power: bool) -> None:
    """Measure per-op timings (and GPU power via NVML, read-only) in the fitter's CSV schema."""
    from simulator.calibration.profile import ProfileConfig, run_profile

    cfg = ProfileConfig(device=device, tiny=tiny, model=model, tps=tuple(int(t) for t in tps) or None,
                        out=out, repeats=repeats, backend=backend, power=not no_power)
    written = run_profile(cfg, progress=True)
    for p in written:
        click.echo(f"wrote {p}")
