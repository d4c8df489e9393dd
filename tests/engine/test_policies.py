"""Unit tests of the small swappable policies, with hand-computed answers: the FCFS batching
plan, the KV-cache formulas, every router, water-filling of caps and the capping policies."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.capping.controller import ReplicaView, prefill_first, priority, uniform, water_fill
from simulator.engine.kvcache import KVCache
from simulator.engine.request import Request
from simulator.engine.router import ROUTERS, SCAN_MAX, LeastLoaded, _scan
from simulator.engine.scheduler import SCHEDULERS, BatchLimits, fcfs


def req(rid: int, prompt: int, prefilled: int = 0) -> Request:
    r = Request(rid, 0, 0.0, prompt, 10)
    r.prefilled_tokens = prefilled
    return r


# ------------------------------------------------------------------ KV cache
def test_kv_formulas_hand_computed():
    kv = KVCache(capacity_tokens=1000, block_tokens=16)
    assert kv.slack_tokens == 15
    assert kv.held_tokens(100, 4) == 100 + 4 * 15
    assert kv.free_tokens(100, 4) == 1000 - 160
    # 840 free tokens, 3 decoders: 280 more steps fit after this one -> 281
    assert kv.decode_steps(100, 4, 3) == 281
    assert kv.decode_steps(1000, 1, 1) == 0  # over-committed: someone must go
    assert kv.admit_limit_tokens == pytest.approx(990.0)


# ------------------------------------------------------------------ FCFS batching plan
LIM = BatchLimits(max_batch_size=4, max_batched_tokens=100, chunk_tokens=100, chunked_prefill=True)


def test_fcfs_fills_the_token_budget_in_arrival_order():
    kv = KVCache(10_000, 16)
    running = [req(0, 300, prefilled=250)]          # 50 tokens left of its prompt
    waiting = deque([req(1, 40), req(2, 200), req(3, 5)])
    lim = BatchLimits(max_batch_size=8, max_batched_tokens=100, chunk_tokens=100,
                      chunked_prefill=True)
    plan = fcfs(lim, kv, waiting, running, n_decode=2, kv_used_tokens=500)
    # budget 100 - 2 decodes = 98: 50 for the in-flight prompt, 40 for r1, 8 for r2's first chunk
    assert [(r.rid, c) for r, c in plan.chunks] == [(0, 50), (1, 40), (2, 8)]
    assert [r.rid for r in plan.admitted] == [1, 2]
    assert plan.decode
    # max_batch_size 4: 2 decoding + 1 in prefill leave room for one admission only
    plan = fcfs(LIM, kv, deque([req(1, 40), req(2, 200)]), running, n_decode=2, kv_used_tokens=500)
    assert [r.rid for r in plan.admitted] == [1]


def test_fcfs_stops_at_max_batch_size_and_at_the_kv_watermark():
    kv = KVCache(1000, 16)
    plan = fcfs(LIM, kv, deque([req(1, 10), req(2, 10)]), [], n_decode=3, kv_used_tokens=0)
    assert [r.rid for r in plan.admitted] == [1]  # 3 decoding + 1 = max_batch_size 4
    # admitting 10 tokens needs 10 + 1 + 15 = 26 tokens of the 990 below the watermark:
    # held 919 + 3 x 15 = 964, +26 = 990 fits; one token more does not
    plan = fcfs(LIM, kv, deque([req(1, 10)]), [], n_decode=3, kv_used_tokens=919)
    assert [r.rid for r in plan.admitted] == [1]
    plan = fcfs(LIM, kv, deque([req(1, 10)]), [], n_decode=3, kv_used_tokens=920)
    assert plan.admitted == [] and plan.chunks == [] and plan.decode


def test_without_chunking_a_prefill_iteration_has_no_decodes():
    lim = BatchLimits(max_batch_size=8, max_batched_tokens=100, chunk_tokens=100, chunked_prefill=False)
    plan = fcfs(lim, KVCache(10_000, 16), deque([req(1, 60), req(2, 60)]), [], 2, 0)
    assert [(r.rid, c) for r, c in plan.chunks] == [(1, 60)]  # whole prompts only: r2 waits
    assert plan.decode is False


def test_scheduler_table_names_fcfs():
    assert SCHEDULERS["fcfs"] is fcfs


@given(prompts=st.lists(st.integers(1, 300), min_size=1, max_size=8),
       prefilled=st.lists(st.integers(0, 299), min_size=0, max_size=3),
       budget=st.integers(1, 400), n_decode=st.integers(0, 6), chunked=st.booleans())
@settings(max_examples=200, deadline=None)
def test_fcfs_plan_sums_are_those_of_its_chunks(prompts, prefilled, budget, n_decode, chunked):
    """fcfs writes Plan.add out for speed: its sums must be what Plan.add gives for the
    same chunks (the iteration's shape), in the same order (floating-point sums too)."""
    running = [req(100 + i, 300, prefilled=p) for i, p in enumerate(prefilled)]
    waiting = deque(req(i, p) for i, p in enumerate(prompts))
    lim = BatchLimits(max_batch_size=16, max_batched_tokens=budget + n_decode,
                      chunk_tokens=budget, chunked_prefill=chunked)
    plan = fcfs(lim, KVCache(100_000, 16), waiting, running, n_decode, 1000)
    ref = type(plan)()
    for r, c in plan.chunks:
        ref.add(r, c)
    assert (plan.tokens, plan.pairs, plan.prefix, plan.finishing) == \
        (ref.tokens, ref.pairs, ref.prefix, ref.finishing)
    assert plan.tokens == sum(c for _, c in plan.chunks)


# ------------------------------------------------------------------ routers
def loads(*pairs):
    return [SimpleNamespace(outstanding=o, outstanding_tokens=t) for o, t in pairs]


def test_round_robin_cycles():
    route = ROUTERS["round_robin"](3, np.random.default_rng(0))
    reps = loads((0, 0), (0, 0), (0, 0))
    assert [route(reps, 10) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_least_outstanding_picks_fewest_requests_lowest_index_on_ties():
    route = ROUTERS["least_outstanding"](4, np.random.default_rng(0))
    assert route(loads((3, 1), (1, 900), (2, 0), (1, 5)), 10) == 1


def test_jsq_tokens_picks_fewest_tokens():
    route = ROUTERS["jsq_tokens"](4, np.random.default_rng(0))
    assert route(loads((3, 100), (1, 900), (2, 50), (1, 50)), 10) == 2


@pytest.mark.parametrize("policy", ["least_outstanding", "jsq_tokens"])
@given(n=st.integers(SCAN_MAX + 1, 40), seed=st.integers(0, 2**32 - 1),
       steps=st.integers(1, 400))
@settings(max_examples=60, deadline=None)
def test_heap_router_chooses_what_the_scan_chooses(policy, n, seed, steps):
    """Above SCAN_MAX replicas the least-loaded routers keep a heap updated by moved(); after
    any sequence of load changes (submits and finishes, as the replicas report them) it must
    choose exactly the replica the reference scan over every replica chooses."""
    rng = np.random.default_rng(seed)
    heap_route = ROUTERS[policy](n, rng)
    assert isinstance(heap_route, LeastLoaded)
    scan = _scan("outstanding" if policy == "least_outstanding" else "outstanding_tokens")
    reps = loads(*[(0, 0)] * n)
    for _ in range(steps):
        i = int(rng.integers(n))
        r = reps[i]
        if r.outstanding and rng.random() < 0.45:  # a finish
            r.outstanding -= 1
            r.outstanding_tokens -= int(rng.integers(0, r.outstanding_tokens + 1))
        else:  # a submit, sometimes to the chosen replica as a run does
            if rng.random() < 0.7:
                i = heap_route(reps, 10)
                assert i == scan(reps, 10)
                r = reps[i]
            r.outstanding += 1
            r.outstanding_tokens += int(rng.integers(1, 1000))
        heap_route.moved(i, r.outstanding, r.outstanding_tokens)
        assert heap_route(reps, 10) == scan(reps, 10)
    assert len(heap_route.heap) <= 4 * n + 64


def test_small_fleets_scan_and_large_ones_keep_a_heap():
    assert not hasattr(ROUTERS["least_outstanding"](SCAN_MAX, np.random.default_rng(0)), "moved")
    assert hasattr(ROUTERS["least_outstanding"](SCAN_MAX + 1, np.random.default_rng(0)), "moved")


# ------------------------------------------------------------------ capping
def test_water_fill_hand_computed():
    caps = {0: 700.0, 1: 700.0, 2: 700.0}
    tp = {0: 1, 1: 1, 2: 2}
    # total 4 GPUs x 700 = 2800; 2000 available -> one level L: 4 L = 2000 -> 500
    new = water_fill(caps, tp, [[0, 1, 2]], 2000.0, 200.0, 25.0)
    assert new == {0: 500.0, 1: 500.0, 2: 500.0}
    # the first group goes down to its floor before the second is touched
    new = water_fill(caps, tp, [[0], [1, 2]], 1700.0, 200.0, 25.0)
    assert new[0] == 200.0 and new[1] == new[2] == 500.0
    # levels are floored to the step grid, so the result never exceeds what is available
    new = water_fill(caps, tp, [[0, 1, 2]], 2010.0, 200.0, 25.0)
    assert sum(tp[i] * c for i, c in new.items()) <= 2010.0 and new[0] == 500.0


@given(st.lists(st.floats(200, 700), min_size=1, max_size=6), st.floats(0, 5000))
@settings(max_examples=100, deadline=None)
def test_water_fill_never_raises_a_cap_and_meets_a_feasible_budget(levels, avail):
    caps = dict(enumerate(levels))
    tp = {i: 1 + i % 3 for i in caps}
    new = water_fill(caps, tp, [list(caps)], avail, 200.0, 25.0)
    assert all(new[i] <= caps[i] for i in caps)
    if sum(tp[i] * 200.0 for i in caps) <= avail:
        assert sum(tp[i] * c for i, c in new.items()) <= avail + 1e-6


def views():
    return [ReplicaView(0, 0, 8, 700.0, 3000.0, 0, 1.0),
            ReplicaView(1, 0, 8, 700.0, 5000.0, 4096, 0.0),
            ReplicaView(2, 1, 8, 700.0, 4000.0, 512, 2.0),
            ReplicaView(3, 1, 8, 700.0, 1000.0, 0, float("-inf"))]


def test_capping_policies_order_who_is_capped_first():
    assert uniform(views()) == [[0, 1, 2, 3]]
    # prefill_first: replicas with prompts to prefill, most prefill tokens first
    assert prefill_first(views()) == [[1, 2], [0, 3]]
    # priority: lowest class priority first (idle replicas, -inf, before everyone)
    assert priority(views()) == [[3], [1], [0], [2]]
