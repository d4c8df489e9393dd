"""The device every calibration source was measured on: an H100 SXM5 (its shipped profile).

Read when first asked for (never at import).
"""

from __future__ import annotations

from simulator.devices import DeviceProfile, load_profile
from simulator.physics.hardware import GPUSpec

DEVICE = "H100-SXM5-80GB"


def h100() -> DeviceProfile:
    return load_profile(DEVICE)


def h100_gpu() -> GPUSpec:
    return h100().gpu
