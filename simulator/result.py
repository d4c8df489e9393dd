"""The result of one run (a leaf module: it imports nothing of the simulator at run time).

``summary`` is the ``summary.json`` contract (:mod:`simulator.metrics.summary`); ``table``
the per-request table as typed columns (:class:`simulator.metrics.requests.RequestTable`) and
``requests`` the same as a pandas DataFrame (built on first use); ``ledger`` the exact power
and energy record; ``controllers`` the plug-ins that acted during the run, by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from simulator.engine.control import Controller
    from simulator.engine.fleet import Fleet
    from simulator.engine.ledger import Ledger
    from simulator.metrics.requests import RequestTable
    from simulator.scenario.schema import Scenario


@dataclass
class RunResult:
    """Everything a run produced."""

    scenario: "Scenario"
    fleet: "Fleet"
    ledger: "Ledger"
    table: "RequestTable"
    end_s: float
    window_s: tuple[float, float]
    class_names: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    controllers: dict[str, "Controller"] = field(default_factory=dict)
    transfers: dict[str, Any] | None = None  # a disaggregated run's KV transfers (columns)
    _frame: "pd.DataFrame | None" = field(default=None, repr=False, compare=False)

    @property
    def requests(self) -> "pd.DataFrame":
        """The per-request table as a DataFrame (built from ``table`` once, on first use)."""
        if self._frame is None:
            self._frame = self.table.frame()
        return self._frame
