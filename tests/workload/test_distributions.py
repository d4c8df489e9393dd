"""Length samplers: shapes, bounds, analytic means within sampling confidence intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter

from simulator.errors import DataError
from simulator.workload.distributions import build_length_sampler
from simulator.workload.spec import LengthSpec

DATA = Path(__file__).parent / "data"
TRACE = DATA / "azure_conv_head.csv"
N = 200_000
Z = 5.0  # confidence multiplier: a false failure is ~1e-6 per check

_adapter = TypeAdapter(LengthSpec)


def sampler(**spec):
    return build_length_sampler(_adapter.validate_python(spec), DATA, "workload.classes.x.input_tokens")


def draw(s, n=N, seed=0):
    x = s.sample(np.random.default_rng(seed), n)
    assert x.dtype == np.int64 and x.shape == (n,)
    assert x.min() >= 1
    return x


def assert_mean(x: np.ndarray, expected: float, slack: float = 0.5):
    """Sample mean within Z standard errors (+ a rounding slack in tokens) of ``expected``."""
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert abs(x.mean() - expected) <= Z * se + slack, (x.mean(), expected, se)


def test_fixed_exact_and_clipped():
    assert (draw(sampler(dist="fixed", value=500), 100) == 500).all()
    s = sampler(dist="fixed", value=500, max_tokens=300)
    assert (draw(s, 100) == 300).all() and s.mean_tokens == 300


def test_uniform_bounds_and_mean():
    s = sampler(dist="uniform", low=100, high=900)
    x = draw(s)
    assert x.min() == 100 and x.max() == 900  # both ends reached with 200k draws
    assert s.mean_tokens == 500
    assert_mean(x, s.mean_tokens, slack=0)


def test_uniform_clipped_mean():
    s = sampler(dist="uniform", low=1, high=10, max_tokens=4)
    x = draw(s)
    assert x.max() == 4
    assert s.mean_tokens == pytest.approx((1 + 2 + 3 + 4 * 7) / 10)
    assert_mean(x, s.mean_tokens, slack=0)


def test_exponential_median_and_mean():
    s = sampler(dist="exponential", median=300)
    x = draw(s)
    # median: the count below 300 is Binomial(N, 1/2)
    below = (x < 300).sum() + 0.5 * (x == 300).sum()
    assert abs(below - N / 2) <= Z * math.sqrt(N / 4) + (x == 300).sum()
    assert s.mean_tokens == pytest.approx(300 / math.log(2), rel=1e-3)
    assert_mean(x, s.mean_tokens)


def test_exponential_given_mean_and_cap():
    s = sampler(dist="exponential", mean=200, max_tokens=250)
    x = draw(s)
    assert x.max() == 250
    assert_mean(x, s.mean_tokens)
    assert s.mean_tokens < 200


def test_lognormal_median_and_mean():
    s = sampler(dist="lognormal", median=1000, sigma=1.0)
    x = draw(s)
    below = (x < 1000).sum()
    assert abs(below - N / 2) <= Z * math.sqrt(N / 4) + (x == 1000).sum()
    assert s.mean_tokens == pytest.approx(1000 * math.exp(0.5), rel=1e-4)
    assert_mean(x, s.mean_tokens)


def test_lognormal_capped_and_sigma_zero():
    s = sampler(dist="lognormal", median=1000, sigma=1.5, max_tokens=2000)
    x = draw(s)
    assert x.max() == 2000
    assert_mean(x, s.mean_tokens)
    s0 = sampler(dist="lognormal", median=42, sigma=0)
    assert (draw(s0, 10) == 42).all() and s0.mean_tokens == 42


def test_small_continuous_values_clip_to_one():
    x = draw(sampler(dist="exponential", median=0.3))
    assert x.min() == 1


def test_empirical_draws_only_column_values():
    col = np.loadtxt(TRACE, delimiter=",", skiprows=1, usecols=2, dtype=np.int64)
    s = sampler(dist="empirical", trace=TRACE.name, column="GeneratedTokens")
    x = draw(s, 50_000)
    assert set(np.unique(x)) <= set(np.maximum(col, 1))
    assert len(np.unique(x)) == len(np.unique(col))  # every value is hit with 50k draws
    assert s.mean_tokens == pytest.approx(np.maximum(col, 1).mean())
    assert_mean(x, s.mean_tokens, slack=0)


def test_empirical_cap_and_absolute_path():
    s = sampler(dist="empirical", trace=str(TRACE.resolve()), column="ContextTokens", max_tokens=100)
    assert draw(s, 1000).max() <= 100


def test_empirical_missing_file_and_column():
    with pytest.raises(DataError, match="not found"):
        sampler(dist="empirical", trace="nope.csv", column="ContextTokens")
    with pytest.raises(DataError, match="missing required column 'Tokens'"):
        sampler(dist="empirical", trace=TRACE.name, column="Tokens")


def test_histogram_bins_by_count_uniform_inside():
    s = sampler(dist="histogram", bins=[[0, 10, 1], [10, 100, 3], [500, 600, 0]])
    x = draw(s)
    assert x.max() <= 100  # an empty bin is never drawn
    # P(bin 0) = 1/4: lengths 1..10 (0 rounds up to 1 token)
    frac = (x <= 10).mean()
    assert abs(frac - 0.25) < Z * math.sqrt(0.25 * 0.75 / N) + 1e-3
    assert s.mean_tokens == pytest.approx(0.25 * 5 + 0.75 * 55)
    assert_mean(x, s.mean_tokens)
    capped = draw(sampler(dist="histogram", bins=[[0, 10, 1], [10, 100, 3]], max_tokens=20))
    assert capped.max() == 20


def test_histogram_scaled_moves_the_edges():
    spec = _adapter.validate_python({"dist": "histogram", "bins": [[0, 10, 1], [10, 100, 3]]})
    assert spec.scaled(2.0).bins == [[0, 20, 1], [20, 200, 3]]


@pytest.mark.parametrize("bins, match", [([[10, 5, 1]], "low < high"), ([[0, 5, -1]], "count"),
                                          ([[0, 5, 0]], "every bin count is 0"), ([], "at least 1")])
def test_histogram_bad_bins(bins, match):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=match):
        _adapter.validate_python({"dist": "histogram", "bins": bins})


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "uniform", "low": 3, "high": 70},
        {"dist": "exponential", "median": 50},
        {"dist": "lognormal", "median": 50, "sigma": 0.7},
        {"dist": "empirical", "trace": "azure_conv_head.csv", "column": "ContextTokens"},
        {"dist": "histogram", "bins": [[0, 10, 1], [10, 100, 3], [100, 110, 0]]},
    ],
)
def test_draws_do_not_depend_on_call_sizes(spec):
    """sample(a) then sample(b) == sample(a + b): the arrival generator relies on it."""
    s = sampler(**spec)
    rng1, rng2 = np.random.default_rng(7), np.random.default_rng(7)
    whole = s.sample(rng1, 1000)
    parts = np.concatenate([s.sample(rng2, k) for k in (1, 10, 333, 0, 656)])
    assert (whole == parts).all()
