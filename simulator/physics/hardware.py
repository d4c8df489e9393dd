"""Datasheet figures of a GPU and of the node that holds it: physical limits (peaks,
capacities, ratings), never fitted behaviour. Instances come from device profiles
(:mod:`simulator.devices`); the physics models take them as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1024**3

#: bytes per weight (or KV) element by precision. MXFP4 packs 4-bit values with one 8-bit scale
#: per block of 32 (0.5 + 1 / 32 bytes); FP4 is NVFP4 (Blackwell): 4-bit E2M1 values with one FP8
#: (E4M3) scale per block of 16, so 0.5 + 1 / 16 bytes per element.
BYTES_PER_ELEMENT = {"bf16": 2.0, "fp8": 1.0, "mxfp4": 0.5 + 1.0 / 32.0, "fp4": 0.5 + 1.0 / 16.0}
#: weight-only formats: a GPU without tensor cores for them dequantizes the weights and runs the
#: GEMM in the named precision (vLLM's Marlin / Triton MXFP4 kernels on Hopper: BF16)
WEIGHT_ONLY = {"mxfp4": "bf16"}


@dataclass(frozen=True)
class GPUSpec:
    """One GPU's datasheet figures (SI units).

    ``peak_flops_per_s``: dense tensor-core peak by GEMM precision (``bf16``, ``fp8``, ...);
    a precision absent from it is not supported by the GPU. ``hbm_bytes`` is the datasheet
    capacity; ``memory_bytes`` what the CUDA driver reports as total (a little less: what a
    serving stack budgets against).
    """

    name: str
    hbm_bytes: float
    memory_bytes: float
    hbm_bw_bytes_per_s: float
    peak_flops_per_s: dict[str, float] = field(hash=False)
    tdp_w: float
    min_cap_w: float
    max_clock_mhz: float
    nvlink_bw_bytes_per_s: float

    @property
    def peak_bf16_flops(self) -> float:
        return self.peak_flops_per_s["bf16"]

    def peak_flops(self, precision: str) -> float:
        """Dense tensor-core peak for the GEMM precision (a weight-only format the GPU has no
        tensor cores for runs at the peak of the precision it is dequantized to)."""
        if precision not in self.peak_flops_per_s and precision in WEIGHT_ONLY:
            return self.peak_flops_per_s[WEIGHT_ONLY[precision]]
        return self.peak_flops_per_s[precision]

    def supports(self, precision: str) -> bool:
        """Whether GEMMs (or weights, for a weight-only format) can be in this precision."""
        return precision in self.peak_flops_per_s or WEIGHT_ONLY.get(precision) in self.peak_flops_per_s


@dataclass(frozen=True)
class NodeSpec:
    """A node (server) of GPUs: how many, its rated (nameplate) input power, and its host's
    default power model (:class:`simulator.physics.host.HostPower`)."""

    gpus_per_node: int
    rated_power_w: float
    host_idle_w: float
    host_load_factor: float
