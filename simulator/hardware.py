"""Public datasheet anchors for an H100 SXM5 80GB GPU and a DGX H100 node.

These are physical limits (peaks, capacities, ratings), not fitted behaviour; fitted
efficiencies and power coefficients live in the calibration file. Sources: NVIDIA H100 and
DGX H100 datasheets, as tabulated in calibration/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class GPUSpec:
    """One GPU's datasheet figures (SI units)."""

    name: str = "H100-SXM5-80GB"
    hbm_bytes: float = 80e9
    hbm_bw_bytes_per_s: float = 3.35e12
    peak_bf16_flops: float = 989e12
    peak_fp8_flops: float = 1979e12
    tdp_w: float = 700.0
    min_cap_w: float = 200.0
    max_clock_mhz: float = 1980.0
    nvlink_bw_bytes_per_s: float = 900e9

    def peak_flops(self, precision: str) -> float:
        """Dense tensor-core peak for the GEMM precision (``bf16`` or ``fp8``)."""
        return self.peak_fp8_flops if precision == "fp8" else self.peak_bf16_flops


@dataclass(frozen=True)
class NodeSpec:
    """A DGX H100-class node."""

    gpus_per_node: int = 8
    rated_power_w: float = 10_200.0


H100 = GPUSpec()
DGX_H100 = NodeSpec()

BYTES_PER_ELEMENT = {"bf16": 2.0, "fp8": 1.0}
