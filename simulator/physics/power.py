"""GPU power and energy of an iteration: a pure function of its work and the GPU's cap.

While busy, a GPU draws ``P = p_busy_w + e_flop_j * FLOPs / t + e_byte_j * bytes / t``: a
clocks-up floor plus energy per tensor FLOP and per HBM byte at the achieved rates (the timing
model's work). Prefill (compute-bound) lands near the 700 W limit, decode (memory-bound) far
below it. Idle GPUs draw ``idle_w``.

Cap: when demanded power exceeds the cap, the GPU lowers its clock until it meets the cap.
:func:`iteration_cost` applies the DVFS model of :mod:`simulator.physics.dvfs`
(:func:`capped` is the older energy-conserving stretch, kept for comparison); the rest of the simulator only sees
``(time_s, energy_j)`` per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from simulator.hardware import H100, GPUSpec
from simulator.physics.dvfs import dvfs_capped
from simulator.physics.params import PowerParams
from simulator.physics.timing import DecodeLine, Work


@dataclass(slots=True)
class Cost:
    """Duration of an iteration and the energy one GPU of the replica spends on it."""

    time_s: float
    energy_j: float

    @property
    def power_w(self) -> float:
        return self.energy_j / self.time_s


def for_precision(p: PowerParams, precision: str, gpu: GPUSpec = H100) -> PowerParams:
    """Power coefficients for GEMMs in ``precision``.

    ``e_flop_j`` is fitted on BF16 runs (every measured dense run is BF16). It is read as the
    energy of one tensor-core cycle at full utilisation divided by the BF16 FLOPs per cycle, so
    a precision with ``k`` times the dense peak (FP8: 2x) does ``k`` times the FLOPs per cycle
    for the same energy: ``e_flop_j x peak_bf16 / peak``. Without this, an FP8 prefill would
    demand ~1.3 kW per GPU and run slower than BF16 under the 700 W limit. This is a modelling
    assumption (no FP8 dense power measurement in calibration/), stated in the README.
    """
    ratio = gpu.peak_bf16_flops / gpu.peak_flops(precision)
    if ratio == 1.0:
        return p
    return p.model_copy(update={"e_flop_j": p.e_flop_j * ratio})


def demanded_energy_j(p: PowerParams, w: Work) -> float:
    """Energy per GPU of an iteration run at full clocks (no cap)."""
    return p.p_busy_w * w.time_s + p.e_flop_j * w.flops + p.e_byte_j * w.hbm_bytes


def capped(time_s: float, energy_j: float, cap_w: float) -> Cost:
    """Apply a power cap to an iteration that needs ``energy_j`` over ``time_s`` at full clocks.

    First-order DVFS model: when ``energy_j / time_s > cap_w`` the iteration is stretched until
    its power equals the cap, at unchanged energy (``time = energy / cap``). Never faster than
    uncapped, never above the cap. A later calibration (issue 4) refines the clock dependence.
    """
    if energy_j > cap_w * time_s:
        return Cost(energy_j / cap_w, energy_j)
    return Cost(time_s, energy_j)


def iteration_cost(p: PowerParams, w: Work, cap_w: float) -> Cost:
    """Time and per-GPU energy of one iteration under ``cap_w`` (DVFS model:
    :mod:`simulator.physics.dvfs`; bit-identical to uncapped where the cap does not bind)."""
    t = w.time_s
    e = p.p_busy_w * t + p.e_flop_j * w.flops + p.e_byte_j * w.hbm_bytes  # demanded_energy_j
    if e / t <= cap_w:  # the cap does not bind (the same test as dvfs_capped's first line)
        return Cost(t, e)
    return Cost(*dvfs_capped(p, w, e, cap_w))


class DecodeSpan:
    """Closed-form cost of k consecutive decode-only iterations of a fixed batch, uncapped.

    Iteration j (0-based) of a batch of n sequences whose contexts sum to ``c0`` at j = 0 has
    context ``c = c0 + n j``; its time ``t0_s + t1_s c`` and per-GPU energy ``e0_j + e1_j c``
    are linear in it (:class:`DecodeLine`), so sums over j and their inverse have closed forms.
    Where the cap binds (demanded power ``e(c) / t(c)`` above the cap, a linear condition in c)
    the engine steps one iteration at a time with :meth:`one`, which applies the cap model.
    """

    __slots__ = ("line", "params", "n_seqs", "t0_s", "t1_s", "e0_j", "e1_j", "cap_w", "g0", "g1",
                 "free")

    def __init__(self, line: DecodeLine, p: PowerParams, cap_w: float):
        self.line, self.params, self.n_seqs, self.cap_w = line, p, line.n_seqs, cap_w
        self.t0_s, self.t1_s = line.t0_s, line.t1_s
        self.e0_j = p.p_busy_w * line.t0_s + p.e_flop_j * line.f0 + p.e_byte_j * line.b0
        self.e1_j = p.p_busy_w * line.t1_s + p.e_flop_j * line.f1 + p.e_byte_j * line.b1
        # the cap binds where g(c) = g0 + g1 c > 0
        self.g0, self.g1 = self.e0_j - cap_w * self.t0_s, self.e1_j - cap_w * self.t1_s
        self.free = self.g0 <= 0.0 and self.g1 <= 0.0  # the cap binds at no context c >= 0

    @staticmethod
    def of(line: DecodeLine, p: PowerParams, cap_w: float) -> "DecodeSpan":
        return DecodeSpan(line, p, cap_w)

    def one(self, c: float) -> Cost:
        """Cost of a single iteration at total context ``c``, under the cap (as stepping)."""
        ln = self.line
        if self.free:  # iteration_cost without the cap: same arithmetic, no Work built
            t = ln.t0_s + ln.t1_s * c
            p = self.params
            return Cost(t, p.p_busy_w * t + p.e_flop_j * (ln.f0 + ln.f1 * c) + p.e_byte_j * (ln.b0 + ln.b1 * c))
        return iteration_cost(self.params, Work(ln.t0_s + ln.t1_s * c, ln.f0 + ln.f1 * c,
                                                ln.b0 + ln.b1 * c), self.cap_w)

    def binds(self, c: float) -> bool:
        """Whether the cap binds for an iteration at total context ``c``."""
        return self.g0 + self.g1 * c > 0.0

    def uncapped(self, c0: float, k: int) -> bool:
        """Whether the cap binds for none of iterations 0..k-1 (g is linear: check the ends)."""
        return self.free or self.g0 + self.g1 * c0 <= 0.0 and self.g0 + self.g1 * (c0 + self.n_seqs * (k - 1)) <= 0.0

    def duration_s(self, c0: float, k: int) -> float:
        """Total time of iterations 0..k-1 (closed form when uncapped)."""
        if k <= 0:
            return 0.0
        if k == 1:
            return self.line.t0_s + self.line.t1_s * c0 if self.free else self.one(c0).time_s
        if not self.free and not self.uncapped(c0, k):
            return sum(self.one(c0 + self.n_seqs * j).time_s for j in range(k))
        return k * (self.t0_s + self.t1_s * c0) + self.t1_s * self.n_seqs * (k * (k - 1) / 2.0)

    def energy_j(self, c0: float, k: int) -> float:
        """Total per-GPU energy of iterations 0..k-1 (closed form when uncapped)."""
        if k <= 0:
            return 0.0
        if k == 1:
            return self.one(c0).energy_j
        if not self.uncapped(c0, k):
            return sum(self.one(c0 + self.n_seqs * j).energy_j for j in range(k))
        return k * (self.e0_j + self.e1_j * c0) + self.e1_j * self.n_seqs * (k * (k - 1) / 2.0)

    def iterations_within(self, c0: float, elapsed_s: float, k_max: int) -> int:
        """Largest k <= k_max whose iterations all end within ``elapsed_s``."""
        if k_max <= 0 or elapsed_s <= 0:
            return 0
        first = self.line.t0_s + self.line.t1_s * c0 if self.free else self.one(c0).time_s
        # iteration times grow with j, so elapsed / first bounds k from above
        hi = min(k_max, int(elapsed_s / first) + 1)
        if self.duration_s(c0, hi) <= elapsed_s:
            return hi
        lo = 0
        a, b = first, self.t1_s * self.n_seqs
        if b > 0 and self.uncapped(c0, hi):  # quadratic estimate, then correct
            h = a - b / 2
            est = int((-h + math.sqrt(h * h + 2 * b * elapsed_s)) / b)
            est = max(0, min(hi - 1, est))
            if self.duration_s(c0, est) <= elapsed_s:
                lo = est
                if self.duration_s(c0, est + 1) > elapsed_s:
                    return est
            else:
                hi = est
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.duration_s(c0, mid) <= elapsed_s:
                lo = mid
            else:
                hi = mid
        return lo
