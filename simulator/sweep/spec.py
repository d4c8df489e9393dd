"""What a sweep runs: the ``sweep:`` section of a scenario (or the CLI flags), expanded into
points, each validated as a complete scenario before anything runs.

A point is a mapping ``{dotted.path: value}`` of overrides applied on top of the base scenario
(after its ``--set`` overrides). The points of a sweep are the union, in this order and without
duplicates, of

* ``grid``: the cartesian product of ``{path: [values]}`` (first path varies slowest);
* ``points``: an explicit list of mappings (``{}`` is the base scenario itself, useful as the
  baseline of a one-at-a-time sensitivity study);
* ``sample``: ``n`` points of a Latin hypercube over ``ranges`` ``{path: [low, high]}`` with
  ``seed`` (scipy.stats.qmc; every range cut into ``n`` equal strata, one point in each;
  integers when both bounds are integers, else floats).

A point's id is a hash of its overrides only (stable across runs, machines and point order); its
results live in ``OUT/points/<id>/``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, Strict as StrictMode, ValidationError

from simulator import yamlio
from simulator.devices import file_sha
from simulator.errors import FleetsimError, ScenarioError
from simulator.yamlio import parse_value
from simulator.scenario.load import (format_validation_error, parse_override, read_yaml,
                                     scenario_from_dict, set_path)
from simulator.scenario.schema import Scenario
from simulator.strict import Strict


class SampleSpec(Strict):
    """Random points: ``n`` points of a Latin hypercube over the ranges (one in each of ``n``
    equal strata of every range), reproducible from ``seed``."""

    n: int = Field(gt=0, description="number of random points")
    seed: int = Field(0, ge=0, description="seed of the draws")
    ranges: dict[str, Annotated[tuple[int | float, int | float], StrictMode(False)]] = Field(
        description="{dotted.path: [low, high]}; integers when both bounds are integers")


class SweepSpec(Strict):
    """The ``sweep:`` section of a scenario file."""

    command: str = Field("run", description="what runs at each point (see COMMANDS)")
    grid: dict[str, list[Any]] | None = Field(None, description="{dotted.path: [values]}: every combination")
    points: list[dict[str, Any]] | None = Field(None, description="explicit points [{dotted.path: value}]")
    sample: SampleSpec | None = Field(None, description="random points")


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its id, its overrides and its validated scenario data."""

    id: str
    overrides: dict[str, Any]
    data: dict[str, Any] = field(repr=False, compare=False)
    scenario_sha: str = field(compare=False)


def point_id(overrides: dict[str, Any]) -> str:
    """Stable id of a point: the first 12 hex digits of the SHA-256 of its sorted overrides."""
    text = json.dumps(overrides, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def scenario_sha(sc: Scenario, command: str) -> str:
    """Fingerprint of what a point computes: resolved scenario, command, and the fitted
    coefficients its pools read (a device profile's files, or a scenario's own calibration
    file by content), so a resumed sweep reruns its points after a recalibration."""
    fitted = []
    for pool in sc.pool_specs():
        own = pool.hardware.calibration or sc.simulation.calibration
        fitted.append(pool.profile().fitted_sha())
        if own is not None:
            fitted.append(file_sha(str(sc.resolve(own))))
    text = json.dumps({"command": command, "scenario": sc.model_dump(mode="json"),
                       "fitted": fitted}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_sweep_section(raw: Any, file: str | None) -> SweepSpec:
    if not isinstance(raw, dict):
        raise ScenarioError("must be a mapping with grid, points and/or sample", file=file, field="sweep")
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        if err["type"] == "extra_forbidden":
            from simulator.errors import did_you_mean

            key = str(err["loc"][-1])
            parent = SampleSpec if len(err["loc"]) > 1 and err["loc"][0] == "sample" else SweepSpec
            path = ".".join(str(x) for x in ("sweep", *err["loc"]))
            raise ScenarioError(f"unknown field{did_you_mean(key, parent.model_fields)}",
                                file=file, field=path) from None
        raise format_validation_error(e, file, prefix=("sweep",)) from None


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """``"a.b=1,2,{x: 1}"`` -> ``("a.b", [1, 2, {"x": 1}])`` (values parsed as a YAML flow list)."""
    path, value = parse_override(text)
    raw = text.partition("=")[2].strip()
    if not raw:
        return path, []
    values = parse_value(f"[{raw}]")
    if not isinstance(values, list):  # not valid YAML as a flow list: comma-separated text
        values = [v.strip() for v in raw.split(",")]
    return path, [v for v in values]


def parse_range_option(text: str) -> tuple[str, tuple[Any, Any]]:
    """``"facility.pue=1.1:1.5"`` -> ``("facility.pue", (1.1, 1.5))``."""
    path, _ = parse_override(text)
    raw = text.partition("=")[2]
    lo, sep, hi = raw.partition(":")
    if not sep:
        raise ScenarioError(f"range {text!r} must look like path=low:high", field="--range")
    bounds = (parse_value(lo) if lo.strip() else None, parse_value(hi) if hi.strip() else None)
    for b in bounds:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b):
            raise ScenarioError(f"range {text!r}: bounds must be finite numbers (got {b!r})",
                                field=f"--range {path}")
    return path, bounds


def spec_from_options(grid: tuple[str, ...], points_file: str | None, sample_n: int | None,
                      sample_seed: int, ranges: tuple[str, ...], command: str | None) -> SweepSpec | None:
    """The sweep given by CLI flags, or None when no flag defines points."""
    if not grid and not points_file and sample_n is None:
        if ranges:
            raise ScenarioError("--range needs --sample N", field="--range")
        return None
    raw: dict[str, Any] = {}
    if command:
        raw["command"] = command
    if grid:
        g: dict[str, list[Any]] = {}
        for text in grid:
            path, values = parse_grid_option(text)
            g[path] = values
        raw["grid"] = g
    if points_file:
        pts = read_yaml_any(points_file)
        if isinstance(pts, dict) and "points" in pts:
            pts = pts["points"]
        raw["points"] = pts
    if sample_n is not None:
        raw["sample"] = {"n": sample_n, "seed": sample_seed,
                         "ranges": dict(parse_range_option(r) for r in ranges)}
    return parse_sweep_section(raw, points_file if points_file and not grid else None)


def read_yaml_any(path: str) -> Any:
    """A points file (UTF-8 YAML, no duplicate keys: :mod:`simulator.yamlio`)."""
    return yamlio.read(path, "points")


#: most points a sweep may have (each is a simulation and a folder)
MAX_POINTS = 100_000


def expand(spec: SweepSpec, file: str | None = None) -> list[dict[str, Any]]:
    """The override mappings of every point, in order, duplicates removed."""
    out: list[dict[str, Any]] = []
    if spec.grid is not None:
        if not spec.grid:
            raise ScenarioError("grid is empty; give at least one path with values", file=file,
                                field="sweep.grid")
        for path, values in spec.grid.items():
            if not values:
                raise ScenarioError("grid has no values for this path (give path=v1,v2,...)",
                                    file=file, field=f"sweep.grid.{path}")
        size = math.prod(len(v) for v in spec.grid.values())
        if size > MAX_POINTS:
            raise ScenarioError(f"the grid has {size:,} points, more than {MAX_POINTS:,}; split"
                                " the sweep", file=file, field="sweep.grid")
        paths = list(spec.grid)
        for combo in itertools.product(*(spec.grid[p] for p in paths)):
            out.append(dict(zip(paths, combo)))
    if spec.points is not None:
        if not spec.points:
            raise ScenarioError("points is an empty list", file=file, field="sweep.points")
        out.extend(dict(p) for p in spec.points)
    if spec.sample is not None:
        s = spec.sample
        if s.n > MAX_POINTS:
            raise ScenarioError(f"{s.n:,} random points are more than {MAX_POINTS:,}; split the"
                                " sweep", file=file, field="sweep.sample.n")
        if not s.ranges:
            raise ScenarioError("sample needs at least one range (path: [low, high])", file=file,
                                field="sweep.sample.ranges")
        from scipy.stats import qmc

        for path, (lo, hi) in s.ranges.items():
            if hi < lo:
                raise ScenarioError(f"range needs low <= high (got {lo}, {hi})", file=file,
                                    field=f"sweep.sample.ranges.{path}")
        # a Latin hypercube: each range is cut into n equal strata and every stratum gets one
        # point, so n points cover every input's range evenly (plain random draws clump)
        u = qmc.LatinHypercube(d=len(s.ranges), rng=np.random.default_rng(s.seed)).random(s.n)
        cols: dict[str, list[Any]] = {}
        for j, (path, (lo, hi)) in enumerate(s.ranges.items()):
            if isinstance(lo, int) and isinstance(hi, int):
                cols[path] = [int(min(hi, lo + np.floor(x * (hi - lo + 1)))) for x in u[:, j]]
            else:
                cols[path] = [float(lo + x * (hi - lo)) for x in u[:, j]]
        for i in range(s.n):
            out.append({p: cols[p][i] for p in cols})
    if not out:
        raise ScenarioError("nothing to sweep: give grid, points or sample", file=file, field="sweep")
    seen: set[str] = set()
    unique = []
    for o in out:
        pid = point_id(o)
        if pid not in seen:
            seen.add(pid)
            unique.append(o)
    return unique


def check_path(resolved: dict[str, Any], dotted: str, file: str | None) -> None:
    """Reject a path that goes *through* a key the resolved base scenario does not have (for
    example ``workload.classes.chta.slo.ttft_s``), naming the key with a did-you-mean. Creating
    a new last key (a new ``workload.mix`` entry) is left to the schema to judge."""
    from simulator.errors import did_you_mean

    keys = dotted.split(".")
    cur: Any = resolved
    for i, key in enumerate(keys[:-1]):
        if not isinstance(cur, dict):
            return  # a leaf or None: the schema reports the type problem
        if key not in cur:
            where = ".".join(keys[:i + 1])
            raise ScenarioError(f"unknown field{did_you_mean(key, cur)}; known here:"
                                f" {', '.join(map(str, cur))}", file=file, field=where)
        cur = cur[key]


@dataclass
class Sweep:
    """A validated sweep: base scenario, command and points (nothing has run)."""

    file: str
    command: str
    base_overrides: list[str]
    points: list[Point]
    base_dir: Path
    grid_paths: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # files the points read (never replaced)


def build_sweep(path: str, overrides: list[str] | tuple[str, ...] = (), cli_spec: SweepSpec | None = None,
                command: str | None = None, force: bool = False) -> Sweep:
    """Read the scenario, expand the sweep, and validate every point up front: its scenario
    (schema, memory fit, the limits of :mod:`simulator.scenario.limits` unless ``force``), the
    files it reads (traces, calibration files; each distinct file once) and what its command
    needs (``project``: a projection section). Nothing runs and nothing is written.

    Raises :class:`ScenarioError` (one line naming the file, the field path and the point) on a
    bad path, a value of the wrong type, an empty grid, or a point that cannot run.
    """
    from simulator.sweep.commands import COMMANDS

    data = read_yaml(path)
    section = data.pop("sweep", None)
    spec = cli_spec
    if spec is None:
        if section is None:
            raise ScenarioError("no sweep: give --grid, --points or --sample, or a sweep: section",
                                file=path, field="sweep")
        spec = parse_sweep_section(section, path)
    cmd = command or spec.command
    if cmd not in COMMANDS:
        from simulator.errors import did_you_mean

        raise ScenarioError(f"unknown command {cmd!r}{did_you_mean(cmd, COMMANDS)}; valid:"
                            f" {', '.join(sorted(COMMANDS))}", file=path, field="sweep.command")
    base = copy.deepcopy(data)
    for text in overrides:
        k, v = parse_override(text)
        set_path(base, k, v)
    base_dir = Path(path).resolve().parent
    try:
        resolved: dict[str, Any] | None = scenario_from_dict(copy.deepcopy(base), file=path).model_dump()
    except ScenarioError:
        resolved = None  # the points may complete an incomplete base; pydantic still checks each
    from simulator.output import scenario_inputs

    points = []
    checked: dict[Any, None] = {}  # files already read (each distinct file once)
    inputs: dict[str, None] = {path: None}
    for ov in expand(spec, path):
        d = copy.deepcopy(base)
        for k, v in ov.items():
            if not isinstance(k, str) or not k or any(not part for part in k.split(".")):
                raise ScenarioError(f"bad field path {k!r} in sweep point", file=path, field="sweep")
            if resolved is not None:
                check_path(resolved, k, path)
            set_path(d, k, copy.deepcopy(v))
        where = ", ".join(f"{k}={v!r}" for k, v in ov.items()) or "the base scenario"
        try:
            sc = scenario_from_dict(d, file=path, base_dir=base_dir)
            check_point(sc, cmd, force, checked)
        except FleetsimError as e:
            problem = e.problem if isinstance(e, ScenarioError) else str(e)
            field = e.field if isinstance(e, ScenarioError) else None
            raise ScenarioError(f"{problem} (sweep point {where})", file=path, field=field) from None
        points.append(Point(point_id(ov), ov, d, scenario_sha(sc, cmd)))
        for f in scenario_inputs(sc):
            inputs.setdefault(str(f), None)
    return Sweep(path, cmd, list(overrides), points, base_dir, list(spec.grid or {}),
                 list(inputs))


def check_point(sc: Scenario, command: str, force: bool, checked: dict[Any, None]) -> None:
    """Everything a point needs before it runs (see :func:`build_sweep`); ``checked`` holds the
    files already read, so that a file shared by many points is read once."""
    from simulator.engine.fleet import check_memory, pool_calibration
    from simulator.scenario import limits
    from simulator.workload.distributions import build_length_sampler
    from simulator.workload.trace import load_azure_trace

    check_memory(sc)
    if command == "project":
        if sc.projection is None:
            raise ScenarioError("missing: --command project needs a projection section (at least"
                                " projection.queries_per_day)", file=sc.file, field="projection")
        from simulator.projection.project import check_projection_limits

        check_projection_limits(sc, 1, force)
    elif command != "estimate":  # an estimate runs no simulation: no limit applies
        limits.check(sc, force)
    for pool in sc.pool_specs():
        key = ("calibration", pool.hardware.calibration or sc.simulation.calibration)
        if key[1] is not None and key not in checked:
            pool_calibration(sc, pool)
            checked[key] = None
    wl = sc.workload
    if wl.arrival == "replay":
        for name, trace in (wl.traces or {}).items():
            key = ("trace", str(sc.resolve(trace)))
            if key not in checked:
                load_azure_trace(sc.resolve(trace), field=f"workload.traces.{name}")
                checked[key] = None
    else:
        for name, qc in wl.classes.items():
            for which in ("input_tokens", "output_tokens"):
                ls = getattr(qc, which)
                key = ("column", str(sc.resolve(ls.trace)), ls.column) if ls.dist == "empirical" \
                    else None
                if key is not None and key not in checked:
                    build_length_sampler(ls, sc.base_dir, f"workload.classes.{name}.{which}")
                    checked[key] = None
    proj = sc.projection
    if command == "project" and proj is not None and proj.curve_trace is not None:
        key = ("curve", str(sc.resolve(proj.curve_trace.path)), proj.curve_trace.column)
        if key not in checked:
            from simulator.projection.day import curve_from_trace

            curve_from_trace(sc)
            checked[key] = None
