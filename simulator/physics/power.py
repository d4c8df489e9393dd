"""GPU power and energy of an iteration: a pure function of its work and the GPU's cap.

While busy, a GPU draws

    ``P = p_busy_w + p_active_w * A / T + e_byte_j * bytes / T``

over an iteration of duration ``T``: a clocks-up floor, the power of its activity, and energy
per HBM byte. ``A`` (:mod:`simulator.physics.activity`) weighs each phase of the iteration (the
non-attention ops, prefill attention, decode attention: the timing model's ``Work.phases``) by
``1 - exp(-R_f / activity_flops_per_s - R_b / activity_bytes_per_s)``, ``R_f`` and ``R_b`` the
phase's achieved FLOP and HBM byte rates: a phase far below both rooflines (a decode GEMM of a
few rows) already drives the SMs' clock trees, schedulers and register files, so power rises
fast at low rates and saturates near either roofline. The form is empirical, chosen over a
power linear in FLOP/s because that cannot fit the ML.ENERGY runs (decode at batch 8 and at
batch 256 of one model differ by 4x in FLOP rate but ~1.4x in power) without a saturated GEMM
demanding far above the 700 W board limit; the fit bounds that GEMM at 700 W (calibration
report). FLOPs are BF16 equivalents (:mod:`simulator.physics.timing`): an FP8 GEMM at a given
fraction of its peak counts like a BF16 one at that fraction of its own. Every measured dense
run is BF16: that FP8 reading is an assumption (README), not a measurement. Idle GPUs draw
``idle_w``.

Cap: when demanded power exceeds the cap, the GPU lowers its clock until it meets the cap
(the DVFS model of :mod:`simulator.physics.dvfs`); the rest of the simulator only sees
``(time_s, energy_j)`` per iteration, through :class:`simulator.physics.iteration.IterationModel`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.physics.activity import activity_s, phase_activity
from simulator.physics.dvfs import DVFSParams, dvfs_capped
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


def demanded_energy_j(p: PowerParams, w: Work) -> float:
    """Energy per GPU of an iteration run at full clocks (no cap)."""
    return p.p_busy_w * w.time_s + p.p_active_w * activity_s(p, w.phases) + p.e_byte_j * w.hbm_bytes


def iteration_cost(p: PowerParams, w: Work, cap_w: float, d: DVFSParams) -> Cost:
    """Time and per-GPU energy of one iteration under ``cap_w`` (DVFS model:
    :mod:`simulator.physics.dvfs`; bit-identical to uncapped where the cap does not bind)."""
    t = w.time_s
    active_s = activity_s(p, w.phases)
    e = p.p_busy_w * t + p.p_active_w * active_s + p.e_byte_j * w.hbm_bytes  # demanded_energy_j
    if e / t <= cap_w:  # the cap does not bind (the same test as dvfs_capped's first line)
        return Cost(t, e)
    return Cost(*dvfs_capped(p, w, e, cap_w, d, active_s))  # the activity is not summed again


class DecodeSpan:
    """Closed-form cost of k consecutive decode-only iterations of a fixed batch.

    Iteration j (0-based) of a batch of n sequences whose contexts sum to ``c0`` at j = 0 has
    context ``c = c0 + n j``; its time ``t0_s + t1_s c`` and per-GPU energy ``e0_j + e1_j c``
    are linear in it (:class:`DecodeLine`; decode attention runs at a FLOP rate independent of
    c, so its activity is linear in c too), so sums over j and their inverse have closed forms.
    Where the cap binds (demanded power ``e(c) / t(c)`` above the cap, a linear condition in c)
    the sums fall back to stepping :meth:`one`, which applies the cap model; the engine then
    moves one iteration at a time.
    """

    __slots__ = ("line", "params", "dvfs", "n_seqs", "t0_s", "t1_s", "e0_j", "e1_j", "cap_w",
                 "g0", "g1", "free")

    def __init__(self, line: DecodeLine, p: PowerParams, cap_w: float, d: DVFSParams):
        self.line, self.params, self.dvfs, self.n_seqs, self.cap_w = line, p, d, line.n_seqs, cap_w
        self.t0_s, self.t1_s = line.t0_s, line.t1_s
        self.e0_j = (p.p_busy_w * line.t0_s
                     + p.p_active_w * sum(phase_activity(t, f, b, p) for t, f, b in line.const_phases)
                     + p.e_byte_j * line.b0)
        self.e1_j = (p.p_busy_w * line.t1_s + p.p_active_w * phase_activity(line.t1_s, line.f1, line.b1, p)
                     + p.e_byte_j * line.b1)
        # the cap binds where g(c) = g0 + g1 c > 0
        self.g0, self.g1 = self.e0_j - cap_w * self.t0_s, self.e1_j - cap_w * self.t1_s
        self.free = self.g0 <= 0.0 and self.g1 <= 0.0  # the cap binds at no context c >= 0

    def one(self, c: float) -> Cost:
        """Cost of a single iteration at total context ``c``, under the cap (as stepping)."""
        if self.free:  # iteration_cost without the cap, in the span's linear form
            return Cost(self.t0_s + self.t1_s * c, self.e0_j + self.e1_j * c)
        return iteration_cost(self.params, self.line.work(c), self.cap_w, self.dvfs)

    def uncapped(self, c0: float, k: int) -> bool:
        """Whether the cap binds for none of iterations 0..k-1 (g is linear: check the ends)."""
        return self.free or self.g0 + self.g1 * c0 <= 0.0 and self.g0 + self.g1 * (c0 + self.n_seqs * (k - 1)) <= 0.0

    def first_s(self, c0: float) -> float:
        """Duration of iteration 0 (at context ``c0``), s."""
        return self.line.t0_s + self.line.t1_s * c0 if self.free else self.one(c0).time_s

    def duration_s(self, c0: float, k: int) -> float:
        """Total time of iterations 0..k-1 (closed form when uncapped)."""
        if k <= 0:
            return 0.0
        if k == 1:  # first_s, inlined (the stepping engine's hot path)
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

    def peak_power_w(self, c0: float, k: int, energy_j: float, duration_s: float) -> float:
        """Highest per-GPU power among iterations 0..k-1, W. ``energy_j`` and ``duration_s``
        are the span's own totals (a single iteration is its own peak). Uncapped, power
        ``(e0 + e1 c) / (t0 + t1 c)`` is monotone in c, so the ends bound it."""
        if k == 1:
            return energy_j / duration_s if duration_s > 0 else 0.0
        c1 = c0 + self.n_seqs * (k - 1)
        return max((self.e0_j + self.e1_j * c0) / (self.t0_s + self.t1_s * c0),
                   (self.e0_j + self.e1_j * c1) / (self.t0_s + self.t1_s * c1))

    def itl_line(self, c0: float) -> tuple[float, float]:
        """``(a, b)``: iteration j of an uncapped span lasts ``a + b j`` seconds (the
        inter-token latency each of its sequences sees)."""
        return self.t0_s + self.t1_s * c0, self.t1_s * self.n_seqs

    def iterations_within(self, c0: float, elapsed_s: float, k_max: int) -> int:
        """Largest k <= k_max whose iterations all end within ``elapsed_s``."""
        if k_max <= 0 or elapsed_s <= 0:
            return 0
        if self.free:
            return self._iterations_within_free(c0, elapsed_s, k_max)
        first = self.first_s(c0)
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

    def _iterations_within_free(self, c0: float, elapsed_s: float, k_max: int) -> int:
        """:meth:`iterations_within` where the cap binds nowhere: the same steps and the same
        floating-point expressions as :meth:`duration_s` (``d(k)`` below), written out."""
        a = self.t0_s + self.t1_s * c0  # first_s(c0), and duration_s's per-iteration term
        b = self.t1_s * self.n_seqs
        hi = min(k_max, int(elapsed_s / a) + 1)
        if (a if hi == 1 else hi * a + b * (hi * (hi - 1) / 2.0)) <= elapsed_s:
            return hi
        lo = 0
        if b > 0:  # quadratic estimate, then correct
            h = a - b / 2
            est = int((-h + math.sqrt(h * h + 2 * b * elapsed_s)) / b)
            est = max(0, min(hi - 1, est))
            d = 0.0 if est <= 0 else a if est == 1 else est * a + b * (est * (est - 1) / 2.0)
            if d <= elapsed_s:
                lo = est
                e1 = est + 1
                if (a if e1 == 1 else e1 * a + b * (e1 * (e1 - 1) / 2.0)) > elapsed_s:
                    return est
            else:
                hi = est
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (a if mid == 1 else mid * a + b * (mid * (mid - 1) / 2.0)) <= elapsed_s:
                lo = mid
            else:
                hi = mid
        return lo

    def boundary_at_or_after(self, c0: float, elapsed_s: float, k_max: int) -> int:
        """Iterations completed at the first iteration boundary at or after ``elapsed_s``
        (at least 1; ``k_max + 1`` when the span ends before it): where an arrival during
        the span is admitted."""
        kd = self.iterations_within(c0, elapsed_s, k_max)
        if kd == 0:
            return 1
        if self.free:
            a = self.t0_s + self.t1_s * c0
            d = a if kd == 1 else kd * a + self.t1_s * self.n_seqs * (kd * (kd - 1) / 2.0)
        else:
            d = self.duration_s(c0, kd)
        return kd + 1 if d < elapsed_s else kd

    def cut(self, c0: float, elapsed_s: float, k_max: int) -> tuple[int, float]:
        """``(kb, duration_s(c0, kb))`` with ``kb = boundary_at_or_after(c0, elapsed_s, k_max)``
        (the engine's cut of a jump by an arrival), in one call: where the cap binds nowhere
        with the same steps and floating-point expressions as those two, written out."""
        if not self.free:
            kb = self.boundary_at_or_after(c0, elapsed_s, k_max)
            return kb, self.duration_s(c0, kb)
        a = self.t0_s + self.t1_s * c0  # duration_s(c0, 1)
        kd = (self._iterations_within_free(c0, elapsed_s, k_max)
              if k_max > 0 and elapsed_s > 0 else 0)
        if kd == 0:
            return 1, a
        b = self.t1_s * self.n_seqs
        d = a if kd == 1 else kd * a + b * (kd * (kd - 1) / 2.0)
        if d < elapsed_s:
            kb = kd + 1  # >= 2
            return kb, kb * a + b * (kb * (kb - 1) / 2.0)
        return kd, d

    def totals(self, c0: float, k: int, duration_s: float) -> tuple[float, float, float, float]:
        """``(energy_j, peak_w, itl_a_s, itl_b_s)`` of iterations 0..k-1 that took
        ``duration_s`` in all: :meth:`energy_j`, :meth:`peak_power_w` and (k > 1)
        :meth:`itl_line`, in one call and with the same expressions (the engine's end of a
        jump); a single iteration's ITL line is ``(duration_s, 0)``."""
        if k == 1:
            if self.free:
                e = self.e0_j + self.e1_j * c0
            else:
                e = self.one(c0).energy_j
            return e, (e / duration_s if duration_s > 0 else 0.0), duration_s, 0.0
        if self.free or self.uncapped(c0, k):
            e0, e1, t0, t1 = self.e0_j, self.e1_j, self.t0_s, self.t1_s
            e = k * (e0 + e1 * c0) + e1 * self.n_seqs * (k * (k - 1) / 2.0)
            c1 = c0 + self.n_seqs * (k - 1)
            p0 = (e0 + e1 * c0) / (t0 + t1 * c0)
            p1 = (e0 + e1 * c1) / (t0 + t1 * c1)
            return e, (p0 if p0 >= p1 else p1), t0 + t1 * c0, t1 * self.n_seqs
        e = self.energy_j(c0, k)
        return (e, self.peak_power_w(c0, k, e, duration_s), self.t0_s + self.t1_s * c0,
                self.t1_s * self.n_seqs)
