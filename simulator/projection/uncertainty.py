"""Monte Carlo inputs: one value of every uncertain input per draw.

Each input has its own random stream (``SeedSequence(seed, spawn_key=(i,))`` with a fixed index
per input), so switching one input off never changes the draws of the others. Distributions:

* timing: a systematic factor ``1 / (1 + r)`` per side, ``r`` resampled (bootstrap) from the
  calibration's held-out residuals ``prefill_time`` (compute-bound side) and ``decode_time``
  (memory-bound side and fixed costs); residuals are ``predicted / measured - 1``, so the true
  time is the predicted time / (1 + r);
* busy GPU power: ``1 / (1 + r)``, ``r`` resampled from ``gpu_power`` residuals;
* residuals are centred on their median first, so the factors' median is 1 (the band shows the
  spread; the nominal keeps the fit); the medians removed are reported;
* PUE: the nominal plus a uniform offset; host idle power and host load factor: the nominal
  times a uniform factor (every range centred on the nominal by default);
* prompt and output length scales: log-uniform on the declared ranges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.physics.params import Calibration
from simulator.projection.day import Facility
from simulator.projection.sample import Perturbation
from simulator.scenario.projection import UncertaintySpec

#: fixed stream index of each input (never reorder: it would change every draw)
STREAMS = {"prefill_time": 0, "decode_time": 1, "gpu_power": 2, "pue": 3, "host_idle_w": 4,
           "host_load_factor": 5, "input_length_scale": 6, "output_length_scale": 7}


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[name],)))


def residual_median(cal: Calibration, name: str) -> float:
    """The median of a calibration residual (its bias), 0 without residuals."""
    res = np.asarray(cal.residuals.get(name, []), float)
    return float(np.median(res)) if res.size else 0.0


def draw_inputs(u: UncertaintySpec, cal: Calibration, nominal: Facility) -> pd.DataFrame:
    """One row per draw: the residuals used and every input's value (factors dimensionless,
    powers W), centred on ``nominal`` (the scenario's facility figures)."""
    n = u.draws
    out: dict[str, np.ndarray] = {"draw": np.arange(1, n + 1)}

    def residual_factor(name: str, on: bool) -> np.ndarray:
        res = np.asarray(cal.residuals.get(name, []), float)
        if not on or res.size == 0:
            return np.ones(n)
        r = _rng(u.seed, name).choice(res - np.median(res), size=n, replace=True)
        return 1.0 / (1.0 + r)

    def uniform(name: str, lo: float, hi: float) -> np.ndarray:
        return _rng(u.seed, name).uniform(lo, hi, size=n) if hi > lo else np.full(n, lo)

    out["compute_time_factor"] = residual_factor("prefill_time", u.timing_residuals)
    out["memory_time_factor"] = residual_factor("decode_time", u.timing_residuals)
    out["gpu_power_factor"] = residual_factor("gpu_power", u.gpu_power_residuals)
    out["pue"] = np.maximum(1.0, nominal.pue + uniform("pue", *u.pue_offset))
    out["host_idle_w"] = nominal.host_idle_w * uniform("host_idle_w", *u.host_idle_scale)
    out["host_load_factor"] = nominal.host_load_factor * uniform("host_load_factor",
                                                                 *u.host_load_scale)
    for name in ("input_length_scale", "output_length_scale"):
        lo, hi = getattr(u, name)
        out[name] = (np.exp(_rng(u.seed, name).uniform(np.log(lo), np.log(hi), size=n))
                     if hi > lo else np.full(n, lo))
    return pd.DataFrame(out)


def perturbation(row: pd.Series) -> tuple[Perturbation, Facility]:
    return (Perturbation(float(row["compute_time_factor"]), float(row["memory_time_factor"]),
                         float(row["gpu_power_factor"]), float(row["input_length_scale"]),
                         float(row["output_length_scale"])),
            Facility(float(row["pue"]), float(row["host_idle_w"]), float(row["host_load_factor"])))


def sensitivity(draws: pd.DataFrame, target: str, inputs: list[str],
                ranges: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Tornado rows from the draws: a least-squares linear fit of ``target`` on the inputs,
    evaluated with each input at its range ends and the others at their means. Inputs that did
    not vary are left out."""
    use = [c for c in inputs if draws[c].std() > 0]
    if len(draws) < len(use) + 3 or not use:
        return pd.DataFrame(columns=["input", "low", "high", "gwh_low", "gwh_high"])
    x = draws[use].to_numpy(float)
    mean = x.mean(axis=0)
    a = np.column_stack([np.ones(len(x)), x - mean])
    coef, *_ = np.linalg.lstsq(a, draws[target].to_numpy(float), rcond=None)
    base = coef[0]
    rows = []
    for i, c in enumerate(use):
        lo, hi = ranges[c]
        rows.append({"input": c, "low": lo, "high": hi,
                     "gwh_low": base + coef[i + 1] * (lo - mean[i]),
                     "gwh_high": base + coef[i + 1] * (hi - mean[i])})
    return pd.DataFrame(rows)
