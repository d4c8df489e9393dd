"""The ``workload`` section of a scenario: arrivals, query classes, length distributions, SLOs.

Pure data (pydantic v2, strict): unknown keys are errors, floats must be finite, every number
has a range. Validators raise ``ValueError`` with a one-line message; the scenario loader turns
the pydantic error into a :class:`~simulator.errors.ScenarioError` whose field path is the
error's ``loc`` (for example ``workload.mix`` or ``workload.classes.chat.output_tokens``).
Cross-field rules are field validators (run in declaration order, with ``validate_default``) so
that the error points at the field to fix rather than at ``workload``.

Sampling semantics live in :mod:`simulator.workload.distributions`; arrival generation in
:mod:`simulator.workload.arrivals`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from simulator.errors import did_you_mean
from simulator.strict import Strict, replace

#: Shares of a mix must sum to 1 within this tolerance.
MIX_SUM_TOLERANCE = 1e-6
#: Class names: identifiers (letters, digits, ``_`` and ``-``; not starting with a digit).
CLASS_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
#: Largest length a distribution may give, tokens (the same bound as trace token counts).
MAX_TOKENS = 2**31 - 1
#: Largest SLO target, s (a day): a larger one is never binding, and projections derive their
#: warm-up from it.
MAX_SLO_S = 86_400.0
#: Largest hourly multiplier; a non-zero multiplier must be at least MIN_CURVE_RATIO of the peak.
MAX_MULTIPLIER = 1e6
MIN_CURVE_RATIO = 1e-9

ArrivalKind = Literal["poisson", "gamma", "replay", "closed_loop"]


def _share(v: Any) -> float | str:
    """A mix share: a finite number in [0, 1], or the string ``'rest'``."""
    if v == "rest":
        return "rest"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("a share must be a number in [0, 1] or 'rest'")
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError("a share must be a finite number in [0, 1]")
    return float(v)


#: One class's share in ``mix`` (validated by hand so that errors name ``mix.<class>``).
MixShare = Annotated[
    Union[float, Literal["rest"]],
    PlainValidator(_share, json_schema_input_type=Union[float, Literal["rest"]]),
]




_MAX_TOKENS_DESC = (
    "optional upper bound on the sampled length, tokens (samples above it are clipped to it);"
    " null means no bound"
)


class _LengthBase(Strict):
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS, description=_MAX_TOKENS_DESC)


class FixedLength(_LengthBase):
    """Every request has the same length: ``min(value, max_tokens)`` tokens."""

    dist: Literal["fixed"] = Field(description="distribution name: 'fixed'")
    value: int = Field(ge=1, le=MAX_TOKENS, description="length of every request, tokens (>= 1)")

    def scaled(self, s: float) -> FixedLength:
        """Lengths times ``s`` (rounded, >= 1 token)."""
        return replace(self, value=max(1, round(self.value * s)))


class UniformLength(_LengthBase):
    """Integer length drawn uniformly from ``low..high`` inclusive, tokens."""

    dist: Literal["uniform"] = Field(description="distribution name: 'uniform'")
    low: int = Field(ge=1, le=MAX_TOKENS, description="smallest length, tokens (inclusive, >= 1)")
    high: int = Field(ge=1, le=MAX_TOKENS, description="largest length, tokens (inclusive, >= low)")

    @model_validator(mode="after")
    def _order(self) -> UniformLength:
        if self.high < self.low:
            raise ValueError(f"uniform needs low <= high (got low={self.low}, high={self.high})")
        return self

    def scaled(self, s: float) -> UniformLength:
        """Bounds times ``s`` (rounded, >= 1 token, low <= high)."""
        low = max(1, round(self.low * s))
        return replace(self, low=low, high=max(low, round(self.high * s)))


class ExponentialLength(_LengthBase):
    """Exponential length; give exactly one of ``median`` or ``mean`` (median = mean * ln 2).

    A continuous draw ``x`` becomes ``max(1, round(x))`` tokens (then clipped to ``max_tokens``).
    """

    dist: Literal["exponential"] = Field(description="distribution name: 'exponential'")
    median: float | None = Field(
        None,
        gt=0,
        le=MAX_TOKENS,
        description="median length, tokens (give this or mean, not both); draws are rounded to"
        " the nearest integer, >= 1",
    )
    mean: float | None = Field(
        None, gt=0, le=MAX_TOKENS, description="mean length, tokens (give this or median, not"
        " both)"
    )

    @model_validator(mode="after")
    def _one_of(self) -> ExponentialLength:
        if (self.median is None) == (self.mean is None):
            raise ValueError("exponential needs exactly one of 'median' or 'mean' (tokens)")
        return self

    @property
    def mean_tokens(self) -> float:
        """Mean of the continuous distribution (before rounding and clipping), tokens."""
        return self.mean if self.mean is not None else float(self.median) / math.log(2)  # type: ignore[arg-type]

    def scaled(self, s: float) -> ExponentialLength:
        """The same law with its median (or mean) times ``s``."""
        if self.median is not None:
            return replace(self, median=self.median * s)
        return replace(self, mean=self.mean * s)  # type: ignore[operator]


class LognormalLength(_LengthBase):
    """Log-normal length: ``exp(N(ln median, sigma^2))``, then ``max(1, round(x))`` tokens."""

    dist: Literal["lognormal"] = Field(description="distribution name: 'lognormal'")
    median: float = Field(
        gt=0, le=MAX_TOKENS,
        description="median length, tokens (draws are rounded to the nearest integer, >= 1)"
    )
    sigma: float = Field(
        ge=0, le=10, description="standard deviation of ln(length), dimensionless (0 = fixed"
        " length; measured LLM prompt and output lengths have about 1)"
    )

    def scaled(self, s: float) -> LognormalLength:
        """The same law with its median times ``s``."""
        return replace(self, median=self.median * s)


class EmpiricalLength(_LengthBase):
    """Lengths resampled with replacement from one column of a CSV (e.g. an Azure trace).

    Values of 0 in the column are used as 1 token (a request has at least one token).
    """

    dist: Literal["empirical"] = Field(description="distribution name: 'empirical'")
    trace: str = Field(
        min_length=1,
        description="path of a CSV file; a relative path is resolved against the scenario"
        " file's folder",
    )
    column: str = Field(
        min_length=1,
        description="column holding token counts (e.g. ContextTokens or GeneratedTokens of an"
        " Azure LLM inference trace), tokens",
    )
    scale: float = Field(
        1.0, gt=0, le=1e4, description="factor on every value of the column, dimensionless (then"
        " rounded, >= 1 token): a what-if on the measured lengths"
    )

    def scaled(self, s: float) -> EmpiricalLength:
        """Every value times ``s`` (rounded once, >= 1 token)."""
        return replace(self, scale=self.scale * s)


class HistogramLength(_LengthBase):
    """Lengths from a histogram (e.g. a benchmark's measured output lengths): a bin is chosen
    with probability proportional to its count, then a length uniformly inside it (rounded,
    >= 1 token)."""

    dist: Literal["histogram"] = Field(description="distribution name: 'histogram'")
    bins: list[list[float]] = Field(
        min_length=1, description="[low, high, count] per bin: lengths in tokens (low < high,"
        " low >= 0), count >= 0 (any scale: only the ratios matter)")

    @field_validator("bins")
    @classmethod
    def _bins(cls, v: list[list[float]]) -> list[list[float]]:
        for i, b in enumerate(v):
            if len(b) != 3:
                raise ValueError(f"bin {i}: needs [low, high, count] (got {len(b)} numbers)")
        for i, (lo, hi, n) in enumerate(v):
            if not (0 <= lo < hi):
                raise ValueError(f"bin {i}: needs 0 <= low < high (got [{lo:g}, {hi:g}])")
            if n < 0:
                raise ValueError(f"bin {i}: count {n:g} must be >= 0")
        if sum(n for _, _, n in v) <= 0:
            raise ValueError("every bin count is 0; at least one must be > 0")
        return v

    def scaled(self, s: float) -> HistogramLength:
        """Bin edges times ``s`` (counts unchanged)."""
        return replace(self, bins=[[lo * s, hi * s, n] for lo, hi, n in self.bins])


LengthSpec = Annotated[
    Union[FixedLength, UniformLength, ExponentialLength, LognormalLength, EmpiricalLength,
          HistogramLength],
    Field(discriminator="dist"),
]


class SLO(Strict):
    """Latency targets of a query class (defaults are user choices, not measurements)."""

    ttft_s: float = Field(
        2.0,
        gt=0,
        le=MAX_SLO_S,
        description="time-to-first-token target, s (default 2.0 is a user-chosen default, not a"
        " measurement)",
    )
    tpot_s: float = Field(
        0.2,
        gt=0,
        le=MAX_SLO_S,
        description="time-per-output-token target (mean gap between output tokens after the"
        " first), s (default 0.2 is a user-chosen default, not a measurement)",
    )


def _default_input() -> FixedLength:
    return FixedLength(dist="fixed", value=500)


def _default_output() -> ExponentialLength:
    return ExponentialLength(dist="exponential", median=300)


class QueryClass(Strict):
    """A kind of request: its length distributions, SLO and priority."""

    input_tokens: LengthSpec = Field(
        default_factory=_default_input,
        description="prompt length distribution, tokens (default fixed 500); ignored by replay,"
        " which uses the trace's lengths",
    )
    output_tokens: LengthSpec = Field(
        default_factory=_default_output,
        description="generated length distribution, tokens (default exponential, median 300);"
        " ignored by replay",
    )
    slo: SLO = Field(default_factory=SLO, description="latency targets of this class")
    priority: int = Field(
        0, description="importance, dimensionless integer; higher = more important (used by"
        " power-capping policies)"
    )


def _default_classes() -> dict[str, QueryClass]:
    return {"chat": QueryClass()}


def check_daily_curve(v: list[float]) -> list[float]:
    """A daily load curve: 24 hourly factors in [0, MAX_MULTIPLIER], not all 0, every non-zero
    one at least MIN_CURVE_RATIO of the largest (ValueError otherwise; the caller's field path
    names the field)."""
    if len(v) != 24:
        raise ValueError(f"needs exactly 24 values (one per hour of day), got {len(v)}")
    for h, m in enumerate(v):
        if not 0 <= m <= MAX_MULTIPLIER:
            raise ValueError(f"value {h} (hour {h}) is {m}, must be in [0, {MAX_MULTIPLIER:g}]")
    peak = max(v)
    if peak <= 0:
        raise ValueError("the 24 values are all 0; at least one must be > 0")
    for h, m in enumerate(v):
        if 0 < m < MIN_CURVE_RATIO * peak:
            raise ValueError(f"value {h} (hour {h}) is {m:g}, less than {MIN_CURVE_RATIO:g} of"
                             f" the peak {peak:g}: use 0 for an hour without load")
    return v


class WorkloadSpec(Strict):
    """Who sends what, when: the arrival process, the query classes and their mix."""

    arrival: ArrivalKind = Field(
        "poisson",
        description="arrival process: 'poisson' (open loop, exponential gaps), 'gamma' (open"
        " loop, gamma gaps with coefficient of variation cv), 'replay' (timestamps of traces),"
        " 'closed_loop' (a fixed number of clients, each waiting for its response)",
    )
    classes: dict[str, QueryClass] = Field(
        default_factory=_default_classes,
        description="query classes by name (identifiers); default one class 'chat' with input"
        " fixed 500 tokens and output exponential median 300 tokens",
    )
    mix: dict[str, MixShare] | None = Field(
        None,
        validate_default=True,
        description="share of requests per class, fractions in [0, 1] summing to 1; at most one"
        " class may say 'rest' (1 - the others); classes not listed get 0; null = the only"
        " class (required when there are several classes, except for replay)",
    )
    rate_per_s: float | None = Field(
        None,
        gt=0,
        validate_default=True,
        description="mean arrival rate, requests/s (poisson and gamma; with hourly_multipliers,"
        " the rate at multiplier 1)",
    )
    cv: float = Field(
        1.0,
        ge=0.01,
        le=100.0,
        description="coefficient of variation of inter-arrival times for 'gamma', dimensionless"
        " (1 = poisson, > 1 burstier)",
    )
    hourly_multipliers: list[float] | None = Field(
        None,
        description="24 non-negative factors, dimensionless, one per hour of the day: the rate"
        " at simulated time t is rate_per_s * m[floor(start_hour + t/3600) % 24] (repeats"
        " daily); poisson and gamma only. Implemented by thinning arrivals generated at the"
        " peak rate, which for gamma also changes the CV of the gaps (accepted)",
    )
    start_hour: float = Field(
        0.0, ge=0, lt=24, description="hour of day at simulated time 0, h (for hourly_multipliers)"
    )
    traces: dict[str, str] | None = Field(
        None,
        validate_default=True,
        description="replay: class name -> path of an Azure-format CSV"
        " (TIMESTAMP,ContextTokens,GeneratedTokens); relative paths resolve against the"
        " scenario file's folder",
    )
    time_scale: float = Field(
        1.0,
        ge=1e-6,
        le=1e6,
        description="replay speed-up factor, dimensionless: inter-arrival times are divided by"
        " it (2.0 doubles the rate)",
    )
    loop: bool = Field(
        False, description="replay: repeat the traces when they end before the simulation does"
    )
    replay_input_scale: float = Field(
        1.0, gt=0, le=1e4, description="replay: factor on every trace row's prompt length, dimensionless"
        " (rounded, >= 1 token)"
    )
    replay_output_scale: float = Field(
        1.0, gt=0, le=1e4, description="replay: factor on every trace row's generated length,"
        " dimensionless (rounded, >= 0 tokens)"
    )
    replay_share: float = Field(
        1.0,
        gt=0,
        le=1,
        description="replay: fraction of the time-scaled traces' requests this simulation"
        " receives, each request kept independently at random with its own lengths (as one of"
        " 1/replay_share nodes behind a router that spreads simultaneous requests would see it);"
        " the rate is trace rate x time_scale x replay_share. 1 = every request",
    )
    clients: int | None = Field(
        None,
        gt=0,
        validate_default=True,
        description="closed_loop: number of concurrent clients, each with one request in flight",
    )
    think_time_s: float = Field(
        0.0,
        ge=0,
        le=MAX_SLO_S,
        description="closed_loop: delay between a response and that client's next request, s",
    )

    # ---------------------------------------------------------------- field rules
    @field_validator("classes")
    @classmethod
    def _class_names(cls, v: dict[str, QueryClass]) -> dict[str, QueryClass]:
        if not v:
            raise ValueError("at least one query class is needed")
        for name in v:
            if not CLASS_NAME_RE.match(name):
                raise ValueError(
                    f"class name {name!r} is not an identifier (letters, digits, '_' or '-',"
                    " not starting with a digit)"
                )
        return v

    @field_validator("mix")
    @classmethod
    def _mix(cls, v: dict[str, float | str] | None, info: ValidationInfo) -> Any:
        classes = info.data.get("classes")
        if classes is None:  # classes already failed; report that error only
            return v
        if v is None:
            if len(classes) > 1 and info.data.get("arrival") != "replay":
                raise ValueError(
                    f"{len(classes)} classes ({', '.join(classes)}) need a mix giving each"
                    " class's share"
                )
            return v
        if not v:
            raise ValueError("mix is empty; give each class's share or leave mix out")
        for name, share in v.items():
            if name not in classes:
                raise ValueError(
                    f"mix names unknown class {name!r}{did_you_mean(name, classes)}; classes are"
                    f" {', '.join(classes)}"
                )
        rest = [k for k, s in v.items() if s == "rest"]
        if len(rest) > 1:
            raise ValueError(f"at most one class may take the 'rest' (got {', '.join(rest)})")
        total = math.fsum(s for s in v.values() if not isinstance(s, str))
        if rest:
            if total > 1.0 + MIX_SUM_TOLERANCE:
                raise ValueError(
                    f"mix shares other than 'rest' sum to {total:.6g} > 1; nothing is"
                    f" left for {rest[0]!r}"
                )
        elif abs(total - 1.0) > MIX_SUM_TOLERANCE:
            raise ValueError(
                f"mix shares sum to {total:.6g}, must sum to 1 (within"
                f" {MIX_SUM_TOLERANCE:g}); use 'rest' for the remainder"
            )
        return v

    @field_validator("rate_per_s")
    @classmethod
    def _rate_needed(cls, v: float | None, info: ValidationInfo) -> float | None:
        arrival = info.data.get("arrival")
        if v is None and arrival in ("poisson", "gamma"):
            raise ValueError(f"arrival {arrival!r} needs rate_per_s (mean requests per second)")
        return v

    @field_validator("hourly_multipliers")
    @classmethod
    def _hourly(cls, v: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if v is None:
            return v
        arrival = info.data.get("arrival")
        if arrival not in ("poisson", "gamma", None):
            raise ValueError(
                f"hourly_multipliers apply only to poisson and gamma arrivals (arrival is"
                f" {arrival!r})"
            )
        return check_daily_curve(v)

    @field_validator("traces")
    @classmethod
    def _traces(cls, v: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if info.data.get("arrival") != "replay":
            return v
        if not v:
            raise ValueError("arrival 'replay' needs traces: class name -> trace CSV path")
        classes = info.data.get("classes")
        if classes is None:
            return v
        for name, path in v.items():
            if name not in classes:
                raise ValueError(
                    f"traces names unknown class {name!r}{did_you_mean(name, classes)}; classes"
                    f" are {', '.join(classes)}"
                )
            if not path:
                raise ValueError(f"trace path of class {name!r} is empty")
        return v

    @field_validator("clients")
    @classmethod
    def _clients(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None and info.data.get("arrival") == "closed_loop":
            raise ValueError("arrival 'closed_loop' needs clients (number of concurrent clients)")
        return v

    # ---------------------------------------------------------------- derived
    def scaled_lengths(self, input_scale: float, output_scale: float) -> WorkloadSpec:
        """The same workload with every prompt length times ``input_scale`` and every output
        length times ``output_scale`` (each class's distribution, and the replayed rows)."""
        if input_scale == 1.0 and output_scale == 1.0:
            return self
        classes = {n: replace(c, input_tokens=c.input_tokens.scaled(input_scale),
                              output_tokens=c.output_tokens.scaled(output_scale))
                   for n, c in self.classes.items()}
        return replace(self, classes=classes,
                       replay_input_scale=self.replay_input_scale * input_scale,
                       replay_output_scale=self.replay_output_scale * output_scale)

    def class_shares(self) -> dict[str, float]:
        """Share of requests of every class (in ``classes`` order), fractions summing to 1.

        ``'rest'`` is resolved; classes absent from ``mix`` get 0. With no mix the single class
        gets 1 (for replay with several classes and no mix, shares are equal; replay does not
        use them to draw classes).
        """
        names = list(self.classes)
        if self.mix is None:
            return {n: 1.0 / len(names) for n in names}
        given = {k: float(s) for k, s in self.mix.items() if not isinstance(s, str)}
        rest = [k for k, s in self.mix.items() if isinstance(s, str)]
        out = {n: given.get(n, 0.0) for n in names}
        if rest:
            out[rest[0]] = max(0.0, 1.0 - math.fsum(given.values()))
        return out
