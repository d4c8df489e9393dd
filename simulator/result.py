"""The result of one run (a leaf module: it imports nothing of the simulator at run time).

``summary`` is the ``summary.json`` contract (:mod:`simulator.metrics.summary`); ``requests``
the per-request table; ``ledger`` the exact power and energy record; ``controllers`` the
plug-ins that acted during the run, by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from simulator.engine.control import Controller
    from simulator.engine.fleet import Fleet
    from simulator.engine.ledger import Ledger
    from simulator.scenario.schema import Scenario


@dataclass
class RunResult:
    """Everything a run produced."""

    scenario: "Scenario"
    fleet: "Fleet"
    ledger: "Ledger"
    requests: "pd.DataFrame"
    end_s: float
    window_s: tuple[float, float]
    class_names: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    controllers: dict[str, "Controller"] = field(default_factory=dict)
