"""GPU memory of a replica as vLLM budgets it: what is left for the KV cache.

vLLM (V1) profiles one forward pass and one sampler pass at start-up and gives the KV cache
``total x gpu_memory_utilization - weights - non-torch memory - activation peak``, where
``total`` is the memory the CUDA driver reports (``total_gpu_memory``, 79.22 GiB on an H100
80GB, not the datasheet's 80 GiB). Each term, per GPU:

* weights: every GEMM in its checkpoint precision, embedding and LM head in BF16, sharded over
  the TP group (:func:`simulator.physics.layers.weight_bytes_per_gpu`);
* non-torch memory: the CUDA context plus, at TP > 1, the NCCL and custom all-reduce buffers
  (a serving-stack figure of the device profile, by TP degree);
* activation peak: the larger of the profiled forward pass over ``max_batched_tokens`` tokens
  (residual stream, QKV, gated-MLP intermediate) and the profiled sampler pass over
  ``max_batch_size`` sequences (``sampler_bytes_per_logit`` per vocabulary entry: 16 in vLLM
  0.19, FP32 logits and probabilities and an int64 sort index; about 39 in vLLM 0.11);

and the cache holds ``floor(kv / block bytes)`` blocks. Under attention data parallelism each GPU
is a rank with its own KV cache of its own sequences (all K/V heads) and its own limits, the
experts shared over the ranks; the plan is one rank's. Pure arithmetic; ``docs/validation.md``
and ``tests/test_memory.py`` compare it with vLLM's own start-up figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.catalog import ModelShape
from simulator.physics.hardware import BYTES_PER_ELEMENT, GIB, GPUSpec
from simulator.physics.layers import ACT_BYTES, kv_heads_per_gpu, weight_bytes_per_gpu

@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory budget of one replica (bytes) and its KV-cache capacity."""

    total_bytes: float       # what the driver reports (vLLM's total_gpu_memory)
    usable_bytes: float      # total x gpu_memory_fraction
    weight_bytes: float
    activation_bytes: float  # profiled activation peak
    overhead_bytes: float    # non-torch memory
    kv_bytes: float
    kv_bytes_per_token: float  # per GPU
    block_size_tokens: int
    kv_blocks: int
    ranks: int = 1  # data-parallel ranks of the replica (attention data parallelism), each its own cache

    @property
    def kv_tokens(self) -> int:
        """One GPU's (one rank's) KV capacity: the longest sequence must fit it."""
        return self.kv_blocks * self.block_size_tokens

    @property
    def replica_kv_tokens(self) -> int:
        """The replica's KV capacity over its data-parallel ranks."""
        return self.kv_tokens * self.ranks

    def as_gib(self) -> dict[str, float | int]:
        """The plan as reported in ``summary.json`` and by ``fleetsim validate``."""
        out: dict[str, float | int] = {
            "total_gib": self.total_bytes / GIB, "usable_gib": self.usable_bytes / GIB,
            "weights_gib": self.weight_bytes / GIB,
            "activations_gib": self.activation_bytes / GIB,
            "overhead_gib": self.overhead_bytes / GIB, "kv_cache_gib": self.kv_bytes / GIB,
            "kv_capacity_tokens": self.kv_tokens}
        if self.ranks > 1:
            out |= {"data_parallel_ranks": self.ranks, "replica_kv_capacity_tokens": self.replica_kv_tokens}
        return out


def kv_bytes_per_token(model: ModelShape, tp: int, kv_precision: str) -> float:
    """KV-cache bytes one token takes on one GPU in the full-attention layers: K and V of the
    GPU's heads, or the latent of multi-head latent attention (replicated on every GPU).
    Sliding-window layers hold only their window per sequence, which the token-denominated
    cache does not count (gpt-oss: 128 tokens in half the layers)."""
    e = BYTES_PER_ELEMENT[kv_precision]
    if model.mla:
        per_layer = (model.kv_lora_rank + model.qk_rope_head_dim) * e
    else:
        per_layer = 2 * kv_heads_per_gpu(model, tp) * model.head_dim * e
    return model.full_attention_layers * per_layer


#: tokens vLLM's fused MoE layer runs at a time (``VLLM_FUSED_MOE_CHUNK_SIZE``, 16 x 1,024)
FUSED_MOE_CHUNK_TOKENS = 16 * 1024


def activation_peak_bytes(model: ModelShape, tp: int, max_batched_tokens: int,
                          max_batch_size: int, sampler_bytes_per_logit: float,
                          ranks: int = 1) -> float:
    """The larger of the profiled forward pass and the profiled sampler pass, bytes per GPU.
    The forward pass holds the residual stream, QKV and the widest MLP intermediate: a dense
    layer's, or an MoE layer's routed rows (``k`` per token) and shared expert. Under attention
    data parallelism (``ranks`` > 1, ``tp`` = 1 here) an MoE layer gathers every rank's tokens
    and holds the routed output rows of all of them (at most a fused-MoE chunk)."""
    d = model.hidden_size
    f = max(model.ffn_size if model.dense_mlp_layers else 0,
            model.experts_per_token * model.expert_ffn_size + model.shared_expert_ffn_size) / tp
    qkv = (model.heads / tp + 2 * kv_heads_per_gpu(model, tp)) * model.head_dim
    routed_out = model.experts_per_token * d if model.is_moe else 0  # each expert's output rows
    forward = max_batched_tokens * (4 * d + qkv + 3 * f + routed_out) * ACT_BYTES
    if ranks > 1 and model.is_moe:
        gathered = max(min(ranks * max_batched_tokens, FUSED_MOE_CHUNK_TOKENS), max_batched_tokens)
        forward += (gathered - max_batched_tokens) * (d + routed_out) * ACT_BYTES
    sampler = max_batch_size * model.vocab_size * sampler_bytes_per_logit
    return max(forward, sampler)


def plan_memory(model: ModelShape, tp: int, precision: str, kv_precision: str,
                gpu_memory_fraction: float, max_batched_tokens: int, max_batch_size: int,
                block_size_tokens: int, overhead_gib: float, sampler_bytes_per_logit: float,
                gpu: GPUSpec, attention_data_parallel: bool = False) -> MemoryPlan:
    """Split one GPU's memory; ``kv_blocks`` may be <= 0 when the model does not fit.
    ``attention_data_parallel``: each of the ``tp`` GPUs is a data-parallel rank (its own
    attention, dense layers and KV cache, ``max_batched_tokens`` and ``max_batch_size`` each),
    the routed experts spread whole over them."""
    ranks = tp if attention_data_parallel else 1
    attn_tp = 1 if attention_data_parallel else tp
    total = gpu.memory_bytes
    usable = total * gpu_memory_fraction
    weights = weight_bytes_per_gpu(model, tp, precision, attn_tp)
    activation = activation_peak_bytes(model, attn_tp, max_batched_tokens, max_batch_size,
                                       sampler_bytes_per_logit, ranks)
    overhead = overhead_gib * GIB
    kv = usable - weights - activation - overhead
    per_token = kv_bytes_per_token(model, attn_tp, kv_precision)
    blocks = math.floor(kv / (per_token * block_size_tokens)) if kv > 0 else 0
    return MemoryPlan(total, usable, weights, activation, overhead, kv, per_token,
                      block_size_tokens, blocks, ranks)
