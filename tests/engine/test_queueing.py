"""Analytic queueing checks of the engine.

A replica that serves one request at a time (``max_batch_size: 1``) whose requests all have
the same prompt and output length has a deterministic service time S (one prefill iteration,
then output - 1 decode iterations whose contexts are the same for every request). Under Poisson
arrivals it is an M/D/1 queue: the mean wait before service is ``rho S / (2 (1 - rho))``
(Pollaczek-Khinchine with zero service variance). The simulated mean wait must agree within its
own statistical error (batch means), which a wrong admission, a lost wake-up or a mis-timed
coalesced jump would break.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.api import simulate
from simulator.scenario.load import scenario_from_dict


def md1(rate_per_s: float, requests: int, seed: int = 7) -> dict:
    return {
        "name": "md1", "model": "Llama-3.1-8B",
        "deployment": {"nodes": 1, "tp": 8, "replicas_per_node": 1},
        "serving": {"max_batch_size": 1, "max_batched_tokens": 2048, "max_model_len": 4096},
        "workload": {"arrival": "poisson", "rate_per_s": rate_per_s, "classes": {"q": {
            "input_tokens": {"dist": "fixed", "value": 200},
            "output_tokens": {"dist": "fixed", "value": 20}}}},
        "simulation": {"requests": requests, "warmup_requests": requests // 20, "seed": seed},
    }


def service_time_s() -> float:
    res = simulate(scenario_from_dict(md1(0.01, 3)))
    d = res.requests
    return float((d["e2e_s"] - d["queue_s"]).iloc[0])


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_single_server_is_md1(rho):
    s = service_time_s()
    res = simulate(scenario_from_dict(md1(rho / s, 30_000)))
    d = res.requests[~res.requests["warmup"]]
    service = (d["e2e_s"] - d["queue_s"]).to_numpy()
    assert np.allclose(service, s, rtol=1e-9)  # deterministic service, as M/D/1 needs
    wait = d["queue_s"].to_numpy()
    expected = rho * s / (2 * (1 - rho))
    batches = wait[: len(wait) // 20 * 20].reshape(20, -1).mean(axis=1)
    se = batches.std(ddof=1) / np.sqrt(len(batches))
    assert abs(wait.mean() - expected) <= 4 * se, (wait.mean(), expected, se)
    assert wait.mean() == pytest.approx(expected, rel=0.15)
