"""DVFS power-cap model: the clock at which an iteration's power meets the GPU's cap.

Pure: a function of the iteration's work (per GPU), the power coefficients and the cap.

Model (clock ratio ``r = f / f_max`` in ``[r_min, 1]``; all quantities per GPU):

* time: the iteration's compute-bound part ``t_c = min(T0, FLOPs / sustained_flops_per_s)``
  stretches as ``1 / r``; the memory-bound rest ``t_m = T0 - t_c`` only through the fraction
  ``mem_clock_sensitivity`` (mu) of it that depends on the SM clock (launches, address math,
  non-overlapped compute): ``T(r) = t_c / r + t_m (1 + mu (1 / r - 1))``.
* power: the core (SM, L2, NVLink; everything but HBM) demanded at full clock,
  ``P_core0 = p_busy_w + p_active_w * A / T0`` (A: tensor-active time), has a clock-independent fraction
  ``static_fraction`` (s: leakage, board, the voltage floor) and a dynamic rest that scales as
  ``r^k`` (``P = C V^2 f`` with ``V`` roughly linear in ``f`` over the DVFS range: k about 2-3);
  HBM energy per byte is unchanged (separate voltage domain), so HBM power is
  ``e_byte_j * bytes / T(r)``:
  ``P(r) = P_core0 (s + (1 - s) r^k) + e_byte_j * bytes / T(r)``, increasing in r.
* the cap: if ``P(1) <= cap`` nothing changes (bit-identical to uncapped). Otherwise r solves
  ``P(r) = cap`` (bisection, monotone in the cap). If even ``P(r_min) > cap`` the GPU also
  duty-cycles at ``r_min``: the energy ``P(r_min) T(r_min)`` is spread at exactly the cap.

Postconditions: time >= uncapped time; energy / time <= cap (to rounding of 1e-12
relative); a tighter cap never gives a shorter time.

Calibration (:mod:`simulator.calibration.dvfs_fit`, result in the device profile's ``dvfs.yaml``):
s is fitted so that a DGX-H100 node capped to 70 % of its 10.2 kW rating slows llama2-70b TP8 prefill
by 1.3x (Splitwise, ISCA 2024); k, mu and the sustained FLOP rate are fixed from physics and
datasheets, their ranges propagate into the uncertainty of s (see the yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.physics.activity import activity_s
from simulator.physics.params import PowerParams
from simulator.physics.timing import Work

BISECT_STEPS = 48  # r to ~4e-15: far below any timing resolution


@dataclass(frozen=True, slots=True)
class DVFSParams:
    """Parameters of the clock model (dimensionless unless the name has a unit); a device
    profile's ``dvfs.yaml`` gives every one (no silent defaults)."""

    static_fraction: float        # s: clock-independent share of core power (fitted)
    k_dyn: float                  # dynamic core power ~ r^k (range 2-3)
    mem_clock_sensitivity: float  # mu: share of memory-bound time that scales 1/r (0.05-0.2)
    sustained_flops_per_s: float  # dense GEMMs reach ~75-80 % of the BF16 peak
    r_min: float                  # lowest usable clock ratio (~400 MHz / 1980 MHz on an H100)

    def __post_init__(self) -> None:
        for name, lo, hi in (("static_fraction", 0.0, 0.999), ("k_dyn", 1.0, 4.0),
                             ("mem_clock_sensitivity", 0.0, 1.0), ("r_min", 0.01, 1.0)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ValueError(f"dvfs.{name} must be in [{lo}, {hi}] (got {v})")
        if not self.sustained_flops_per_s > 0:
            raise ValueError(f"dvfs.sustained_flops_per_s must be > 0 (got {self.sustained_flops_per_s})")


class ClockModel:
    """One iteration under DVFS: ``time_s(r)``, ``power_w(r)``; see the module docstring."""

    __slots__ = ("t_c", "t_m", "mu", "p_core0", "e_hbm_j", "s", "k")

    def __init__(self, p: PowerParams, w: Work, d: DVFSParams, active_s: float | None = None):
        """``active_s``: the iteration's active time ``activity_s(p, w.phases)`` where the
        caller has it already (the same value: it is not computed again)."""
        self.t_c = min(w.time_s, w.flops / d.sustained_flops_per_s)
        self.t_m = w.time_s - self.t_c
        self.mu, self.s, self.k = d.mem_clock_sensitivity, d.static_fraction, d.k_dyn
        self.e_hbm_j = p.e_byte_j * w.hbm_bytes
        if active_s is None:
            active_s = activity_s(p, w.phases)
        self.p_core0 = p.p_busy_w + p.p_active_w * active_s / w.time_s

    def time_s(self, r: float) -> float:
        return self.t_c / r + self.t_m * (1.0 + self.mu * (1.0 / r - 1.0))

    def power_w(self, r: float) -> float:
        return self.p_core0 * (self.s + (1.0 - self.s) * r ** self.k) + self.e_hbm_j / self.time_s(r)

    def ratio_at(self, cap_w: float, r_min: float) -> float:
        """Clock ratio at which the iteration settles under ``cap_w`` (see :func:`clock_ratio`)."""
        if self.power_w(1.0) <= cap_w:
            return 1.0
        if self.power_w(r_min) > cap_w:
            return r_min
        # bisection on power(lo) <= cap < power(hi), power_w and time_s written out (the same
        # expressions, so the same bits): this runs for every capped iteration
        p_core0, s, one_s, k = self.p_core0, self.s, 1.0 - self.s, self.k
        e_hbm_j, t_c, t_m, mu = self.e_hbm_j, self.t_c, self.t_m, self.mu
        lo, hi = r_min, 1.0
        for _ in range(BISECT_STEPS):
            mid = 0.5 * (lo + hi)
            if (p_core0 * (s + one_s * mid ** k)
                    + e_hbm_j / (t_c / mid + t_m * (1.0 + mu * (1.0 / mid - 1.0)))) <= cap_w:
                lo = mid
            else:
                hi = mid
        return lo


def clock_ratio(p: PowerParams, w: Work, cap_w: float, d: DVFSParams) -> float:
    """Clock ratio the GPU settles at under ``cap_w`` (1.0 if the cap does not bind)."""
    return ClockModel(p, w, d).ratio_at(cap_w, d.r_min)


def dvfs_capped(p: PowerParams, w: Work, energy_j: float, cap_w: float,
                d: DVFSParams, active_s: float | None = None) -> tuple[float, float]:
    """``(time_s, energy_j)`` per GPU of an iteration of work ``w`` (uncapped energy
    ``energy_j``) under ``cap_w``. Exactly ``(w.time_s, energy_j)`` when the cap does not bind.
    ``active_s``: ``activity_s(p, w.phases)`` where the caller has it (see :class:`ClockModel`)."""
    if energy_j / w.time_s <= cap_w:
        return w.time_s, energy_j
    m = ClockModel(p, w, d, active_s)
    if m.power_w(d.r_min) > cap_w:  # even the lowest clock is too hot: duty-cycle at r_min
        e = m.power_w(d.r_min) * m.time_s(d.r_min)
        return e / cap_w, e
    r = m.ratio_at(cap_w, d.r_min)  # clock_ratio, on the model already built
    t = m.time_s(r)
    return t, min(m.power_w(r), cap_w) * t
