"""Small statistics of a projection's summary, shared by one-pool and multi-pool projections:
quantiles of pooled per-request energies, percentiles over draws, energy per output token."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from simulator.scenario.schema import Scenario


def weighted_quantiles(values: list[np.ndarray], weights: list[float],
                        qs: list[float]) -> list[float]:
    """Quantiles of the pooled values where each array's values share its weight equally."""
    v = [a for a in values if a.size]
    w = [wt / a.size for a, wt in zip(values, weights) if a.size]
    if not v:
        return [math.nan] * len(qs)
    x = np.concatenate(v)
    ww = np.concatenate([np.full(a.size, wi) for a, wi in zip(v, w)])
    order = np.argsort(x, kind="stable")
    x, ww = x[order], ww[order]
    cw = np.cumsum(ww) / ww.sum()
    return [float(x[min(np.searchsorted(cw, q, side="left"), x.size - 1)]) for q in qs]


def output_tokens_per_day(sc: Scenario, queries_per_day: float) -> float:
    """Output tokens a day of ``queries_per_day`` queries carries: the class shares times each
    class's mean output length (its sampler's, or its trace rows')."""
    from simulator.projection.sample import class_shares, mean_output_tokens

    means, shares = mean_output_tokens(sc), class_shares(sc)
    return queries_per_day * sum(sh * means[c] for c, sh in shares.items()
                                 if sh > 0 and not math.isnan(means[c]))


def per_token(sc: Scenario, tot: dict[str, float], queries: float) -> dict[str, float]:
    """The day's energy per output token, J: GPUs (busy and idle, as GPU-metered benchmarks
    count a whole server) and facility (GPUs + hosts, x PUE)."""
    n = output_tokens_per_day(sc, queries)
    if not n > 0:
        return {"output_tokens_per_day": n, "j_per_output_token_gpu": math.nan,
                "j_per_output_token_facility": math.nan}
    return {"output_tokens_per_day": n, "j_per_output_token_gpu": tot["energy_gpu_j"] / n,
            "j_per_output_token_facility": tot["energy_facility_j"] / n}


def pct(x: pd.Series, q: float) -> float:
    x = x.dropna()
    return float(np.percentile(x, q)) if len(x) else math.nan


def energy_keys(g: Callable[[str], float]) -> dict[str, float]:
    """The nominal day's energy keys of a projection summary (GWh/day), from ``g``: the day's
    total of an hourly ``energy_*_j`` column in GWh."""
    return {
        "gwh_per_day_facility_nominal": g("energy_facility_j"),
        "gwh_per_day_it_nominal": g("energy_it_j"),
        "gwh_per_day_gpu": g("energy_gpu_j"),
        "gwh_per_day_host": g("energy_host_j"),
        "gwh_per_day_facility_overhead": g("energy_facility_j") - g("energy_it_j"),
        "gwh_per_day_gpu_prefill": g("energy_gpu_prefill_j"),
        "gwh_per_day_gpu_decode": g("energy_gpu_decode_j"),
        "gwh_per_day_gpu_idle": g("energy_gpu_idle_j"),
        "gwh_per_day_host_idle": g("energy_host_idle_j"),
        "gwh_per_day_host_busy": g("energy_host_busy_j"),
        "gwh_per_day_warmup": g("energy_warmup_j"),
    }
