"""Where a model's weights live: the per-GPU shapes of one layer's GEMMs under tensor
parallelism (Megatron-style sharding), and the precision of each GEMM for a checkpoint.

One source for the timing model (bytes read, FLOPs) and the memory plan (bytes held):
* heads and the MLP are split over the ``tp`` GPUs; K/V heads too, but each GPU holds at least
  one (they are replicated when ``kv_heads < tp``);
* the embedding and the LM head are split over the vocabulary (vLLM's vocab-parallel layers)
  and stay BF16 in every checkpoint;
* an FP8 deployment runs each GEMM in FP8 unless the checkpoint keeps it in BF16
  (``ModelShape.fp8_bf16_gemms``, and the first and last ``fp8_bf16_edge_layers`` layers whole);
  an FP4 (NVFP4) deployment keeps the same GEMMs and layers in BF16 (an assumption: the catalog
  records what FP8 checkpoints keep, not FP4 ones).
"""

from __future__ import annotations

from simulator.catalog import ModelShape
from simulator.physics.hardware import BYTES_PER_ELEMENT

ACT_BYTES = 2.0  # activations are BF16 whatever the weights
EMBEDDING_BYTES = BYTES_PER_ELEMENT["bf16"]


def kv_heads_per_gpu(m: ModelShape, tp: int) -> float:
    """K/V heads each GPU holds (replicated when there are fewer than GPUs)."""
    return max(m.kv_heads / tp, 1.0)


def layer_gemms(m: ModelShape, tp: int) -> list[tuple[str, float, float]]:
    """``(name, K, N)`` of one layer's GEMMs on one GPU: qkv, o, up (gate+up when gated), down."""
    heads = m.heads / tp
    qkv_n = (heads + 2 * kv_heads_per_gpu(m, tp)) * m.head_dim
    up_n = (2 if m.gated_mlp else 1) * m.ffn_size / tp
    return [("qkv", m.hidden_size, qkv_n), ("o", m.q_size / tp, m.hidden_size),
            ("up", m.hidden_size, up_n), ("down", m.ffn_size / tp, m.hidden_size)]


def gemm_precisions(m: ModelShape, precision: str, name: str) -> list[tuple[int, str]]:
    """``(layers, precision)`` groups of one GEMM across the model's layers."""
    if precision == "bf16" or name in m.fp8_bf16_gemms:
        return [(m.layers, "bf16")]
    edge = min(2 * m.fp8_bf16_edge_layers, m.layers)
    return [(n, p) for n, p in ((m.layers - edge, precision), (edge, "bf16")) if n > 0]


def embedding_params_per_gpu(m: ModelShape, tp: int) -> float:
    """Embedding and LM head parameters on one GPU (one table when they are tied)."""
    return m.vocab_size / tp * m.hidden_size * (1 if m.tied_embeddings else 2)


def weight_bytes_per_gpu(m: ModelShape, tp: int, precision: str) -> float:
    """Bytes of weights one GPU holds: every layer's GEMMs in their precision, plus the BF16
    embedding and LM head shards (norm weights are negligible and left out)."""
    total = embedding_params_per_gpu(m, tp) * EMBEDDING_BYTES
    for name, k, n in layer_gemms(m, tp):
        total += sum(count * k * n * BYTES_PER_ELEMENT[p] for count, p in gemm_precisions(m, precision, name))
    return total
