"""The planner's Python API, built on :mod:`simulator.api`: a fleet-day projection, a sweep,
the size of a fleet for a load, and the JSON Schema of a scenario file. Everything is also
exported lazily from the package: ``from simulator import simulate, project, sweep, size,
load_scenario``. A worked example that a test runs: ``docs/api.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from simulator.scenario.schema import Scenario

__all__ = ["project", "sweep", "size", "scenario_json_schema"]


def project(sc: Scenario, workers: int = 1):
    """A fleet-day projection of a scenario with a ``projection`` section
    (:class:`~simulator.projection.project.Projection`: ``summary``, ``hourly``, ``draws``).
    Write its folder with :func:`simulator.projection.output.write_projection`."""
    from simulator.projection.project import project as _project

    return _project(sc, workers=workers)


def sweep(scenario_file: str, out_dir: str, grid: Mapping[str, list] | None = None,
          points: list[dict] | None = None, command: str | None = None,
          overrides: list[str] | tuple[str, ...] = (), workers: int | None = 1):
    """Run ``scenario_file`` at every point of a grid (``{dotted.path: [values]}``) and/or a
    list of points (``[{dotted.path: value}]``), or its own ``sweep:`` section when neither is
    given, into ``out_dir``; returns the results table (one row per point, pandas)."""
    from simulator.sweep.runner import run_sweep
    from simulator.sweep.spec import build_sweep, parse_sweep_section

    spec = None
    if grid is not None or points is not None:
        raw: dict = {}
        if grid is not None:
            raw["grid"] = {k: list(v) for k, v in grid.items()}
        if points is not None:
            raw["points"] = list(points)
        if command:
            raw["command"] = command
        spec = parse_sweep_section(raw, scenario_file)
    sw = build_sweep(scenario_file, list(overrides), spec, command)
    return run_sweep(sw, out_dir, workers=workers, progress=False)["table"]


def size(sc: Scenario, rate_per_s: float | None = None, queries_per_day: float | None = None,
         slo_target: float = 0.99, headroom: float = 1.0, replications: int = 3) -> dict:
    """The smallest fleet meeting every class's SLO at a load (``fleetsim size``), as a dict."""
    from simulator.projection.size import size as _size

    return _size(sc, rate_per_s, queries_per_day, slo_target, headroom, replications)


def scenario_json_schema() -> dict:
    """The JSON Schema of a scenario file (``fleetsim schema``), for editors."""
    from simulator.scenario.schema import Scenario
    from simulator.sweep.spec import SweepSpec

    schema = Scenario.model_json_schema(mode="validation")
    sweep_schema = SweepSpec.model_json_schema(mode="validation")
    defs = schema.setdefault("$defs", {})
    for k, v in sweep_schema.pop("$defs", {}).items():
        defs.setdefault(f"Sweep{k}", v)
    text = json.dumps(sweep_schema).replace('"#/$defs/', '"#/$defs/Sweep')
    defs["SweepSpec"] = json.loads(text)
    schema["properties"]["sweep"] = {"anyOf": [{"$ref": "#/$defs/SweepSpec"}, {"type": "null"}],
                                     "description": "a sweep over this scenario (`fleetsim"
                                     " sweep`); ignored by other commands"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fleetsim scenario"
    return schema
