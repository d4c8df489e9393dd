"""Engine tests: invariants, coalesced == stepped, energy ledger, queueing sanity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.api import simulate
from simulator.errors import ScenarioError
from simulator.scenario.load import scenario_from_dict
from tests.conftest import small, timeline_energy_j

TIMING_COLS = ["arrival_s", "queue_s", "ttft_s", "e2e_s", "finish_s", "energy_j"]


def run(d):
    return simulate(scenario_from_dict(d))


def assert_conserved(res):
    """Every generated request is in the table once and ended as the engine says it did.

    Checked against what the engine holds, not only against the summary's own buckets: the
    request ids are 0..n-1, a dropped request is exactly one too long for max_model_len, a
    completed one has all its tokens, and after a drain no replica holds any work."""
    s, df, sc = res.summary, res.requests, res.scenario
    assert s["requests_completed"] + s["requests_dropped"] + s["requests_in_flight"] == s["requests_arrived"]
    assert (df["request_id"].to_numpy() == np.arange(len(df))).all()
    if sc.simulation.requests is not None and sc.workload.arrival != "closed_loop":
        assert len(df) <= sc.simulation.requests
    too_long = (df["input_tokens"] + df["output_tokens"]).to_numpy() > min(
        p.serving.max_model_len for p in sc.pool_specs())
    assert ((df["state"] == "dropped").to_numpy() == too_long).all()
    done = df[df["state"] == "completed"]
    assert (done["finish_s"] >= done["arrival_s"]).all() and done["ttft_s"].notna().all()
    assert ((df["state"] == "in_flight").sum() == 0) or not sc.simulation.drain
    if sc.simulation.drain:
        for r in res.fleet.replicas:
            assert (r.outstanding, r.n_dec, r.kv_reserved, r.ctx_sum) == (0, 0, 0, 0)
            assert not r.waiting and not r.prefilling and not r.busy
    else:  # the replicas' own counts of requests they hold
        held = sum(r.outstanding for r in res.fleet.replicas)
        assert held == s["requests_in_flight"]


# ---------------------------------------------------------------- coalesced == stepped
CASES = {
    "chunked": {},
    "no_chunking": {"serving__chunked_prefill": False, "serving__max_batched_tokens": 32768},
    "small_chunks": {"serving__chunk_size_tokens": 128},
    "preemption": {"serving__gpu_memory_fraction": 0.22, "deployment__tp": 1,
                   "workload__rate_per_s": 40.0, "serving__max_model_len": 4096},
    "capped": {"deployment__gpu_cap_w": 200.0},
    "jsq_tokens": {"router__policy": "jsq_tokens", "deployment__tp": 4},
    "closed_loop": {"workload__arrival": "closed_loop", "workload__clients": 24,
                    "workload__rate_per_s": None},
}


@pytest.mark.parametrize("case", list(CASES))
def test_coalesced_engine_equals_stepping(case):
    d = small(**CASES[case])
    d["simulation"]["requests"] = 250
    co = run(d)
    d["simulation"]["engine"] = "stepped"
    st_ = run(d)
    a, b = co.requests, st_.requests
    assert list(a["state"]) == list(b["state"])
    assert (a["preemptions"].to_numpy() == b["preemptions"].to_numpy()).all()
    for col in TIMING_COLS:
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=col)
    for key in ("energy_gpu_j", "energy_host_j", "itl_s_p50", "itl_s_p99", "mean_batch_size"):
        assert co.summary[key] == pytest.approx(st_.summary[key], rel=1e-9), key
    if case == "preemption":
        assert co.summary["preemptions"] > 0  # the case really exercises preemption


# ---------------------------------------------------------------- invariants
def test_every_request_completed_dropped_or_in_flight():
    d = small()
    d["simulation"] = {"duration_s": 10.0, "drain": False, "seed": 1}
    res = run(d)
    assert_conserved(res)
    assert res.summary["requests_in_flight"] > 0  # stopped mid-flight
    d["simulation"]["drain"] = True
    res = run(d)
    assert_conserved(res)
    assert res.summary["requests_in_flight"] == 0


def test_too_long_requests_are_dropped_and_counted():
    d = small(serving__max_model_len=700)
    res = run(d)
    assert_conserved(res)
    assert res.summary["requests_dropped"] > 0
    assert res.summary["requests_completed"] > 0


def test_energy_equals_integral_of_power():
    res = run(small(deployment__nodes=2))
    s = res.summary
    gpu_j, host_j = timeline_energy_j(res, range(2))
    for node in range(2):
        tl = res.ledger.node_timeline(node)
        assert tl["t_start_s"].iloc[0] == 0.0 and tl["t_end_s"].iloc[-1] == pytest.approx(res.end_s)
    assert gpu_j == pytest.approx(s["energy_gpu_j"], rel=1e-9)
    assert host_j == pytest.approx(s["energy_host_j"], rel=1e-9)
    assert s["energy_facility_j"] == pytest.approx(s["energy_it_j"] * 1.2, rel=1e-12)


def test_request_energy_plus_idle_is_the_ledger():
    res = run(small())
    s = res.summary
    attributed = res.requests["energy_j"].sum()
    busy_gpu = s["energy_gpu_prefill_j"] + s["energy_gpu_decode_j"]
    host_busy = s["energy_host_j"] - res.fleet.pools[0].host.idle_w * res.end_s
    assert attributed == pytest.approx(busy_gpu + host_busy, rel=1e-9)
    assert s["energy_gpu_j"] == pytest.approx(busy_gpu + s["energy_gpu_idle_j"], rel=1e-12)


def test_idle_fleet_draws_idle_power():
    d = small(workload__rate_per_s=0.05)
    d["simulation"] = {"requests": 3, "seed": 0}
    res = run(d)
    idle_w = res.fleet.pools[0].idle_w
    assert res.summary["energy_gpu_idle_j"] > 0.9 * idle_w * 8 * res.end_s


@given(r1=st.floats(2.0, 30.0), r2=st.floats(2.0, 30.0))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_higher_arrival_rate_never_lowers_total_energy(r1, r2):
    lo, hi = sorted((r1, r2))
    out = []
    for rate in (lo, hi):
        d = small(workload__rate_per_s=rate)
        d["simulation"] = {"duration_s": 20.0, "drain": False, "seed": 5}
        out.append(run(d).summary["energy_it_j"])
    assert out[1] >= out[0] * (1 - 1e-12)


def test_littles_law_at_steady_state():
    """L = lambda W for the requests in service, with L and W from independent bookkeeping:
    L from the replicas' recorded batch sizes (sequences per iteration, time-weighted), W from
    the requests' own timestamps (first scheduled to finish)."""
    d = small(workload__rate_per_s=15.0)
    d["simulation"] = {"requests": 3000, "warmup_requests": 300, "seed": 11}
    res = run(d)
    assert res.summary["preemptions"] == 0  # a preempted request leaves service and returns
    df = res.requests
    w0, w1 = res.window_s
    win = res.ledger.window(w0, w1)
    L = win.batch_s / (w1 - w0)  # mean sequences in service, summed over replicas
    inwin = df[(df["arrival_s"] >= w0) & (df["arrival_s"] < w1)]
    lam = len(inwin) / (w1 - w0)
    W = (inwin["e2e_s"] - inwin["queue_s"]).mean()
    assert L == pytest.approx(lam * W, rel=0.05)


def test_deterministic_for_a_seed():
    a, b = run(small()), run(small())
    assert a.requests.equals(b.requests)
    # JSON text: equal floats print equal and NaN prints as NaN, so NaN cannot hide a difference
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)


def test_seed_changes_results():
    a = run(small())
    b = run(small(simulation__seed=4))
    assert not np.allclose(a.requests["arrival_s"], b.requests["arrival_s"])


def test_round_robin_spreads_evenly():
    res = run(small(router__policy="round_robin"))
    counts = res.requests["replica"].value_counts()
    assert counts.max() - counts.min() <= 1


def test_latency_grows_with_load():
    lo = run(small(workload__rate_per_s=5.0)).summary
    hi = run(small(workload__rate_per_s=60.0)).summary
    assert hi["tpot_s_p50"] > lo["tpot_s_p50"]
    assert hi["mean_batch_size"] > lo["mean_batch_size"]


def test_timings_are_causal():
    df = run(small()).requests
    done = df[df["state"] == "completed"]
    assert (done["queue_s"] >= 0).all()
    assert (done["ttft_s"] >= done["queue_s"]).all()
    assert (done["e2e_s"] >= done["ttft_s"]).all()
    assert (done["energy_j"] > 0).all()


def test_405b_bf16_tp8_rejected_fp8_accepted():
    from simulator.engine.fleet import check_memory

    d = small(model="Llama-3.1-405B", deployment__tp=8)
    with pytest.raises(ScenarioError, match="does not fit"):
        check_memory(scenario_from_dict(d))
    d["deployment"]["precision"] = "fp8"
    check_memory(scenario_from_dict(d))


@st.composite
def scenarios(draw):
    d = small(
        model=draw(st.sampled_from(["Llama-3.1-8B", "Qwen3-8B", "Llama-2-7B"])),
        deployment__tp=draw(st.sampled_from([1, 2, 4, 8])),
        serving__max_batch_size=draw(st.integers(1, 64)),
        serving__chunk_size_tokens=draw(st.integers(16, 2048)),
        serving__max_model_len=4096,
        workload__rate_per_s=draw(st.floats(0.5, 50.0)),
        router__policy=draw(st.sampled_from(["round_robin", "least_outstanding", "jsq_tokens"])),
    )
    d["workload"]["classes"]["chat"]["input_tokens"] = {"dist": "uniform", "low": 1, "high": 3000}
    d["workload"]["classes"]["chat"]["output_tokens"] = {"dist": "uniform", "low": 1, "high": 600}
    d["simulation"] = {"requests": draw(st.integers(1, 60)), "seed": draw(st.integers(0, 99))}
    return d


@given(d=scenarios())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_small_scenarios_keep_invariants(d):
    res = run(d)
    assert_conserved(res)
    s = res.summary
    assert s["requests_in_flight"] == 0
    df = res.requests
    done = df[df["state"] == "completed"]
    assert (done["e2e_s"] >= done["ttft_s"] - 1e-12).all()
    assert s["energy_gpu_j"] >= res.fleet.pools[0].idle_w * 8 * res.end_s * (1 - 1e-9)
    host = res.fleet.pools[0].host
    assert s["node_power_w_peak"] <= 8 * 700 + host.node_w(8 * 700) + 1e-6
    assert s["node_power_w_peak"] <= host.rated_w + 1e-6
