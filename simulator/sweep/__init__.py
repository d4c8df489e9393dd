"""Parameter sweeps: many scenarios that differ by dotted-path overrides, run in parallel
(local processes or a Dask cluster), resumable, collected into one tidy table.

Layout of a sweep's output folder::

    OUT/sweep.json            what was swept (scenario, command, points and their overrides)
    OUT/points/<id>/          one point's own output (the command's folder) + point.json
    OUT/results.parquet|csv   one row per finished point: parameters + flattened summary

Dependency direction: sweep -> engine/output (never the other way).
"""

import sys
import types

from simulator.sweep.commands import COMMANDS
from simulator.sweep.results import collect_results, flatten_summary
from simulator.sweep.runner import run_sweep
from simulator.sweep.spec import Point, Sweep, build_sweep, point_id

__all__ = ["COMMANDS", "Point", "Sweep", "build_sweep", "collect_results", "flatten_summary",
           "point_id", "run_sweep"]


class _CallableModule(types.ModuleType):
    """``from simulator import sweep`` names this package (a submodule wins over the package's
    lazy exports), so the package itself is callable: ``sweep(...)`` is
    :func:`simulator.planning.sweep`."""

    def __call__(self, *args, **kwargs):
        from simulator.planning import sweep as _sweep

        return _sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
