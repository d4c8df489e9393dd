"""Coefficients of the timing and power models: the schema of a calibration file.

A device profile's ``calibration.yaml`` (``simulator/devices/<gpu>/``) is written by
``fleetsim calibrate`` from measured data; every coefficient records where it came from and how
well it fits. Files are read by :mod:`simulator.devices`; the models in
:mod:`simulator.physics.timing` and :mod:`.power` are pure functions of an iteration's shape and
these coefficients.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from simulator.strict import Frozen


class RooflineOp(Frozen):
    """Time of one kernel: ``overhead_s + max(flops / (peak * eta_c(m)), bytes / (bw * eta_m))``.

    ``eta_c(m) = eta_compute_max * m / (m + m_half_tokens)`` where ``m`` is the number of rows
    (tokens or sequences) the kernel processes: small GEMMs cannot fill the tensor cores.
    """

    eta_compute_max: float = Field(1.0, gt=0, le=1, description="compute efficiency at large m")
    m_half_tokens: float = Field(0.0, ge=0, description="rows at which eta_c is half its max")
    eta_memory: float = Field(1.0, gt=0, le=1, description="fraction of HBM bandwidth reached")
    overhead_s: float = Field(0.0, ge=0, description="fixed launch/latency cost per kernel, s")


class AllReduceFit(Frozen):
    """NCCL all-reduce time: ``alpha_s + bytes * beta_s_per_byte`` for a group size."""

    alpha_s: float = Field(ge=0)
    beta_s_per_byte: float = Field(ge=0)


class CustomAllReduce(Frozen):
    """The serving stack's own all-reduce over NVLink (vLLM's custom all-reduce) for messages up
    to ``max_bytes``: ``latency_s + bytes * 2 (tp - 1) / tp / (nvlink_efficiency x NVLink
    bandwidth / 2)``; larger
    messages go to NCCL (``all_reduce``)."""

    latency_s: float = Field(ge=0, description="fixed cost of one call, s")
    nvlink_efficiency: float = Field(1.0, gt=0, description="fraction of the NVLink bandwidth"
                                     " its data moves at (1: nominal)")
    max_bytes: float = Field(8 * 1024**2, gt=0, description="largest message it takes, bytes"
                             " (vLLM's default: 8 MiB)")


class TimingParams(Frozen):
    """Per-op roofline efficiencies and fixed costs (see :mod:`simulator.physics.timing`)."""

    gemm: dict[str, RooflineOp] = Field(
        default_factory=dict,
        description="per-GEMM op (qkv, o, up, down, lm_head) efficiencies; key 'default' applies"
        " to ops without their own entry",
    )
    elementwise: dict[str, RooflineOp] = Field(
        default_factory=dict,
        description="memory-bound ops (norm, rope, act, add, emb); key 'default' as above",
    )
    attn_prefill: RooflineOp = RooflineOp()
    attn_decode: RooflineOp = RooflineOp()
    all_reduce: dict[int, AllReduceFit] = Field(default_factory=dict, description="NCCL, by TP"
                                                " degree")
    custom_all_reduce: CustomAllReduce | None = Field(
        None, description="the stack's custom all-reduce for small messages (None: NCCL for all)")
    iteration_fixed_s: float = Field(0.0, ge=0, description="per-iteration CPU cost, s")
    per_seq_s: float = Field(0.0, ge=0, description="per-sequence scheduling/sampling cost, s")
    experts: dict[str, RooflineOp] = Field(
        default_factory=dict, description="the grouped GEMM of a mixture of experts' routed"
        " experts, by weight precision (bf16, fp8, mxfp4: different kernels); rows per touched"
        " expert set its compute efficiency; a precision without an entry uses the 'up' GEMM's")
    expert_skew: float = Field(1.0, ge=1.0, description="routed rows on the busiest GPU under"
                               " expert parallelism, as a multiple of uniform routing's mean")
    expert_popularity_exponent: float = Field(
        0.0, ge=0.0, description="Zipf exponent of the experts' routing popularity (the i-th most"
        " popular expert is picked in proportion to i^-s); it sets how many distinct experts a"
        " batch touches. 0: uniform routing")
    expert_parallel_layer_s: float = Field(0.0, ge=0, description="extra time of an MoE layer"
                                           " under expert parallelism (dispatch and combine of"
                                           " the tokens across the GPUs), s")
    attn_expanded_kv: bool = Field(
        False, description="attention reads K/V repeated to every query head (eager attention"
        " with repeat_kv, as older serving stacks did): KV bytes scale with heads, not kv_heads")

    def gemm_op(self, name: str) -> RooflineOp:
        return self.gemm.get(name) or self.gemm.get("default") or RooflineOp()

    def expert_op(self, precision: str) -> RooflineOp:
        return self.experts.get(precision) or self.gemm_op("up")

    def elementwise_op(self, name: str) -> RooflineOp:
        return self.elementwise.get(name) or self.elementwise.get("default") or RooflineOp()


class PowerParams(Frozen):
    """Per-GPU power while busy: ``P = p_busy_w + p_active_w * A / T + e_byte_j * bytes / T``,
    ``A`` the active time of the iteration (:func:`simulator.physics.activity.activity_s`):
    each phase's time weighted by ``1 - exp(-FLOP rate / activity_flops_per_s - byte rate /
    activity_bytes_per_s)``."""

    idle_w: float = Field(70.0, gt=0, description="GPU power with no work, W")
    p_busy_w: float = Field(100.0, gt=0, description="power of a busy GPU at zero throughput, W")
    p_active_w: float = Field(0.0, ge=0, description="extra power of a fully active phase (its"
                              " FLOP rate far above activity_flops_per_s), W")
    activity_flops_per_s: float = Field(2e14, gt=0, description="BF16-equivalent FLOP rate at"
                                        " which a phase without HBM traffic is 1 - 1/e active,"
                                        " FLOP/s")
    activity_bytes_per_s: float = Field(3e12, gt=0, description="HBM byte rate at which a phase"
                                        " without FLOPs is 1 - 1/e active, byte/s")
    e_byte_j: float = Field(0.0, ge=0, description="energy per HBM byte moved, J")


class Calibration(Frozen):
    """A calibration file: versioned coefficients plus their provenance and fit errors."""

    version: str = "0"
    description: str = ""
    timing: TimingParams = TimingParams()
    power: PowerParams = PowerParams()
    provenance: dict[str, Any] = Field(default_factory=dict)
    errors: dict[str, Any] = Field(default_factory=dict, description="fit error report (MAPE, ...)")
    residuals: dict[str, list[float]] = Field(
        default_factory=dict,
        description="relative residuals (predicted/measured - 1) per quantity, for Monte Carlo",
    )
