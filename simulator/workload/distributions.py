"""Samplers of request lengths (tokens), built from the specs in :mod:`.spec`.

Every sampler returns an int64 array of lengths ``>= 1`` (and ``<= max_tokens`` when given).
Continuous draws ``x`` become ``max(1, round(x))`` tokens (round half to even), then are
clipped to ``max_tokens``.

Stream property: every sampler consumes its generator one value at a time with no buffering
(exponential, normal and uniform doubles only; integer ranges use ``floor(u * n)``), so
``sample(rng, a)`` followed by ``sample(rng, b)`` gives the same values as
``sample(rng, a + b)``. The arrival generator relies on this: a class's j-th request gets the
j-th draw of that class's stream however requests are chunked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from simulator.workload.spec import (
    MAX_TOKENS,
    EmpiricalLength,
    ExponentialLength,
    FixedLength,
    HistogramLength,
    LognormalLength,
    UniformLength,
)
from simulator.workload.trace import load_token_column


class LengthSampler(Protocol):
    """Draws request lengths, tokens."""

    @property
    def mean_tokens(self) -> float:
        """Expected length of one draw, tokens (analytic, or the data mean for empirical)."""
        ...

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` lengths as an int64 array, every value ``>= 1`` (and ``<= max_tokens``)."""
        ...


def _clip(x: np.ndarray, max_tokens: int | None) -> np.ndarray:
    """Round continuous draws to int64 tokens in ``[1, max_tokens]`` (at most
    :data:`~simulator.workload.spec.MAX_TOKENS`, so that a draw that overflows to infinity
    never wraps around to a negative count)."""
    out = np.rint(x)
    np.maximum(out, 1.0, out=out)
    np.minimum(out, float(MAX_TOKENS if max_tokens is None else max_tokens), out=out)
    return out.astype(np.int64)


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class FixedSampler:
    """Always ``value`` tokens."""

    value_tokens: int

    @property
    def mean_tokens(self) -> float:
        return float(self.value_tokens)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value_tokens, dtype=np.int64)


@dataclass(frozen=True)
class UniformSampler:
    """Integers ``low..high`` inclusive, equally likely, then clipped to ``max_tokens``."""

    low_tokens: int
    high_tokens: int
    max_tokens: int | None = None

    @property
    def mean_tokens(self) -> float:
        lo, hi, m = self.low_tokens, self.high_tokens, self.max_tokens
        if m is None or m >= hi:
            return (lo + hi) / 2.0
        if m <= lo:
            return float(m)
        # values lo..m-1 once each, value m for m..hi
        below = (lo + m - 1) * (m - lo) / 2.0
        return (below + m * (hi - m + 1)) / (hi - lo + 1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        span = self.high_tokens - self.low_tokens + 1
        k = np.floor(rng.random(n) * span).astype(np.int64)
        np.minimum(k, span - 1, out=k)  # guard against rounding at u -> 1
        out = self.low_tokens + k
        if self.max_tokens is not None:
            np.minimum(out, self.max_tokens, out=out)
        return out


@dataclass(frozen=True)
class ExponentialSampler:
    """Exponential with mean ``mean_cont_tokens``, rounded and clipped to ``[1, max_tokens]``."""

    mean_cont_tokens: float
    max_tokens: int | None = None

    @property
    def mean_tokens(self) -> float:
        """Mean of the continuous law clipped to ``[1, max_tokens]`` (rounding ignored, < 0.5)."""
        mu = self.mean_cont_tokens
        hi = math.inf if self.max_tokens is None else float(self.max_tokens)
        # E[clip(X, 1, hi)] = 1 + integral_1^hi P(X > x) dx
        return 1.0 + mu * (math.exp(-1.0 / mu) - (0.0 if math.isinf(hi) else math.exp(-hi / mu)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _clip(rng.exponential(self.mean_cont_tokens, n), self.max_tokens)


@dataclass(frozen=True)
class LognormalSampler:
    """``exp(N(ln median, sigma^2))``, rounded and clipped to ``[1, max_tokens]``."""

    median_tokens: float
    sigma: float
    max_tokens: int | None = None

    @property
    def mean_tokens(self) -> float:
        """Mean of the continuous law clipped to ``[1, max_tokens]`` (rounding ignored)."""
        mu, s = math.log(self.median_tokens), self.sigma
        lo, hi = 1.0, (math.inf if self.max_tokens is None else float(self.max_tokens))
        if s == 0.0:
            return min(max(self.median_tokens, lo), hi)
        z = lambda x: (math.log(x) - mu) / s  # noqa: E731
        cdf_hi = 1.0 if math.isinf(hi) else _phi(z(hi))
        partial_hi = 1.0 if math.isinf(hi) else _phi(z(hi) - s)
        # E[X; lo < X < hi] = exp(mu + s^2/2) [Phi(z(hi) - s) - Phi(z(lo) - s)]
        body = math.exp(mu + s * s / 2.0) * (partial_hi - _phi(z(lo) - s))
        return lo * _phi(z(lo)) + body + (0.0 if math.isinf(hi) else hi * (1.0 - cdf_hi))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        with np.errstate(over="ignore"):  # an overflow is infinity, clipped to the largest
            x = np.exp(math.log(self.median_tokens) + self.sigma * rng.standard_normal(n))
        return _clip(x, self.max_tokens)


@dataclass(frozen=True, eq=False)
class EmpiricalSampler:
    """Resamples ``values_tokens`` with replacement (each value ``max(1, v)``, ``<= max_tokens``)."""

    values_tokens: np.ndarray  # int64, already clipped to [1, max_tokens]

    @property
    def mean_tokens(self) -> float:
        return float(self.values_tokens.mean())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        size = len(self.values_tokens)
        idx = np.floor(rng.random(n) * size).astype(np.int64)
        np.minimum(idx, size - 1, out=idx)
        return self.values_tokens[idx]


@dataclass(frozen=True, eq=False)
class HistogramSampler:
    """A bin with probability proportional to its count, then uniform inside it; rounded and
    clipped to ``[1, max_tokens]``. Two uniforms per length (bin, position), drawn as one
    array, so the stream property holds."""

    low: np.ndarray
    width: np.ndarray
    cum: np.ndarray  # cumulative bin probabilities, last = 1
    max_tokens: int | None = None

    @property
    def mean_tokens(self) -> float:
        """Mean of the continuous law (bin midpoints weighted by probability; rounding and
        clipping ignored)."""
        p = np.diff(np.r_[0.0, self.cum])
        return float((p * (self.low + self.width / 2.0)).sum())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(2 * n)
        k = np.minimum(np.searchsorted(self.cum, u[0::2], side="right"), len(self.cum) - 1)
        return _clip(self.low[k] + u[1::2] * self.width[k], self.max_tokens)


def resolve_path(path: str, base_dir: Path) -> Path:
    """``path`` as given if absolute, else relative to ``base_dir`` (the scenario's folder)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(base_dir) / p


def _fixed(spec: FixedLength, base_dir: Path, field: str) -> LengthSampler:
    value = spec.value if spec.max_tokens is None else min(spec.value, spec.max_tokens)
    return FixedSampler(value)


def _uniform(spec: UniformLength, base_dir: Path, field: str) -> LengthSampler:
    return UniformSampler(spec.low, spec.high, spec.max_tokens)


def _exponential(spec: ExponentialLength, base_dir: Path, field: str) -> LengthSampler:
    return ExponentialSampler(spec.mean_tokens, spec.max_tokens)


def _lognormal(spec: LognormalLength, base_dir: Path, field: str) -> LengthSampler:
    return LognormalSampler(spec.median, spec.sigma, spec.max_tokens)


def _empirical(spec: EmpiricalLength, base_dir: Path, field: str) -> LengthSampler:
    values = load_token_column(resolve_path(spec.trace, base_dir), spec.column, f"{field}.trace")
    if spec.scale != 1.0:
        values = np.minimum(np.rint(values * spec.scale), MAX_TOKENS).astype(np.int64)
    values = np.maximum(values, 1)
    if spec.max_tokens is not None:
        values = np.minimum(values, spec.max_tokens)
    values.setflags(write=False)
    return EmpiricalSampler(values)


def _histogram(spec: HistogramLength, base_dir: Path, field: str) -> LengthSampler:
    b = np.asarray(spec.bins, dtype=np.float64)
    counts = b[:, 2]
    cum = np.cumsum(counts) / counts.sum()
    cum[-1] = 1.0
    return HistogramSampler(b[:, 0], b[:, 1] - b[:, 0], cum, spec.max_tokens)


#: Builders by ``dist`` name: ``(spec, base_dir, field) -> LengthSampler``.
LENGTH_SAMPLERS: dict[str, Callable[..., LengthSampler]] = {
    "fixed": _fixed,
    "uniform": _uniform,
    "exponential": _exponential,
    "lognormal": _lognormal,
    "empirical": _empirical,
    "histogram": _histogram,
}


def build_length_sampler(spec: object, base_dir: Path, field: str) -> LengthSampler:
    """The sampler for a length spec (one of the ``LengthSpec`` models).

    Args:
        spec: a validated length spec (its ``dist`` selects the builder).
        base_dir: folder against which relative ``trace`` paths resolve (the scenario's).
        field: dotted scenario path of the spec, e.g. ``workload.classes.chat.input_tokens``,
            used in error messages.

    Raises:
        DataError: the empirical trace cannot be read or has a bad row.
    """
    dist = getattr(spec, "dist", None)
    builder = LENGTH_SAMPLERS.get(dist)  # type: ignore[arg-type]
    if builder is None:
        raise ValueError(f"unknown length distribution {dist!r}; valid: {', '.join(LENGTH_SAMPLERS)}")
    return builder(spec, base_dir, field)
