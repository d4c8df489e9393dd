"""Per-op fits: GEMM and element-wise roofline coefficients, NCCL all-reduce lines.

Model forms (the timing model's, see :class:`~simulator.physics.params.RooflineOp`):

* GEMM ``op`` on ``m`` tokens, ``K x N`` weights on one GPU::

      t = overhead_s + max(2 m K N / (peak * eta_c(m)), (K N w + m (K + N) a) / (bw * eta_memory))
      eta_c(m) = eta_compute_max * m / (m + m_half_tokens)

  one coefficient set per op (qkv, o, up, down) shared by every model and TP degree, so an
  unseen model is predicted from its GEMM shapes alone. ``lm_head`` (not in the tables) and
  ``default`` use the fit pooled over the four GEMMs.
* element-wise op: ``t = overhead_s + bytes / (bw * eta_memory)``.
* all-reduce of ``b`` bytes over ``p`` GPUs: ``t = alpha_s + beta_s_per_byte * b``.

Fits are weighted least squares of the relative residual (prediction / measurement - 1),
deterministic (fixed start, no randomness). Token counts are weighted so that every octave of
``m`` counts the same (the tables sample large ``m`` densely, while decode batches live at
small ``m``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from simulator.calibration.sources import ELEMENTWISE_OPS, GEMM_OPS
from simulator.calibration.anchors import h100_gpu
from simulator.physics.params import AllReduceFit, RooflineOp

ACT = 2.0      # activation bytes (bf16)
W_BF16 = 2.0   # weight bytes of the Vidur tables (fp16/bf16)


def _logn_weights(n: np.ndarray) -> np.ndarray:
    """Weight of each point: the span in log(n) it represents within its own curve."""
    u = np.unique(n)
    if len(u) == 1:
        return np.ones_like(n, dtype=float)
    lu = np.log(u)
    w = np.gradient(lu)
    return pd.Series(w, index=u).reindex(n).to_numpy()


def curve_weights(df: pd.DataFrame) -> np.ndarray:
    """Per-row weights: equal weight per octave of tokens within each (model, tp, op) curve,
    each curve normalised to total weight 1 (models with more rows do not dominate)."""
    w = np.zeros(len(df))
    for _, idx in df.groupby(["model", "tp", "op", "vidur_op"]).indices.items():
        wi = _logn_weights(df["n_tokens"].to_numpy()[idx])
        w[idx] = wi / wi.sum()
    return w


def gemm_time(op: RooflineOp, m, K, N, peak=None, bw=None, w_bytes=W_BF16):
    """Vectorised :func:`simulator.physics.timing.roofline_s` for GEMMs (seconds); ``peak`` and
    ``bw`` default to the H100's."""
    peak = h100_gpu().peak_bf16_flops if peak is None else peak
    bw = h100_gpu().hbm_bw_bytes_per_s if bw is None else bw
    m, K, N = (np.asarray(x, dtype=float) for x in (m, K, N))
    flops = 2.0 * m * K * N
    nbytes = K * N * w_bytes + m * (K + N) * ACT
    eta_c = op.eta_compute_max * (m / (m + op.m_half_tokens) if op.m_half_tokens > 0 else 1.0)
    return op.overhead_s + np.maximum(flops / (peak * eta_c), nbytes / (bw * op.eta_memory))


def elementwise_time(op: RooflineOp, m, bytes_per_row, bw=None):
    bw = h100_gpu().hbm_bw_bytes_per_s if bw is None else bw
    m = np.asarray(m, dtype=float)
    return op.overhead_s + m * np.asarray(bytes_per_row, float) / (bw * op.eta_memory)


def predict_ops(df: pd.DataFrame, gemm: dict[str, RooflineOp], elem: dict[str, RooflineOp]) -> np.ndarray:
    """Predicted seconds for every row of a tidy op table."""
    pred = np.full(len(df), np.nan)
    for op, idx in df.groupby("op").indices.items():
        g = df.iloc[idx]
        if op in GEMM_OPS:
            p = gemm.get(op) or gemm["default"]
            pred[idx] = gemm_time(p, g["n_tokens"], g["K"], g["N"])
        else:
            p = elem.get(op) or elem["default"]
            pred[idx] = elementwise_time(p, g["n_tokens"], g["bytes_per_row"])
    return pred


# ------------------------------------------------------------------ fitting
_GEMM_X0 = np.array([0.7, 100.0, 0.85, 5e-6])
_GEMM_LB = np.array([0.05, 0.0, 0.05, 0.0])
_GEMM_UB = np.array([1.0, 5000.0, 1.0, 1e-3])
_GEMM_SCALE = np.array([0.1, 50.0, 0.1, 2e-6])


def _gemm_op(x: np.ndarray) -> RooflineOp:
    return RooflineOp(eta_compute_max=float(x[0]), m_half_tokens=float(x[1]),
                      eta_memory=float(x[2]), overhead_s=float(x[3]))


def fit_gemm(df: pd.DataFrame) -> RooflineOp:
    """Fit one GEMM coefficient set to the rows of ``df`` (any mix of ops, models, TPs)."""
    m, K, N, t = (df[c].to_numpy(float) for c in ("n_tokens", "K", "N", "t_s"))
    sw = np.sqrt(curve_weights(df))

    def resid(x):
        return (gemm_time(_gemm_op(x), m, K, N) / t - 1.0) * sw

    r = least_squares(resid, _GEMM_X0, bounds=(_GEMM_LB, _GEMM_UB), x_scale=_GEMM_SCALE,
                      method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
    x = np.round(r.x, 12)
    return _gemm_op(np.clip(x, _GEMM_LB + [1e-9, 0, 1e-9, 0], _GEMM_UB))


def fit_elementwise(df: pd.DataFrame) -> RooflineOp:
    m, b, t = (df[c].to_numpy(float) for c in ("n_tokens", "bytes_per_row", "t_s"))
    sw = np.sqrt(curve_weights(df))
    x0, lb, ub, sc = np.array([0.5, 3e-6]), np.array([0.01, 0.0]), np.array([1.0, 1e-3]), np.array([0.1, 1e-6])

    def resid(x):
        op = RooflineOp(eta_memory=float(x[0]), overhead_s=float(x[1]))
        return (elementwise_time(op, m, b) / t - 1.0) * sw

    r = least_squares(resid, x0, bounds=(lb, ub), x_scale=sc, method="trf", xtol=1e-12,
                      ftol=1e-12, gtol=1e-12, max_nfev=2000)
    x = np.round(r.x, 12)
    return RooflineOp(eta_memory=float(min(max(x[0], 1e-6), 1.0)), overhead_s=float(max(x[1], 0.0)))


def fit_all_ops(df: pd.DataFrame) -> tuple[dict[str, RooflineOp], dict[str, RooflineOp]]:
    """Fit every GEMM and element-wise op present in ``df``; adds ``default`` and ``lm_head``."""
    gemm: dict[str, RooflineOp] = {}
    g = df[df["op"].isin(GEMM_OPS)]
    for op in GEMM_OPS:
        sub = g[g["op"] == op]
        if len(sub):
            gemm[op] = fit_gemm(sub)
    pooled = fit_gemm(g)
    gemm["default"] = pooled
    gemm["lm_head"] = pooled
    elem: dict[str, RooflineOp] = {}
    e = df[df["op"].isin(ELEMENTWISE_OPS)]
    for op in ELEMENTWISE_OPS:
        sub = e[e["op"] == op]
        if len(sub):
            elem[op] = fit_elementwise(sub)
    elem["default"] = fit_elementwise(e[e["op"] != "emb"])
    return gemm, elem


def lomo_ops(df: pd.DataFrame, progress=None) -> pd.DataFrame:
    """Leave-one-model-out: refit without each model, predict its rows.

    Returns ``df`` with columns ``pred_s`` (fit on all models) and ``pred_lomo_s``.
    """
    out = df.copy()
    gemm, elem = fit_all_ops(df)
    out["pred_s"] = predict_ops(df, gemm, elem)
    out["pred_lomo_s"] = np.nan
    for model in sorted(df["model"].unique()):
        train = df[df["model"] != model]
        test_idx = np.flatnonzero((df["model"] == model).to_numpy())
        g2, e2 = fit_all_ops(train)
        out.iloc[test_idx, out.columns.get_loc("pred_lomo_s")] = predict_ops(df.iloc[test_idx], g2, e2)
        if progress:
            progress(1)
    return out


# ------------------------------------------------------------------ NCCL
def fit_collective(df: pd.DataFrame) -> dict[int, AllReduceFit]:
    """``alpha + beta * bytes`` per group size, relative least squares (equal weight per
    octave of message size)."""
    fits: dict[int, AllReduceFit] = {}
    for p, g in sorted(df.groupby("workers")):
        b, t = g["bytes"].to_numpy(float), g["t_s"].to_numpy(float)
        sw = np.sqrt(_logn_weights(b))

        def resid(x):
            return ((x[0] + x[1] * b) / t - 1.0) * sw

        r = least_squares(resid, np.array([2e-5, 1e-12]), bounds=([0, 0], [1e-2, 1e-9]),
                          x_scale=np.array([1e-5, 1e-12]), method="trf", xtol=1e-14, ftol=1e-14,
                          gtol=1e-14, max_nfev=2000)
        fits[int(p)] = AllReduceFit(alpha_s=float(np.round(r.x[0], 12)),
                                    beta_s_per_byte=float(r.x[1]))
    return fits


def predict_collective(df: pd.DataFrame, fits: dict[int, AllReduceFit]) -> np.ndarray:
    out = np.full(len(df), np.nan)
    for p, idx in df.groupby("workers").indices.items():
        f = fits[int(p)]
        out[idx] = f.alpha_s + f.beta_s_per_byte * df["bytes"].to_numpy(float)[idx]
    return out


def mape(pred, meas) -> float:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    return float(np.mean(np.abs(pred / meas - 1.0)))
