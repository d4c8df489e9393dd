"""The Python API: ``simulate`` = build -> run -> summarise, plus loading scenarios. The
planning functions built on it (``project``, ``sweep``, ``size``) are in
:mod:`simulator.planning`; a worked example: ``docs/api.md`` (a test runs it).

    from simulator import load_scenario, simulate
    res = simulate(load_scenario("scenarios/default.yaml"))
    res.summary["energy_facility_j"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from simulator.controllers import controllers_for
from simulator.engine.fleet import ModelCache
from simulator.engine.run import Simulation
from simulator.metrics.summary import collect
from simulator.physics.params import Calibration
from simulator.result import RunResult
from simulator.scenario.load import load_scenario, scenario_from_dict
from simulator.scenario.schema import Scenario

__all__ = ["load_scenario", "scenario_from_dict", "simulate", "build", "run", "RunResult"]


def build(sc: Scenario, calibration: Calibration | Mapping[str, Calibration] | None = None,
          models: ModelCache | None = None) -> Simulation:
    """Build a scenario's world (reads traces and calibration files, plans memory): input
    errors surface here, before anything runs. ``calibration`` overrides the pools' fitted
    coefficients (one for every pool, or one per pool name); ``models`` keeps iteration models
    across simulations (:class:`~simulator.engine.fleet.ModelCache`)."""
    return Simulation(sc, calibration, models=models)


def run(sim: Simulation, progress: Callable[[int], None] | None = None,
        summary: bool = True) -> RunResult:
    """Run a built world with the scenario's controllers and summarise it. ``progress`` is
    called with the number of newly ended requests; ``summary=False`` skips ``summary.json``
    (the request table, window and ledger are there)."""
    sim.progress = progress
    controllers = controllers_for(sim.sc)
    return collect(sim.run(controllers), controllers, summary)


def simulate(sc: Scenario, calibration: Calibration | Mapping[str, Calibration] | None = None,
             progress: Callable[[int], None] | None = None, summary: bool = True,
             models: ModelCache | None = None) -> RunResult:
    """Build, run and summarise a validated scenario (see :class:`RunResult`)."""
    return run(build(sc, calibration, models), progress, summary)

