"""Shared helpers: small scenarios as dicts."""

from __future__ import annotations

import copy

import pytest

from simulator.scenario.load import scenario_from_dict

CHAT = {"input_tokens": {"dist": "fixed", "value": 500},
        "output_tokens": {"dist": "exponential", "median": 300},
        "slo": {"ttft_s": 2.0, "tpot_s": 0.1}}


def small(**over) -> dict:
    """A small, fast scenario: Llama-3.1-8B on one node, TP 2 (4 replicas), Poisson chat."""
    d = {
        "name": "test",
        "model": "Llama-3.1-8B",
        "deployment": {"nodes": 1, "tp": 2},
        "workload": {"arrival": "poisson", "rate_per_s": 20.0, "classes": {"chat": copy.deepcopy(CHAT)}},
        "simulation": {"requests": 400, "warmup_requests": 40, "seed": 3},
    }
    for path, value in over.items():
        cur = d
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        cur[keys[-1]] = value
    return d


@pytest.fixture
def make():
    def _make(**over):
        return scenario_from_dict(small(**over))
    return _make


def timeline_energy_j(res, nodes) -> tuple[float, float]:
    """(GPU J, host J) of ``nodes``: the integral of the ledger's node timelines, interval by
    interval (an independent path from the ledger's window sums)."""
    gpu_j = host_j = 0.0
    for node in nodes:
        tl = res.ledger.node_timeline(node)
        dt = (tl["t_end_s"] - tl["t_start_s"]).to_numpy()
        gpu_j += float((tl["gpu_power_w"].to_numpy() * dt).sum())
        host_j += float((tl["host_power_w"].to_numpy() * dt).sum())
    return gpu_j, host_j


def assert_refused_in_one_line(d: dict, field: str) -> None:
    """Loading scenario ``d`` fails with one line that names ``field``."""
    from simulator.errors import ScenarioError

    with pytest.raises(ScenarioError) as e:
        scenario_from_dict(d)
    assert field in str(e.value) and "\n" not in str(e.value)
