"""GPU power and energy of an iteration: a pure function of its work and the GPU's cap.

While busy, a GPU draws ``P = p_busy_w + e_flop_j * FLOPs / t + e_byte_j * bytes / t``: a
clocks-up floor plus energy per tensor FLOP and per HBM byte at the achieved rates (the timing
model's work). Prefill (compute-bound) lands near the 700 W limit, decode (memory-bound) far
below it. Idle GPUs draw ``idle_w``.

Cap: when demanded power exceeds the cap, the GPU lowers its clock until it meets the cap.
:func:`capped` implements the capping model; the rest of the simulator only sees
``(time_s, energy_j)`` per iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.physics.params import PowerParams
from simulator.physics.timing import DecodeLine, Work


@dataclass(frozen=True, slots=True)
class Cost:
    """Duration of an iteration and the energy one GPU of the replica spends on it."""

    time_s: float
    energy_j: float

    @property
    def power_w(self) -> float:
        return self.energy_j / self.time_s


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
    """Time and per-GPU energy of one iteration under ``cap_w``."""
    return capped(w.time_s, demanded_energy_j(p, w), cap_w)


@dataclass(frozen=True)
class DecodeSpan:
    """Closed-form cost of k consecutive decode-only iterations of a fixed batch.

    Iteration j (0-based) of a batch of n sequences whose contexts sum to ``c0`` at j = 0 has
    context ``c0 + n j``; time and energy are linear in it (:class:`DecodeLine`), and the cap
    makes time the max of two lines, so sums and their inverse have closed forms.
    """

    n_seqs: int
    t0_s: float   # uncapped time = t0_s + t1_s * c
    t1_s: float
    e0_j: float   # energy per GPU = e0_j + e1_j * c
    e1_j: float
    cap_w: float

    @staticmethod
    def of(line: DecodeLine, p: PowerParams, cap_w: float) -> "DecodeSpan":
        e0 = p.p_busy_w * line.t0_s + p.e_flop_j * line.f0 + p.e_byte_j * line.b0
        e1 = p.p_busy_w * line.t1_s + p.e_flop_j * line.f1 + p.e_byte_j * line.b1
        return DecodeSpan(line.n_seqs, line.t0_s, line.t1_s, e0, e1, cap_w)

    def one(self, c: float) -> Cost:
        """Cost of a single iteration at total context ``c`` (identical to stepping)."""
        return capped(self.t0_s + self.t1_s * c, self.e0_j + self.e1_j * c, self.cap_w)

    def _lines(self, c0: float) -> tuple[float, float, float, float]:
        """Per-iteration time as max(a1 + b1 j, a2 + b2 j) in the iteration index j."""
        n = self.n_seqs
        a1, b1 = self.t0_s + self.t1_s * c0, self.t1_s * n
        a2, b2 = (self.e0_j + self.e1_j * c0) / self.cap_w, self.e1_j * n / self.cap_w
        return a1, b1, a2, b2

    def _crossing(self, c0: float) -> tuple[int, bool]:
        """(j*, capped_first): iterations j < j* use one line, j >= j* the other."""
        a1, b1, a2, b2 = self._lines(c0)
        capped_first = a2 > a1
        db = b2 - b1
        if db == 0:
            return (1 << 62), capped_first
        jx = (a1 - a2) / db  # lines are equal at jx
        j = max(0, math.floor(jx) + 1) if jx >= 0 else 0
        if (capped_first and db > 0) or (not capped_first and db < 0):
            return (1 << 62), capped_first  # never crosses for j >= 0
        return j, capped_first

    def duration_s(self, c0: float, k: int) -> float:
        """Total time of iterations 0..k-1."""
        if k <= 0:
            return 0.0
        a1, b1, a2, b2 = self._lines(c0)
        js, capped_first = self._crossing(c0)
        (fa, fb), (sa, sb) = ((a2, b2), (a1, b1)) if capped_first else ((a1, b1), (a2, b2))
        k1 = min(k, js)
        total = k1 * fa + fb * k1 * (k1 - 1) / 2.0
        if k > js:
            k2 = k - js
            total += k2 * (sa + sb * js) + sb * k2 * (k2 - 1) / 2.0
        return total

    def energy_j(self, c0: float, k: int) -> float:
        """Total per-GPU energy of iterations 0..k-1."""
        if k <= 0:
            return 0.0
        return k * (self.e0_j + self.e1_j * c0) + self.e1_j * self.n_seqs * k * (k - 1) / 2.0

    def iterations_within(self, c0: float, elapsed_s: float, k_max: int) -> int:
        """Largest k <= k_max whose iterations all end within ``elapsed_s``."""
        if k_max <= 0 or elapsed_s <= 0:
            return 0
        if self.duration_s(c0, k_max) <= elapsed_s:
            return k_max
        # the average step is at least the first iteration's time: estimate, then correct
        lo, hi = 0, k_max  # invariant: duration(lo) <= elapsed < duration(hi)
        first = self.one(c0).time_s
        guess = min(k_max - 1, max(0, int(elapsed_s / first)))
        if self.duration_s(c0, guess) <= elapsed_s:
            lo = guess
        else:
            hi = guess
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.duration_s(c0, mid) <= elapsed_s:
                lo = mid
            else:
                hi = mid
        return lo
