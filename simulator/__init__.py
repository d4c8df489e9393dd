"""fleetsim: a discrete-event simulator of LLM serving on GPU fleets (latency, power, energy).

Dependency direction (nothing points the other way; ``docs/extending.md`` has the map):

    errors, strict  <-  physics (pure models), catalog  <-  devices (profiles as package data)
    <-  workload, scenario  <-  engine (replica, pools, ledger, controller view)
    <-  metrics, capping (a controller plug-in)  <-  api (simulate), output, projection,
    sweep, charts  <-  cli

The public API is imported lazily, so ``import simulator`` stays cheap:
``from simulator import simulate, project, sweep, size, load_scenario``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {"simulate": "simulator.api", "load_scenario": "simulator.api",
        "scenario_from_dict": "simulator.api", "RunResult": "simulator.result",
        "project": "simulator.planning", "sweep": "simulator.planning",
        "size": "simulator.planning", "scenario_json_schema": "simulator.planning"}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    mod = _API.get(name)
    if mod is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)
