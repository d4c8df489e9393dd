"""The ``projection`` section of a scenario: a whole fleet-day from a daily volume, a daily load
curve, the scenario's query mix and a fleet policy, with Monte Carlo uncertainty.

Pure data (pydantic v2, strict): unknown keys are errors, floats must be finite, every number
has a range. Cross-field rules raise ``ValueError`` with one line; the scenario loader turns it
into ``<file>: projection.<field>: <problem>``. What the fields mean and how they are used:
``docs/projection.md``; the computation: :mod:`simulator.projection.project`.

Defaults of uncertain inputs carry their source or rationale in their descriptions (they are
rendered into ``docs/scenario-reference.md``). Policy choices (SLO target, headroom, warm-up
delay) are user choices, not measurements, and say so.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from simulator.strict import Strict
from simulator.workload.spec import check_daily_curve

HOURS_PER_DAY = 24




def _range(v: list[float], name: str, lo: float, hi: float | None = None) -> list[float]:
    if len(v) != 2:
        raise ValueError(f"{name} needs [low, high] (2 values), got {len(v)}")
    a, b = v
    if a > b:
        raise ValueError(f"{name} needs low <= high (got {a:g} > {b:g})")
    if a < lo or (hi is not None and b > hi):
        raise ValueError(f"{name} must lie in [{lo:g}, {hi if hi is not None else 'inf'}]"
                         f" (got [{a:g}, {b:g}])")
    return v


class CurveTrace(Strict):
    """A daily load curve read from a trace of request timestamps: requests per hour of day."""

    path: str = Field(min_length=1, description="CSV file; a relative path resolves against"
                      " the scenario file's folder")
    column: str = Field("TIMESTAMP", min_length=1, description="column of request timestamps"
                        " (anything pandas.to_datetime parses); every hour of the day must"
                        " hold at least one request")


PoolNodes = Annotated[int, Field(ge=1)] | Literal["auto"]


class FleetPolicy(Strict):
    """How many nodes the fleet has, and how its size is chosen."""

    nodes: Annotated[int, Field(ge=1)] | Literal["auto"] | dict[str, PoolNodes] = Field(
        "auto", description="nodes in the fleet, or 'auto': the smallest fleet whose nodes each"
        " serve the peak hour's share within every class's SLO (per-node capacity found by a"
        " search over the rate on the sampled nodes) times headroom. An explicit fleet too small"
        " for the peak hour is an error that names the size that would meet it. A fleet of"
        " several pools (`pools:`) gives each pool its nodes: {pool: nodes or 'auto'}, at most"
        " one 'auto' (e.g. {h100: 1000, b200: auto}: keep 1,000 H100 nodes, add the B200 nodes"
        " that serve the rest of the peak at the SLO with headroom)")
    split: Literal["capacity"] | list[str] = Field(
        "capacity", description="several pools: how each hour's queries are shared. 'capacity':"
        " in proportion to each pool's nodes x per-node capacity at the SLO (a router that"
        " balances load by capacity: every pool equally loaded); or a fill order [pool, ...]:"
        " each pool in turn takes up to its nodes x capacity / headroom, the last one the rest"
        " (e.g. [b200, h100]: the efficient pool first, the old one as overflow)")
    headroom: float = Field(
        1.2, ge=1.0, le=10.0, description="spare-capacity factor, dimensionless: nodes ="
        " ceil(headroom x peak rate / per-node capacity at the SLO); the autoscaler keeps the"
        " same margin every hour. Default 1.2 is a user-chosen planning margin, not a"
        " measurement")
    slo_target: float = Field(
        0.99, gt=0.0, le=1.0, description="fraction of a class's requests that must meet both"
        " TTFT and TPOT targets for a rate to count as within the SLO (every class must);"
        " default 0.99 is a user choice (the same default as `fleetsim plot --slo-target`)")
    capacity_tolerance: float = Field(
        0.02, gt=0.0, le=0.5, description="relative precision of the per-node capacity search,"
        " dimensionless (the search stops when its bracket is narrower than this)")
    prefill_decode_splits: list[Annotated[list[Annotated[int, Field(ge=1, le=64)]],
                                           Field(min_length=2, max_length=2)]] | None = Field(
        None, min_length=1, max_length=32, description="a disaggregated fleet (one prefill and"
        " one decode pool): the cells [prefill nodes, decode nodes] to try, e.g. [[1, 1], [1, 2],"
        " [2, 3]]; each one's capacity at the SLO is searched and the cell with the most"
        " queries/s per node is projected (ties: the first given); every candidate is reported"
        " under disaggregation.split_search. Default: the cell the pools' deployment.nodes give")

    def pool_nodes(self, pool: str) -> int | str:
        """The nodes given for one pool of a multi-pool fleet (``nodes`` is a mapping)."""
        assert isinstance(self.nodes, dict)
        return self.nodes[pool]


class IdlePolicy(Strict):
    """What happens to capacity the load does not need."""

    policy: Literal["always_on", "autoscale"] = Field(
        "always_on", description="always_on: every node is on all day (idle time at idle power);"
        " autoscale: each hour only max(min_nodes, ceil(headroom x rate / per-node capacity))"
        " nodes are on, the others draw nothing")
    min_nodes: int = Field(1, ge=1, description="autoscale: nodes that are always on")
    warmup_s: float = Field(
        600.0, ge=0.0, le=3600.0, description="autoscale: a node switched on spends this long"
        " booting and loading weights before it serves, s, drawing node idle power (GPUs at"
        " calibrated idle power + host idle power; a lower bound: loading weights draws more)."
        " Default 600 s is a user-chosen figure, not a measurement")


class SampleSpec(Strict):
    """Scale by sampling: how each hour's per-node load is simulated."""

    nodes: int = Field(
        2, ge=1, le=64, description="nodes simulated together behind the scenario's router,"
        " each with its share of the traffic; their mean power is scaled to the fleet")
    requests: int = Field(
        2000, ge=50, le=1_000_000, description="measured arrivals per simulated load level (after"
        " warm-up), at least; the energy window runs from the first measured arrival to the last"
        " arrival. A level gets more when min_class_requests or window_lifetimes ask for it")
    min_class_requests: int = Field(
        400, ge=0, le=1_000_000, description="measured arrivals of the rarest class (share > 0)"
        " per level, at least: its SLO attainment (a 99th-percentile target) rests on them")
    window_lifetimes: float = Field(
        2.0, ge=0.0, le=100.0, description="the measured window spans at least this many"
        " SLO-bound lifetimes (ttft_s + mean output tokens x tpot_s) of the longest-lived class"
        " with share > 0, dimensionless")
    warmup_s: float | None = Field(
        None, ge=0.0, le=1e6, description="simulated time discarded before measuring, s; null ="
        " 2 x the longest SLO-bound request time (ttft_s + mean output tokens x tpot_s) of the"
        " classes with share > 0, so that the batch has filled to its steady state")
    level_tolerance: float = Field(
        0.01, ge=0.0, le=0.2, description="hours whose per-node rates lie within this relative"
        " spread share one simulation at their query-weighted mean rate; each hour's busy power"
        " is then moved to its own rate to first order (energy per request unchanged). 0 ="
        " one simulation per distinct rate")
    seed: int = Field(0, ge=0, description="root seed of the sampled simulations (each load"
                      " level has its own stream; draws reuse them: common random numbers)")


class CarbonSpec(Strict):
    """Grid carbon intensity, for tCO2 per day."""

    intensity_g_per_kwh: float | list[float] = Field(
        description="grid carbon intensity, gCO2/kWh of facility energy: one value, or 24"
        " (one per hour of day)")

    @field_validator("intensity_g_per_kwh")
    @classmethod
    def _ci(cls, v: float | list[float]) -> float | list[float]:
        vals = v if isinstance(v, list) else [v]
        if isinstance(v, list) and len(v) != HOURS_PER_DAY:
            raise ValueError(f"needs one value or exactly 24 (one per hour of day), got {len(v)}")
        for i, x in enumerate(vals):
            if not (math.isfinite(x) and 0 <= x <= 5000):
                raise ValueError(f"value {i} is {x}, must be in [0, 5000] gCO2/kWh")
        return v

    def hourly(self) -> list[float]:
        v = self.intensity_g_per_kwh
        return list(v) if isinstance(v, list) else [float(v)] * HOURS_PER_DAY


class UncertaintySpec(Strict):
    """Monte Carlo over what is not known exactly. Each draw picks one value of every input
    below, re-simulates every load level with perturbed physics (same random streams as the
    nominal projection) and re-integrates the day; P5/P50/P95 are taken over the draws. Every
    input is centred on the nominal projection's value (residuals on their median), so the band
    describes the spread and P50 sits near the nominal result."""

    draws: int = Field(100, ge=0, le=10000, description="Monte Carlo draws (0: report the"
                       " nominal projection as P5 = P50 = P95)")
    seed: int = Field(0, ge=0, description="seed of the draws of the uncertain inputs")
    timing_residuals: bool = Field(
        True, description="perturb iteration time by a systematic factor 1 / (1 + r) with r"
        " resampled from the calibration's held-out residuals (calibration file `residuals:`,"
        " predicted/measured - 1, centred on their median): `prefill_time` scales the"
        " compute-bound side of every"
        " kernel, `decode_time` the memory-bound side and fixed costs. Treats the spread across"
        " measured configurations as the uncertainty of one fleet-wide factor (conservative)")
    gpu_power_residuals: bool = Field(
        True, description="perturb busy GPU power by 1 / (1 + r), r resampled from the"
        " calibration's `gpu_power` residuals (ML.ENERGY steady-state runs); idle power is not"
        " perturbed (no idle rows in those data)")
    pue_offset: list[float] = Field(
        [-0.1, 0.1], description="range added to facility.pue [low, high], drawn uniformly (the"
        " PUE never goes below 1). Default +-0.1, centred on the nominal PUE: 'about 1.1-1.4 for"
        " AI datacenters; hyperscale sites report about 1.1-1.2' (calibration-sources README)")
    host_idle_scale: list[float] = Field(
        [0.7, 1.3], description="factor on the node's host idle power [low, high], drawn"
        " uniformly, centred on 1. Default +-30 %: the host idle figure is an estimate from"
        " component figures (no measured idle node in the sources)")
    host_load_scale: list[float] = Field(
        [0.7, 1.3], description="factor on the host load factor (host W per GPU W above idle)"
        " [low, high], drawn uniformly, centred on 1. Default +-30 %: one measured node peak"
        " anchors it")
    input_length_scale: list[float] = Field(
        [0.8, 1.25], description="factor on every class's prompt lengths [low, high],"
        " dimensionless, drawn log-uniformly (medians, means and fixed values of parametric"
        " distributions; every row of an empirical or replayed trace). Default 0.8-1.25 (a"
        " log-symmetric +-25 % band) is a user choice for planning, not measured: set it from"
        " your own traffic")
    output_length_scale: list[float] = Field(
        [0.8, 1.25], description="factor on every class's output lengths [low, high], as"
        " input_length_scale (same default and rationale)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        renamed = {"pue": "pue_offset (a range added to facility.pue, default [-0.1, 0.1])",
                   "host_idle_w": "host_idle_scale (a factor range, default [0.7, 1.3])",
                   "host_active_w": "host_load_scale (a factor range on the host load factor,"
                                    " default [0.7, 1.3])"}
        if isinstance(data, dict):
            for old, new in renamed.items():
                if old in data:
                    raise ValueError(f"{old} was replaced by {new}, centred on the nominal value:"
                                     f" remove {old}")
        return data

    @field_validator("pue_offset")
    @classmethod
    def _pue(cls, v: list[float]) -> list[float]:
        return _range(v, "pue_offset", -1.0, 1.0)

    @field_validator("host_idle_scale", "host_load_scale")
    @classmethod
    def _host(cls, v: list[float]) -> list[float]:
        return _range(v, "host scale", 0.0, 5.0)

    @field_validator("input_length_scale", "output_length_scale")
    @classmethod
    def _scale(cls, v: list[float]) -> list[float]:
        _range(v, "length scale", 0.05, 20.0)
        return v


class ProjectionSpec(Strict):
    """A fleet-day: daily volume x daily curve x the workload's query mix, on a fleet of the
    scenario's nodes; used by ``fleetsim project`` (ignored by ``fleetsim run``)."""

    queries_per_day: float = Field(gt=0, le=1e13, description="queries served per day (all"
                                   " classes), queries/day; e.g. 1.0e9")
    hourly_multipliers: list[float] | None = Field(
        None, description="daily load curve: 24 non-negative factors, one per hour of day"
        " (only their ratios matter: hour h gets queries_per_day x m[h] / sum(m)); null ="
        " workload.hourly_multipliers, or curve_trace, or a flat day")
    curve_trace: CurveTrace | None = Field(
        None, description="daily load curve from a timestamp trace (requests per hour of day);"
        " give this or hourly_multipliers, not both")
    fleet: FleetPolicy = Field(default_factory=FleetPolicy, description="fleet size")
    idle: IdlePolicy = Field(default_factory=IdlePolicy, description="idle capacity policy")
    sample: SampleSpec = Field(default_factory=SampleSpec, description="sampled simulation")
    uncertainty: UncertaintySpec = Field(default_factory=UncertaintySpec,
                                         description="Monte Carlo inputs and ranges")
    carbon: CarbonSpec | None = Field(None, description="grid carbon intensity (optional)")

    @field_validator("hourly_multipliers")
    @classmethod
    def _hourly(cls, v: list[float] | None) -> list[float] | None:
        return v if v is None else check_daily_curve(v)

    @model_validator(mode="after")
    def _one_curve(self) -> "ProjectionSpec":
        if self.hourly_multipliers is not None and self.curve_trace is not None:
            raise ValueError("give hourly_multipliers or curve_trace, not both")
        return self


def check_projection(sc: Any) -> None:
    """Cross-section rules (called by the Scenario validator); raise ValueError naming the
    field path relative to the scenario."""
    p = sc.projection
    if p is None:
        return
    disaggregated = sc.pools is not None and any(pool.role == "prefill" for pool in sc.pools)
    if disaggregated:
        check_cell_fleet(p.fleet, [pool.role for pool in sc.pools], sc.workload.arrival)
    elif p.fleet.prefill_decode_splits is not None:
        raise ValueError("projection.fleet.prefill_decode_splits: a split is for a disaggregated"
                         " fleet (pools of role prefill and decode); remove it")
    elif sc.pools is not None and len(sc.pools) > 1:
        check_pool_fleet(p.fleet, [pool.name for pool in sc.pools], sc.workload.arrival)
    elif isinstance(p.fleet.nodes, dict):
        raise ValueError("projection.fleet.nodes: a mapping {pool: nodes} is for a fleet of"
                         " several pools (`pools:`); give a number or 'auto'")
    elif p.fleet.split != "capacity":
        raise ValueError("projection.fleet.split: a fill order is for a fleet of several pools")
    if sc.workload.arrival == "closed_loop":
        raise ValueError("workload.arrival: a projection needs open-loop arrivals (poisson,"
                         " gamma or replay); closed_loop sets its own rate")
    pw = sc.power
    for name in ("node_caps_w", "replica_caps_w", "rows", "row_budget_w", "oversubscription"):
        if getattr(pw, name, None) is not None:
            raise ValueError(f"power.{name}: per-node caps and row budgets are not projected"
                             " (sampled nodes have no fleet position); use"
                             " deployment.gpu_cap_w for a fleet-wide GPU cap")
    if (isinstance(p.fleet.nodes, int) and p.idle.policy == "autoscale"
            and p.idle.min_nodes > p.fleet.nodes):
        raise ValueError(f"projection.idle.min_nodes ({p.idle.min_nodes}) exceeds"
                         f" projection.fleet.nodes ({p.fleet.nodes})")


def check_cell_fleet(fleet: FleetPolicy, roles: list[str], arrival: str) -> None:
    """Rules of a disaggregated projection fleet (ValueError naming the field): it is sized in
    cells of its pools (their deployment.nodes), so its size is 'auto'; a split search needs
    one prefill and one decode pool; arrivals are open-loop and synthetic (a cell's share of a
    replayed trace is not modelled)."""
    if fleet.nodes != "auto":
        raise ValueError("projection.fleet.nodes: a disaggregated fleet is sized in cells of its"
                         " pools (each pool's deployment.nodes per cell); set it to 'auto' (a"
                         f" given fleet is not projected yet), not {fleet.nodes!r}")
    if fleet.split != "capacity":
        raise ValueError("projection.fleet.split: a fill order is for pools that serve whole"
                         " requests, not for a disaggregated fleet")
    if fleet.prefill_decode_splits is not None and sorted(roles) != ["decode", "prefill"]:
        raise ValueError("projection.fleet.prefill_decode_splits: a split search needs exactly"
                         f" one prefill and one decode pool (the pools' roles: {roles})")
    if arrival not in ("poisson", "gamma"):
        raise ValueError(f"workload.arrival: a disaggregated projection needs poisson or gamma"
                         f" arrivals (got {arrival!r})")


def check_pool_fleet(fleet: FleetPolicy, pools: list[str], arrival: str) -> None:
    """Rules of a multi-pool projection fleet (ValueError naming the field)."""
    if not isinstance(fleet.nodes, dict):
        raise ValueError(f"projection.fleet.nodes: a fleet of several pools needs each pool's"
                         f" nodes, {{pool: nodes or 'auto'}} (e.g. {{{pools[0]}: 1000,"
                         f" {pools[-1]}: auto}}), not {fleet.nodes!r}")
    names = set(pools)
    for k in fleet.nodes:
        if k not in names:
            raise ValueError(f"projection.fleet.nodes: no pool named {k!r} (pools:"
                             f" {', '.join(pools)})")
    missing = [n for n in pools if n not in fleet.nodes]
    if missing:
        raise ValueError(f"projection.fleet.nodes: pool {missing[0]!r} has no entry (give its"
                         " nodes or 'auto')")
    autos = [k for k, v in fleet.nodes.items() if v == "auto"]
    if len(autos) > 1:
        raise ValueError(f"projection.fleet.nodes: at most one pool may be 'auto' (got"
                         f" {', '.join(autos)}); give the others' nodes")
    if isinstance(fleet.split, list):
        if sorted(fleet.split) != sorted(pools):
            raise ValueError(f"projection.fleet.split: a fill order names every pool once"
                             f" (pools: {', '.join(pools)}; got {', '.join(fleet.split)})")
    if arrival not in ("poisson", "gamma"):
        raise ValueError(f"workload.arrival: a projection of several pools needs poisson or"
                         f" gamma arrivals (got {arrival!r}); project a replayed trace on one"
                         " pool")
