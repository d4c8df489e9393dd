"""How active a GPU is during an iteration: the part of the power model that is not linear.

Each phase of an iteration (``Work.phases``: the non-attention ops, prefill attention, decode
attention) of duration ``t`` doing ``F`` BF16-equivalent FLOPs and moving ``B`` HBM bytes is
active for ``t (1 - exp(-(F / t) / activity_flops_per_s - (B / t) / activity_bytes_per_s))``
seconds: activity saturates as the phase nears either roofline. See
:mod:`simulator.physics.power`.
"""

from __future__ import annotations

import math

from simulator.physics.params import PowerParams


def phase_activity(time_s: float, flops: float, hbm_bytes: float, p: PowerParams) -> float:
    """Active time of one phase, s."""
    if time_s <= 0.0:
        return 0.0
    return time_s * -math.expm1(-(flops / p.activity_flops_per_s + hbm_bytes / p.activity_bytes_per_s)
                                / time_s)


def activity_s(p: PowerParams, phases: tuple[tuple[float, float, float], ...]) -> float:
    """Active time ``A`` of an iteration's phases ``(time_s, flops, hbm_bytes)``, s."""
    return sum(phase_activity(t, f, b, p) for t, f, b in phases)
