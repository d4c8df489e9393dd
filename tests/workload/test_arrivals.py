"""Arrival processes: rates and CVs within confidence intervals, mix, determinism, replay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import ScenarioError
from simulator.workload.arrivals import ArrivalBlock, Workload
from simulator.workload.spec import WorkloadSpec
from simulator.workload.trace import load_azure_trace

DATA = Path(__file__).parent / "data"
TRACE = "azure_conv_head.csv"
Z = 5.0


def workload(seed: int = 1, **spec) -> Workload:
    return Workload(WorkloadSpec.model_validate(spec), seed, DATA)


def collect(blocks) -> ArrivalBlock:
    blocks = list(blocks)
    for b in blocks:
        assert isinstance(b, ArrivalBlock)
    if not blocks:
        return ArrivalBlock(np.empty(0), np.empty(0, np.int32), np.empty(0, np.int64),
                            np.empty(0, np.int64))
    return ArrivalBlock(*(np.concatenate([getattr(b, f) for b in blocks])
                          for f in ("t_s", "class_idx", "input_tokens", "output_tokens")))


def check_invariants(a: ArrivalBlock, n_classes: int, end_s: float = math.inf) -> None:
    assert a.t_s.dtype == np.float64 and a.class_idx.dtype == np.int32
    assert a.input_tokens.dtype == np.int64 and a.output_tokens.dtype == np.int64
    assert len(a.class_idx) == len(a.input_tokens) == len(a.output_tokens) == len(a.t_s)
    assert (np.diff(a.t_s) >= 0).all()
    if len(a):
        assert a.t_s[0] >= 0 and a.t_s[-1] < end_s
        assert a.input_tokens.min() >= 1 and a.output_tokens.min() >= 1
        assert 0 <= a.class_idx.min() and a.class_idx.max() < n_classes


def cv(x: np.ndarray) -> float:
    return float(x.std() / x.mean())


# ---------------------------------------------------------------- open loop rates
def test_poisson_rate_and_cv():
    rate, end = 50.0, 4000.0
    a = collect(workload(rate_per_s=rate).open_blocks(end_s=end))
    check_invariants(a, 1, end)
    expected = rate * end
    assert abs(len(a) - expected) <= Z * math.sqrt(expected)
    assert cv(np.diff(a.t_s)) == pytest.approx(1.0, abs=0.02)


def test_gamma_cv():
    a = collect(workload(arrival="gamma", rate_per_s=100.0, cv=2.0).open_blocks(max_requests=200_000))
    gaps = np.diff(a.t_s)
    assert cv(gaps) == pytest.approx(2.0, rel=0.1)
    assert 1 / gaps.mean() == pytest.approx(100.0, rel=0.05)


def test_gamma_cv_one_is_poisson_like():
    a = collect(workload(arrival="gamma", rate_per_s=10.0, cv=1.0).open_blocks(max_requests=100_000))
    assert cv(np.diff(a.t_s)) == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("arrival", ["poisson", "gamma"])
def test_hourly_thinning_follows_multipliers(arrival):
    mult = [0.0, 0.5, 1.0, 2.0, 4.0, 1.0] * 4
    rate = 2.0
    a = collect(workload(arrival=arrival, cv=1.5, rate_per_s=rate, hourly_multipliers=mult,
                         start_hour=1).open_blocks(end_s=24 * 3600.0))
    hour = (np.floor(1 + a.t_s / 3600).astype(int)) % 24
    counts = np.bincount(hour, minlength=24)
    expected = rate * 3600 * np.array(mult)
    assert counts[0] == 0 and counts[6] == 0  # multiplier 0: no arrivals at all
    spread = Z * np.sqrt(expected) * (1.5 if arrival == "gamma" else 1.0)
    assert (np.abs(counts - expected) <= spread + 1).all(), (counts, expected)


def test_mean_rate():
    assert workload(rate_per_s=3.0).mean_rate_per_s() == 3.0
    w = workload(rate_per_s=3.0, hourly_multipliers=[0.0] * 12 + [2.0] * 12)
    assert w.mean_rate_per_s() == pytest.approx(3.0)


# ---------------------------------------------------------------- truncation / invariants
@settings(max_examples=25, deadline=None)
@given(
    end_s=st.floats(0.0, 300.0),
    max_requests=st.none() | st.integers(0, 3000),
    block_size=st.integers(1, 5000),
    arrival=st.sampled_from(["poisson", "gamma"]),
)
def test_blocks_truncate_exactly(end_s, max_requests, block_size, arrival):
    w = workload(arrival=arrival, cv=0.5, rate_per_s=10.0, classes={"a": {}, "b": {}},
                 mix={"a": 0.5, "b": 0.5})
    blocks = list(w.open_blocks(end_s=end_s, max_requests=max_requests, block_size=block_size))
    assert all(len(b) == block_size for b in blocks[:-1])
    assert all(0 < len(b) <= block_size for b in blocks)
    a = collect(blocks)
    check_invariants(a, 2, end_s)
    # compare with the untruncated stream: a prefix, cut exactly
    full = collect(w.open_blocks(end_s=end_s + 1e-9 if end_s > 0 else 0.0))
    n_before_end = int((full.t_s < end_s).sum())
    assert len(a) == (n_before_end if max_requests is None else min(n_before_end, max_requests))
    assert (a.t_s == full.t_s[: len(a)]).all()


def test_max_requests_without_end():
    a = collect(workload(rate_per_s=1.0).open_blocks(max_requests=12345, block_size=1000))
    assert len(a) == 12345


# ---------------------------------------------------------------- mix
def test_mix_shares_respected():
    w = workload(rate_per_s=100.0, classes={"chat": {}, "code": {}, "rag": {}, "idle": {}},
                 mix={"chat": 0.5, "code": 0.2, "rag": "rest"})
    assert w.shares.tolist() == pytest.approx([0.5, 0.2, 0.3, 0.0])
    a = collect(w.open_blocks(max_requests=100_000))
    counts = np.bincount(a.class_idx, minlength=4)
    assert counts[3] == 0
    for k, p in enumerate([0.5, 0.2, 0.3]):
        assert abs(counts[k] - p * len(a)) <= Z * math.sqrt(len(a) * p * (1 - p))


def test_class_lengths_follow_class_specs():
    w = workload(rate_per_s=10.0, classes={
        "short": {"input_tokens": {"dist": "fixed", "value": 10}, "output_tokens": {"dist": "fixed", "value": 1}},
        "long": {"input_tokens": {"dist": "fixed", "value": 9000}, "output_tokens": {"dist": "fixed", "value": 900}},
    }, mix={"short": 0.25, "long": 0.75})
    a = collect(w.open_blocks(max_requests=1000))
    assert (a.input_tokens == np.where(a.class_idx == 0, 10, 9000)).all()
    assert (a.output_tokens == np.where(a.class_idx == 0, 1, 900)).all()
    assert w.mean_input_tokens() == pytest.approx(0.25 * 10 + 0.75 * 9000)
    assert w.mean_output_tokens() == pytest.approx(0.25 * 1 + 0.75 * 900)


# ---------------------------------------------------------------- determinism
CHAT = {"input_tokens": {"dist": "lognormal", "median": 800, "sigma": 1.0},
        "output_tokens": {"dist": "exponential", "median": 200}}


@pytest.mark.parametrize("arrival", ["poisson", "gamma"])
def test_same_seed_same_blocks_any_block_size(arrival):
    spec = dict(arrival=arrival, cv=1.7, rate_per_s=20.0, hourly_multipliers=[1.0, 0.2] * 12,
                classes={"chat": CHAT, "code": {}}, mix={"chat": 0.6, "code": 0.4})
    big = collect(workload(7, **spec).open_blocks(end_s=3 * 3600.0, block_size=8192))
    small = collect(workload(7, **spec).open_blocks(end_s=3 * 3600.0, block_size=100))
    again = collect(workload(7, **spec).open_blocks(end_s=3 * 3600.0, block_size=8192))
    other = collect(workload(8, **spec).open_blocks(end_s=3 * 3600.0))
    for f in ("t_s", "class_idx", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(big, f), getattr(small, f))
        assert np.array_equal(getattr(big, f), getattr(again, f))
    assert not np.array_equal(big.t_s[:100], other.t_s[:100])


def test_seed_sequence_accepted_and_open_blocks_restarts():
    ss = np.random.SeedSequence(11, spawn_key=(1,))
    w = Workload(WorkloadSpec(rate_per_s=5.0), ss)
    a = collect(w.open_blocks(max_requests=500))
    b = collect(w.open_blocks(max_requests=500))
    assert np.array_equal(a.t_s, b.t_s) and np.array_equal(a.output_tokens, b.output_tokens)


def test_adding_a_class_keeps_other_class_lengths():
    one = workload(3, rate_per_s=10.0, classes={"chat": CHAT})
    two = workload(3, rate_per_s=10.0, classes={"chat": CHAT, "code": {}},
                   mix={"code": 0.5, "chat": 0.5})
    a = collect(one.open_blocks(max_requests=4000))
    b = collect(two.open_blocks(max_requests=4000))
    # arrival times do not depend on the classes at all
    assert np.array_equal(a.t_s, b.t_s)
    # the j-th chat request gets the j-th draw of chat's streams in both workloads
    chat_b = b.class_idx == 0
    n = int(chat_b.sum())
    assert 1500 < n < 2500
    assert np.array_equal(a.input_tokens[:n], b.input_tokens[chat_b])
    assert np.array_equal(a.output_tokens[:n], b.output_tokens[chat_b])


# ---------------------------------------------------------------- closed loop
def test_closed_loop_sample_requests():
    w = workload(arrival="closed_loop", clients=8, think_time_s=1.5,
                 classes={"chat": CHAT, "code": {}}, mix={"chat": 0.3, "code": 0.7})
    assert w.is_closed_loop and w.clients == 8 and w.think_time_s == 1.5
    assert w.mean_rate_per_s() is None
    c1, i1, o1 = w.sample_requests(30_000)
    c2, _, _ = w.sample_requests(10)
    assert c1.dtype == np.int32 and i1.dtype == np.int64 and o1.min() >= 1
    assert abs((c1 == 0).mean() - 0.3) < Z * math.sqrt(0.21 / 30_000)
    assert (i1[c1 == 1] == 500).all()
    # successive calls continue the sequence; a fresh workload repeats it
    w2 = workload(arrival="closed_loop", clients=8, classes={"chat": CHAT, "code": {}},
                  mix={"chat": 0.3, "code": 0.7})
    c_all, _, _ = w2.sample_requests(30_010)
    assert np.array_equal(np.concatenate([c1, c2]), c_all)
    with pytest.raises(ValueError, match="closed-loop"):
        next(w.open_blocks())


def test_open_loop_attributes():
    w = workload(rate_per_s=1.0, classes={"chat": {"priority": 2, "slo": {"ttft_s": 0.5}}})
    assert w.class_names == ["chat"] and not w.is_closed_loop and w.clients is None
    assert w.priorities == [2] and w.slos[0].ttft_s == 0.5 and w.slos[0].tpot_s == 0.2


# ---------------------------------------------------------------- replay
def replay(**extra) -> Workload:
    return workload(arrival="replay", classes={"conv": {}}, traces={"conv": TRACE}, **extra)


def test_replay_matches_trace():
    df = load_azure_trace(DATA / TRACE)
    w = replay()
    a = collect(w.open_blocks())
    check_invariants(a, 1)
    assert len(a) == 200
    assert np.allclose(a.t_s, df["t_s"].to_numpy())
    assert np.array_equal(a.input_tokens, df["input_tokens"].to_numpy())
    assert np.array_equal(a.output_tokens, np.maximum(df["output_tokens"].to_numpy(), 1))
    assert w.mean_input_tokens() == pytest.approx(df["input_tokens"].mean())
    with pytest.raises(ValueError, match="replay"):
        w.sample_requests(1)


def test_replay_time_scale_halves_span():
    a = collect(replay().open_blocks())
    b = collect(replay(time_scale=2.0).open_blocks())
    assert np.allclose(b.t_s, a.t_s / 2)
    assert b.t_s[-1] - b.t_s[0] == pytest.approx((a.t_s[-1] - a.t_s[0]) / 2)


def test_replay_loop_repeats_and_truncates():
    once = collect(replay().open_blocks())
    span = once.t_s[-1] - once.t_s[0]
    period = span * 200 / 199  # span + one mean gap
    w = replay(loop=True)
    assert w.mean_rate_per_s() == pytest.approx(200 / period)
    a = collect(w.open_blocks(end_s=2.5 * period, block_size=64))
    check_invariants(a, 1, 2.5 * period)
    assert np.allclose(a.t_s[200:400], once.t_s + period)
    assert np.array_equal(a.input_tokens[200:400], once.input_tokens)
    assert 400 < len(a) < 600
    assert len(collect(w.open_blocks(max_requests=1000))) == 1000
    # without loop the trace just ends
    assert len(collect(replay().open_blocks(end_s=1e9))) == 200


def test_replay_share_keeps_trace_rows_at_the_share_of_the_rate():
    """replay_share thins the looped trace request by request: every kept request is a trace
    row (its own time within the period, its own lengths), the rate is share x trace rate,
    and the kept set does not depend on block size."""
    once = collect(replay().open_blocks())
    full = replay(loop=True)
    period = 200 / full.mean_rate_per_s()
    share = 0.05
    w = replay(loop=True, replay_share=share)
    assert w.mean_rate_per_s() == pytest.approx(share * full.mean_rate_per_s())
    n = 4000
    a = collect(w.open_blocks(max_requests=n, block_size=333))
    check_invariants(a, 1)
    assert len(a) == n
    t_in = np.mod(a.t_s, period)
    t_in[t_in > period - 1e-6] -= period  # float wrap of a period's first row
    # each kept arrival is the trace row at that time within its period, lengths included
    row = np.searchsorted(once.t_s, t_in - 1e-9)
    assert np.allclose(once.t_s[row], t_in, atol=1e-6)
    assert np.array_equal(once.input_tokens[row], a.input_tokens)
    assert np.array_equal(once.output_tokens[row], a.output_tokens)
    # rate within 5 sigma of a Poisson count over the simulated periods
    expect = share * 200 * a.t_s[-1] / period
    assert abs(n - expect) < Z * math.sqrt(expect)
    b = collect(w.open_blocks(max_requests=n, block_size=4096))
    assert np.array_equal(a.t_s, b.t_s)
    c = collect(workload(seed=2, arrival="replay", classes={"conv": {}}, traces={"conv": TRACE},
                         loop=True, replay_share=share).open_blocks(max_requests=n))
    assert not np.array_equal(a.t_s, c.t_s)  # another seed keeps other rows
    # without loop the thinned trace ends with the trace
    d = collect(replay(replay_share=0.5).open_blocks())
    assert 0 < len(d) < 200 and d.t_s[-1] <= once.t_s[-1]


def test_replay_two_traces_merge_on_common_origin(tmp_path):
    head = (DATA / TRACE).read_text().splitlines()
    (tmp_path / "a.csv").write_text("\n".join(head[:101]) + "\n")
    (tmp_path / "b.csv").write_text("\n".join([head[0], *head[101:]]) + "\n")
    w = Workload(WorkloadSpec(arrival="replay", classes={"a": {}, "b": {}},
                              traces={"b": "b.csv", "a": str(tmp_path / "a.csv")}), 0, tmp_path)
    a = collect(w.open_blocks())
    ref = collect(replay().open_blocks())
    assert np.allclose(a.t_s, ref.t_s)  # time 0 = earliest timestamp across traces
    assert (a.class_idx[:100] == 0).all() and (a.class_idx[100:] == 1).all()
    assert w.shares.tolist() == [0.5, 0.5]


def test_replay_loop_needs_a_span(tmp_path):
    (tmp_path / "one.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,5,5\n")
    with pytest.raises(ScenarioError, match="workload.loop"):
        Workload(WorkloadSpec(arrival="replay", traces={"chat": "one.csv"}, loop=True), 0, tmp_path)


def test_open_blocks_argument_checks():
    w = workload(rate_per_s=1.0)
    with pytest.raises(ValueError):
        next(w.open_blocks(block_size=0))
    assert list(w.open_blocks(end_s=0.0)) == []
    assert list(w.open_blocks(max_requests=0)) == []
