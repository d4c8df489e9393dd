"""The analytical estimate (issue 18): close to the simulator where its steady state holds,
deterministic, consistent with queueing limits, and reachable from the CLI and sweeps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.api import simulate
from simulator.estimate import estimate
from simulator.estimate.model import busy_share, lengths
from simulator.estimate.validate import saturated, steady, steady_energy_wh, window_throughput
from simulator.scenario.load import scenario_from_dict
from tests.conftest import CHAT, small


def test_estimate_is_within_ten_percent_of_the_simulator_at_steady_state():
    """Energy per query at 60 % load and capacity (a closed loop keeping batches full) of a
    small deployment, against the simulator's steady state (docs/estimate.md has the bundled
    scenarios)."""
    sc = scenario_from_dict(small(deployment__nodes=1, deployment__tp=4,
                                  serving__max_batch_size=64))
    cap = estimate(sc).capacity_requests_per_s
    run_sc = steady(sc, 0.6 * cap, 4000)
    est = estimate(run_sc)
    sim = simulate(run_sc)
    assert est.energy_per_query_wh_mean == pytest.approx(steady_energy_wh(sim), rel=0.10)
    assert est.mean_batch_size == pytest.approx(sim.summary["mean_batch_size"], rel=0.15)
    assert cap == pytest.approx(window_throughput(simulate(saturated(sc, 3000))), rel=0.10)


def test_estimate_is_deterministic_and_reports_load():
    sc = scenario_from_dict(small())
    a, b = estimate(sc).as_dict(), estimate(sc).as_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["load"] == pytest.approx(a["offered_requests_per_s"] / a["capacity_requests_per_s"])
    assert not a["saturated"] and a["served_requests_per_s"] == pytest.approx(20.0)


def test_more_load_means_bigger_batches_and_less_energy_per_query_until_capacity():
    base = small(deployment__nodes=1, deployment__tp=4)
    cap = estimate(scenario_from_dict(base)).capacity_requests_per_s
    prev = None
    for frac in (0.1, 0.3, 0.6, 0.9):
        e = estimate(scenario_from_dict(small(deployment__nodes=1, deployment__tp=4,
                                              workload__rate_per_s=frac * cap)))
        if prev is not None:
            assert e.mean_batch_size > prev.mean_batch_size
            assert e.energy_per_query_wh_mean < prev.energy_per_query_wh_mean
            assert e.tpot_s >= prev.tpot_s
        prev = e
    over = estimate(scenario_from_dict(small(deployment__nodes=1, deployment__tp=4,
                                             workload__rate_per_s=2 * cap)))
    assert over.saturated and over.served_requests_per_s == pytest.approx(cap, rel=1e-6)


def test_a_power_cap_lowers_capacity_and_gpu_power():
    free = estimate(scenario_from_dict(small(deployment__tp=4)))
    capped = estimate(scenario_from_dict(small(deployment__tp=4, deployment__gpu_cap_w=250.0)))
    assert capped.capacity_requests_per_s < free.capacity_requests_per_s
    assert capped.gpu_power_w_mean < free.gpu_power_w_mean


def test_lengths_drop_what_does_not_fit_as_the_engine_does():
    sc = scenario_from_dict(small())
    full = lengths(sc, 100_000)
    cut = lengths(sc, 700)  # 500-token prompts: outputs above 200 tokens are dropped
    assert full.served == 1.0 and 0.0 < cut.served < 1.0
    assert cut.mean_out < full.mean_out and cut.mean_in == full.mean_in == 500.0


@given(m=st.floats(0.0, 400.0), r=st.integers(1, 64))
@settings(max_examples=200, deadline=None)
def test_busy_share_is_the_expected_share_of_busy_replicas(m, r):
    """E[min(N, R)] / R for Poisson N: hand-checked limits and a direct sum."""
    got = busy_share(m, r)
    assert 0.0 <= got <= 1.0
    if r == 1:
        assert got == pytest.approx(-math.expm1(-m), abs=1e-12)
    n = np.arange(0, int(m + 40 * math.sqrt(m + 1) + 50))
    logp = n * math.log(m) - m - np.array([math.lgamma(k + 1) for k in n]) if m > 0 else None
    ref = float((np.minimum(n, r) * np.exp(logp)).sum()) / r if m > 0 else 0.0
    assert got == pytest.approx(ref, abs=1e-9)


def test_fleetsim_estimate_and_sweep_estimate(tmp_path):
    from simulator.cli import main

    out = CliRunner().invoke(main, ["estimate", "scenarios/default.yaml", "--json"])
    assert out.exit_code == 0, out.output
    e = json.loads(out.output)
    assert e["capacity_requests_per_s"] > e["offered_requests_per_s"] > 0
    text = CliRunner().invoke(main, ["estimate", "scenarios/default.yaml"])
    assert text.exit_code == 0 and "capacity" in text.output and "/query" in text.output
    sw = CliRunner().invoke(main, ["sweep", "scenarios/default.yaml", "-o", str(tmp_path / "sw"),
                                   "--estimate", "--grid", "workload.rate_per_s=2,4,8",
                                   "--workers", "1", "--quiet"])
    assert sw.exit_code == 0, sw.output
    import pandas as pd

    t = pd.read_parquet(tmp_path / "sw" / "results.parquet")
    assert len(t) == 3 and t["energy_per_query_wh_mean"].is_monotonic_decreasing


def test_a_cache_kept_across_a_sweeps_points_changes_no_result_and_keeps_nothing_stale():
    """One EstimateCache over points that differ in rate, cap, output length, seed and
    max_model_len gives each point what a fresh estimate gives; points that differ only in
    output length (or seed) do not share their lengths."""
    from simulator.estimate.model import EstimateCache

    def chat(median: float) -> dict:
        return {"chat": {**CHAT, "output_tokens": {"dist": "exponential", "median": median}}}

    points = [small(), small(workload__rate_per_s=5.0), small(workload__classes=chat(900.0)),
              small(workload__classes=chat(900.0), workload__rate_per_s=5.0),
              small(deployment__gpu_cap_w=300.0), small(simulation__seed=4),
              small(serving__max_model_len=700), small()]
    cache = EstimateCache(entries=3)  # small: entries are evicted and built again
    for d in points:
        sc = scenario_from_dict(d)
        assert estimate(sc, cache).as_dict() == estimate(sc).as_dict()
    short = estimate(scenario_from_dict(points[0]), cache)
    long = estimate(scenario_from_dict(points[2]), cache)
    assert long.mean_batch_size > 2 * short.mean_batch_size
    assert (estimate(scenario_from_dict(points[5]), cache).energy_per_query_wh_mean
            != short.energy_per_query_wh_mean)  # another seed, another length sample


def test_sweep_estimate_on_workers_matches_one_process(tmp_path):
    """The chunked worker path of ``fleetsim sweep --estimate`` (a cache per chunk: 15 points
    on 2 workers go in chunks of 2) writes the points a single process writes."""
    import pandas as pd

    from simulator.cli import main

    tables = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        sw = CliRunner().invoke(main, ["sweep", "scenarios/default.yaml", "-o", str(out),
                                       "--estimate", "--grid", "workload.rate_per_s=1,2,4,8,16",
                                       "--grid", "deployment.gpu_cap_w=400,500,700",
                                       "--workers", workers, "--quiet"])
        assert sw.exit_code == 0, sw.output
        tables.append(pd.read_parquet(out / "results.parquet"))  # in the points' order
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
