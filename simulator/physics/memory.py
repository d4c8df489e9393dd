"""GPU memory of a replica: weights, activations, runtime overhead and the KV cache.

Pure arithmetic on the model shape and the serving configuration (vLLM's block manager): the
KV cache gets what is left of ``gpu_memory_fraction`` of HBM after weights, the activation
workspace of the largest batch and the runtime overhead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.catalog import ModelShape
from simulator.physics.hardware import BYTES_PER_ELEMENT, GIB, GPUSpec

ACT_BYTES = 2.0


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory budget of one replica (bytes) and its KV-cache capacity."""

    usable_bytes: float
    weight_bytes: float
    activation_bytes: float
    overhead_bytes: float
    kv_bytes: float
    kv_bytes_per_token: float  # per GPU
    block_size_tokens: int
    kv_blocks: int

    @property
    def kv_tokens(self) -> int:
        return self.kv_blocks * self.block_size_tokens


def plan_memory(model: ModelShape, tp: int, precision: str, kv_precision: str,
                gpu_memory_fraction: float, max_batched_tokens: int, block_size_tokens: int,
                runtime_overhead_gib: float, gpu: GPUSpec) -> MemoryPlan:
    """Split one GPU's memory; ``kv_blocks`` may be <= 0 when the model does not fit."""
    usable = gpu.hbm_bytes * gpu_memory_fraction
    weights = model.params_total * BYTES_PER_ELEMENT[precision] / tp
    d, f = model.hidden_size, model.ffn_size / tp
    # peak live activations of one forward pass over the largest batch: residual stream, QKV,
    # gated MLP intermediate, and fp32 logits of the sampled rows (bounded by the batch)
    per_token = (4 * d + (model.heads + 2 * model.kv_heads) * model.head_dim / tp + 3 * f) * ACT_BYTES
    activation = max_batched_tokens * per_token
    overhead = runtime_overhead_gib * GIB
    kv = usable - weights - activation - overhead
    kv_heads_gpu = max(model.kv_heads / tp, 1.0)
    kv_per_token = 2 * model.layers * kv_heads_gpu * model.head_dim * BYTES_PER_ELEMENT[kv_precision]
    blocks = math.floor(kv / (kv_per_token * block_size_tokens)) if kv > 0 else 0
    return MemoryPlan(usable, weights, activation, overhead, kv, kv_per_token,
                      block_size_tokens, blocks)
