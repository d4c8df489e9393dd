"""Where a model's weights live: the per-GPU shapes of its GEMMs under tensor (and expert)
parallelism, and the precision of each GEMM for a checkpoint.

One source for the timing model (bytes read, FLOPs) and the memory plan (bytes held):
* heads and dense MLPs are split over the ``tp`` GPUs (Megatron-style); K/V heads too, but each
  GPU holds at least one (they are replicated when ``kv_heads < tp``); with multi-head latent
  attention the down-projections to the latents are replicated and the up-projections split;
* the embedding and the LM head are split over the vocabulary (vLLM's vocab-parallel layers)
  and stay BF16 in every checkpoint; MoE routers stay BF16 and are replicated;
* a mixture of experts' experts are split over the GPUs either whole (expert parallelism: each
  GPU holds ``experts / tp`` of them) or each one sliced like a dense MLP (tensor parallelism,
  vLLM's default): either way a GPU holds ``1 / tp`` of the expert weights;
* under attention data parallelism (vLLM ``--data-parallel-size`` with expert parallelism) each
  GPU is a rank of its own for everything but the routed experts: attention, dense MLPs, shared
  experts, router, embedding and LM head are whole on every GPU (``attn_tp`` = 1), the experts
  still spread whole over all of them;
* a quantized deployment (``fp8``, ``mxfp4``, ``fp4``) runs each GEMM in that precision unless
  the checkpoint keeps it in BF16 (``ModelShape.fp8_bf16_gemms``, and the first and last
  ``fp8_bf16_edge_layers`` layers whole); an FP4 (NVFP4) deployment keeps the same GEMMs and
  layers in BF16 as FP8 (an assumption: the catalog records what FP8 checkpoints keep, not FP4
  ones). vLLM pads an MXFP4 expert's intermediate size to a multiple of 256 for its MoE kernels
  (gpt-oss: 2,880 -> 3,072), in memory and in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.catalog import ModelShape
from simulator.physics.hardware import BYTES_PER_ELEMENT

ACT_BYTES = 2.0  # activations are BF16 whatever the weights
EMBEDDING_BYTES = BYTES_PER_ELEMENT["bf16"]
MXFP4_PAD = 256


@dataclass(frozen=True)
class Gemm:
    """``count`` identical GEMMs (one per layer that has it) of ``K x N`` weights on one GPU,
    timed with the fitted efficiencies of ``op`` (qkv, o, up, down, router)."""

    name: str
    op: str
    k: float
    n: float
    count: int
    precision: str


def kv_heads_per_gpu(m: ModelShape, tp: int) -> float:
    """K/V heads each GPU holds (replicated when there are fewer than GPUs)."""
    return max(m.kv_heads / tp, 1.0)


def attention_gemms(m: ModelShape, tp: int) -> list[tuple[str, float, float]]:
    """``(name, K, N)`` of one layer's attention projections on one GPU."""
    d, heads = m.hidden_size, m.heads / tp
    if m.mla:
        nope = m.head_dim - m.qk_rope_head_dim
        q = ([("qkv", d, m.q_lora_rank), ("qkv", m.q_lora_rank, heads * m.head_dim)]
             if m.q_lora_rank else [("qkv", d, heads * m.head_dim)])
        return q + [("qkv", d, m.kv_lora_rank + m.qk_rope_head_dim),
                    ("qkv", m.kv_lora_rank, heads * (nope + m.v_head_dim)),
                    ("o", heads * m.v_head_dim, d)]
    qkv_n = (heads + 2 * kv_heads_per_gpu(m, tp)) * m.head_dim
    return [("qkv", d, qkv_n), ("o", m.q_size / tp, d)]


def mlp_gemms(m: ModelShape, ffn: float, tp: int, prefix: str = "") -> list[tuple[str, float, float]]:
    """``(name, K, N)`` of a (gated) MLP of width ``ffn`` split over ``tp`` GPUs."""
    up_n = (2 if m.gated_mlp else 1) * ffn / tp
    return [(prefix + "up", m.hidden_size, up_n), (prefix + "down", ffn / tp, m.hidden_size)]


def _precisions(m: ModelShape, precision: str, name: str, layers: int,
                edge_applies: bool) -> list[tuple[int, str]]:
    """``(layers, precision)`` groups of one GEMM present in ``layers`` layers."""
    if layers <= 0:
        return []
    if precision == "bf16" or name in m.fp8_bf16_gemms:
        return [(layers, "bf16")]
    edge = min(2 * m.fp8_bf16_edge_layers, layers) if edge_applies else 0
    return [(n, p) for n, p in ((layers - edge, precision), (edge, "bf16")) if n > 0]


def dense_gemms(m: ModelShape, tp: int, precision: str) -> list[Gemm]:
    """Every GEMM of the model except the routed experts, grouped by shape and precision:
    attention in every layer, the dense MLP in the dense layers, the shared expert and the
    router in the MoE layers."""
    out: list[Gemm] = []
    for name, k, n in attention_gemms(m, tp):
        out += [Gemm(name, name, k, n, c, p) for c, p in _precisions(m, precision, name, m.layers, True)]
    for name, k, n in mlp_gemms(m, m.ffn_size, tp):
        out += [Gemm(name, name, k, n, c, p)
                for c, p in _precisions(m, precision, name, m.dense_mlp_layers, not m.is_moe)]
    if m.is_moe:
        if m.shared_expert_ffn_size:
            for name, k, n in mlp_gemms(m, m.shared_expert_ffn_size, tp, "shared_"):
                out += [Gemm(name, name.removeprefix("shared_"), k, n, c, p)
                        for c, p in _precisions(m, precision, "shared", m.moe_layers, False)]
        out.append(Gemm("router", "router", m.hidden_size, m.experts, m.moe_layers, "bf16"))
    return out


def expert_precision(m: ModelShape, precision: str) -> str:
    return "bf16" if precision == "bf16" or "experts" in m.fp8_bf16_gemms else precision


def expert_ffn(m: ModelShape, precision: str) -> float:
    """An expert's intermediate size as the kernels run it (MXFP4: padded to 256)."""
    f = m.expert_ffn_size
    return math.ceil(f / MXFP4_PAD) * MXFP4_PAD if expert_precision(m, precision) == "mxfp4" else f


def expert_params(m: ModelShape, precision: str) -> float:
    """Weights of one expert (gate, up and down projections)."""
    return m.mlp_params(1) * expert_ffn(m, precision)


def embedding_params_per_gpu(m: ModelShape, tp: int) -> float:
    """Embedding and LM head parameters on one GPU (one table when they are tied)."""
    return m.vocab_size / tp * m.hidden_size * (1 if m.tied_embeddings else 2)


def weight_bytes_per_gpu(m: ModelShape, tp: int, precision: str, attn_tp: int | None = None) -> float:
    """Bytes of weights one GPU holds: every GEMM in its precision, ``1 / tp`` of the experts,
    plus the BF16 embedding and LM head shards (norm weights are negligible and left out).
    ``attn_tp``: the GPUs that split everything but the routed experts (default ``tp``; 1 under
    attention data parallelism, where each GPU holds all of it)."""
    a = tp if attn_tp is None else attn_tp
    total = embedding_params_per_gpu(m, a) * EMBEDDING_BYTES
    total += (m.vision_params / a + m.rope_cache_positions * m.head_dim) * EMBEDDING_BYTES
    total += sum(g.count * g.k * g.n * BYTES_PER_ELEMENT[g.precision] for g in dense_gemms(m, a, precision))
    if m.is_moe:
        p = expert_precision(m, precision)
        total += m.moe_layers * m.experts * expert_params(m, precision) / tp * BYTES_PER_ELEMENT[p]
    return total
