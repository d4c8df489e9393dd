"""Which controller plug-ins a scenario's run gets.

Each entry builds a controller from the scenario, or None when the scenario does not ask for
it. The engine only knows the :class:`~simulator.engine.control.Controller` protocol; adding a
controller (an in-run autoscaler, a facility-level budget) is one entry here and its module
(``docs/extending.md``).
"""

from __future__ import annotations

from collections.abc import Callable

from simulator.engine.control import Controller
from simulator.scenario.schema import Scenario


def _capping(sc: Scenario) -> Controller | None:
    from simulator.capping.controller import from_scenario

    return from_scenario(sc)


CONTROLLERS: dict[str, Callable[[Scenario], Controller | None]] = {
    "capping": _capping,
}


def controllers_for(sc: Scenario) -> list[Controller]:
    """The controllers ``sc`` asks for, in table order."""
    out = []
    for build in CONTROLLERS.values():
        c = build(sc)
        if c is not None:
            out.append(c)
    return out
