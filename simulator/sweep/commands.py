"""What runs at each sweep point: ``COMMANDS[name](scenario, out_dir) -> summary``.

A command receives a validated :class:`~simulator.scenario.schema.Scenario` and a folder path
that does not exist yet; it writes its output there (``summary.json`` at least) and returns the
summary dict (flat numeric keys, plus nested dicts that the results table flattens with dots).
A new command (for example ``project``) is one more entry in this dict; it must be a top-level
function so that worker processes and Dask can pickle it by reference.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.scenario.schema import Scenario

if TYPE_CHECKING:
    from simulator.estimate.model import EstimateCache


def run_command(sc: Scenario, out_dir: Path) -> dict[str, Any]:
    """``fleetsim run``: simulate and write the run folder (summary, requests, power)."""
    from simulator.api import simulate
    from simulator.output import write_run

    res = simulate(sc)
    write_run(res, out_dir)
    return res.summary


def run_summary_command(sc: Scenario, out_dir: Path) -> dict[str, Any]:
    """``fleetsim run --no-requests``: simulate and write the summary and power, no
    per-request table (``fleetsim sweep --no-requests``)."""
    from simulator.api import simulate
    from simulator.output import write_run

    res = simulate(sc)
    write_run(res, out_dir, requests=False)
    return res.summary


def estimate_command(sc: Scenario, out_dir: Path,
                     cache: EstimateCache | None = None) -> dict[str, Any]:
    """``fleetsim estimate``: the analytical steady state, milliseconds a point
    (``fleetsim sweep --estimate``); writes ``summary.json``. ``cache``: what the sweep's
    points share (the runner keeps one per worker; the result is the same without it)."""
    from simulator.estimate import estimate
    from simulator.output import write_json

    summary = estimate(sc, cache).as_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "summary.json", summary)
    return summary


def project_command(sc: Scenario, out_dir: Path) -> dict[str, Any]:
    """``fleetsim project``: a fleet-day projection (one process; the sweep parallelises)."""
    from simulator.projection.output import write_projection
    from simulator.projection.project import project

    proj = project(sc)
    write_projection(proj, out_dir)
    return proj.summary


COMMANDS: dict[str, Callable[[Scenario, Path], dict[str, Any]]] = {
    "run": run_command,
    "run-summary": run_summary_command,
    "estimate": estimate_command,
    "project": project_command,
}
