"""Iteration time of a tensor-parallel replica: a pure function of the iteration's shape.

Per layer and per GPU of a TP group (shapes sharded Megatron-style, :mod:`.layers`):

* GEMMs ``qkv``, ``o``, ``up`` (gate+up when gated), ``down``: roofline of their FLOPs and bytes
  (weights in the GEMM's precision plus BF16 activations) with fitted efficiencies, see
  :class:`RooflineOp`; an FP8 checkpoint may keep some GEMMs (or whole layers) in BF16;
* memory-bound element-wise ops ``norm`` (x2), ``rope``, ``act``, ``add`` (x2);
* attention: prefill from causal-pair FLOPs, decode from KV-cache bytes read;
* two all-reduces of the activations when TP > 1: the stack's custom all-reduce for small
  messages (a latency plus NVLink bandwidth), NCCL (fitted tables) for large ones;

plus the embedding gather and the LM head (on sampled rows only, always BF16) once per
iteration, and a fixed CPU cost per iteration and per sequence. Units: seconds, bytes, all per
GPU. FLOPs are counted in BF16 equivalents (``FLOPs x peak_bf16 / peak`` of their precision):
tensor-core time at the BF16 rate, which is what the power model's energy per FLOP and the
DVFS model's compute-bound time are fitted in, so an FP8 FLOP costs half a BF16 one.

Postcondition: :meth:`TimingModel.iteration_s` is > 0 for any shape with work, so the clock
always advances.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from simulator.catalog import ModelShape
from simulator.physics.hardware import BYTES_PER_ELEMENT, GPUSpec
from simulator.physics.layers import ACT_BYTES, gemm_precisions, kv_heads_per_gpu, layer_gemms
from simulator.physics.params import RooflineOp, TimingParams
from simulator.physics.shapes import IterationShape


@dataclass(slots=True)
class Work:
    """Time and work of an iteration (or a part of it), per GPU: seconds, BF16-equivalent tensor
    FLOPs, HBM bytes, and its phases: ``(time_s, flops, hbm_bytes)`` of the non-attention ops,
    of prefill attention and of decode attention (kernel overheads that move nothing belong
    to none), from which the power model reads how active the GPU is."""

    time_s: float
    flops: float
    hbm_bytes: float
    phases: tuple[tuple[float, float, float], ...] = ()


def roofline_s(op: RooflineOp, m: float, flops: float, nbytes: float, peak_flops: float,
               bw_bytes_per_s: float) -> float:
    """Time of one kernel in seconds under the fitted roofline (see :class:`RooflineOp`)."""
    eta_c = op.eta_compute_max * (m / (m + op.m_half_tokens) if op.m_half_tokens > 0 else 1.0)
    return op.overhead_s + max(flops / (peak_flops * eta_c), nbytes / (bw_bytes_per_s * op.eta_memory))


@dataclass(frozen=True)
class DecodeLine:
    """A decode-only iteration of fixed batch size n is linear in its total context c:

    ``time_s = t0_s + t1_s * c``, ``flops = f0 + f1 * c``, ``hbm_bytes = b0 + b1 * c``; its
    phases are the non-attention ops ``(lin_s, f0, b0)`` and decode attention
    ``(t1_s c, f1 c, b1 c)`` (the attention's per-layer overhead, in ``t0_s``, moves nothing).
    """

    n_seqs: int
    t0_s: float
    t1_s: float
    f0: float
    f1: float
    b0: float
    b1: float
    lin_s: float

    def work(self, c: float) -> Work:
        """The iteration at total context ``c``."""
        return Work(self.t0_s + self.t1_s * c, self.f0 + self.f1 * c, self.b0 + self.b1 * c,
                    ((self.lin_s, self.f0, self.b0), (self.t1_s * c, self.f1 * c, self.b1 * c)))


class TimingModel:
    """Timing of one replica (``tp`` GPUs) serving ``model`` in ``precision``.

    Pure: holds only constants derived from its arguments; results are cached by shape.
    """

    def __init__(self, model: ModelShape, tp: int, precision: str, params: TimingParams,
                 kv_precision: str, gpu: GPUSpec):
        self.model, self.tp, self.params, self.gpu = model, tp, params, gpu
        self.kv_bytes = BYTES_PER_ELEMENT[kv_precision]
        self.peak = gpu.peak_bf16_flops  # attention, the LM head and BF16 GEMMs
        self.bw = gpu.hbm_bw_bytes_per_s
        m = model
        self.heads_gpu = m.heads / tp
        self.kv_heads_gpu = kv_heads_per_gpu(m, tp)
        # (name, K, N) of the per-layer GEMMs on one GPU, and their (layers, precision) groups
        self.gemms = layer_gemms(m, tp)
        self.groups = {name: gemm_precisions(m, precision, name) for name, _, _ in self.gemms}
        # element-wise ops: (name, count per layer, bytes moved per token)
        d, f = m.hidden_size, m.ffn_size / tp
        self.elementwise = [
            ("norm", 2, 2 * d * ACT_BYTES),
            ("rope", 1, 2 * (self.heads_gpu + self.kv_heads_gpu) * m.head_dim * ACT_BYTES),
            ("act", 1, ((3 if m.gated_mlp else 2) * f) * ACT_BYTES),
            ("add", 2, 3 * d * ACT_BYTES),
        ]
        # KV-cache bytes of one context token in one layer on one GPU (K and V); a stack that
        # repeats K/V to every query head reads them once per query head
        kv_read_heads = self.heads_gpu if params.attn_expanded_kv else self.kv_heads_gpu
        self.kv_bytes_token_layer = 2 * kv_read_heads * m.head_dim * self.kv_bytes
        self.attn_flops_pair_layer = 4.0 * self.heads_gpu * m.head_dim  # QK^T and PV, 2 FLOP/MAC
        self._linear_cached = lru_cache(maxsize=8192)(self._linear)
        self._decode_lines: dict[int, DecodeLine] = {}
        self._decode_att: dict[int, tuple[float, float, float, float]] = {}

    # ----------------------------------------------------------------- pieces
    def gemm(self, name: str, m_rows: float, k: float, n: float, precision: str = "bf16") -> Work:
        """One GEMM of ``m_rows`` x ``k`` by ``k`` x ``n`` weights in ``precision``, on one GPU
        (FLOPs in BF16 equivalents)."""
        flops = 2.0 * m_rows * k * n
        peak = self.gpu.peak_flops(precision)
        nbytes = k * n * BYTES_PER_ELEMENT[precision] + m_rows * (k + n) * ACT_BYTES
        t = roofline_s(self.params.gemm_op(name), m_rows, flops, nbytes, peak, self.bw)
        return Work(t, flops * (self.peak / peak), nbytes)

    def elementwise_op(self, name: str, m_rows: float, bytes_per_row: float) -> Work:
        nbytes = m_rows * bytes_per_row
        t = roofline_s(self.params.elementwise_op(name), m_rows, 0.0, nbytes, self.peak, self.bw)
        return Work(t, 0.0, nbytes)

    def all_reduce_s(self, m_rows: float) -> float:
        """One all-reduce of the ``m_rows x hidden`` activations across the TP group: the
        stack's custom all-reduce for small messages, NCCL (fitted) above its size limit."""
        if self.tp == 1:
            return 0.0
        nbytes = m_rows * self.model.hidden_size * ACT_BYTES
        # bandwidth term of an all-reduce over NVLink: 2 (p - 1) / p of the data each way
        wire_s = 2 * (self.tp - 1) / self.tp * nbytes / (self.gpu.nvlink_bw_bytes_per_s / 2)
        custom = self.params.custom_all_reduce
        if custom is not None and nbytes <= custom.max_bytes:
            return custom.latency_s + wire_s / custom.nvlink_efficiency
        fit = self.params.all_reduce.get(self.tp)
        if fit is None:
            return wire_s
        return fit.alpha_s + fit.beta_s_per_byte * nbytes

    def _layer_rest(self, m_rows: float) -> Work:
        """Element-wise ops and the two all-reduces of one layer."""
        t = by = 0.0
        for name, count, bpr in self.elementwise:
            w = self.elementwise_op(name, m_rows, bpr)
            t, by = t + count * w.time_s, by + count * w.hbm_bytes
        return Work(t + 2 * self.all_reduce_s(m_rows), 0.0, by)

    def _linear(self, m_rows: int, sampled: int) -> Work:
        """Whole-model non-attention work: every layer's GEMMs in their precision groups,
        element-wise ops and all-reduces, embedding, LM head, CPU costs."""
        L = self.model.layers
        t = fl = by = 0.0
        for name, k, n in self.gemms:
            for count, prec in self.groups[name]:
                w = self.gemm(name, m_rows, k, n, prec)
                t, fl, by = t + count * w.time_s, fl + count * w.flops, by + count * w.hbm_bytes
        rest = self._layer_rest(m_rows)
        emb = self.elementwise_op("emb", m_rows, self.model.hidden_size * ACT_BYTES)
        head = (self.gemm("lm_head", sampled, self.model.hidden_size, self.model.vocab_size / self.tp)
                if sampled else Work(0.0, 0.0, 0.0))
        p = self.params
        t += L * rest.time_s + emb.time_s + head.time_s + p.iteration_fixed_s + p.per_seq_s * sampled
        fl += head.flops
        by += L * rest.hbm_bytes + emb.hbm_bytes + head.hbm_bytes
        return Work(t, fl, by, ((t, fl, by),))

    def decode_attention(self, n_seqs: int) -> tuple[float, float, float, float]:
        """(t0_s, t1_s per context token, FLOPs and bytes per context token) of decode attention.

        Roofline of a kernel whose FLOPs and bytes are both proportional to the context: the
        binding side does not change with the context, so time is exactly linear in it.
        """
        hit = self._decode_att.get(n_seqs)
        if hit is not None:
            return hit
        L, op = self.model.layers, self.params.attn_decode
        eta_c = op.eta_compute_max * (n_seqs / (n_seqs + op.m_half_tokens) if op.m_half_tokens else 1.0)
        f1 = self.attn_flops_pair_layer
        b1 = self.kv_bytes_token_layer
        t1 = max(f1 / (self.peak * eta_c), b1 / (self.bw * op.eta_memory))
        hit = self._decode_att[n_seqs] = (L * op.overhead_s, L * t1, L * f1, L * b1)
        return hit

    # ------------------------------------------------------------------- API
    def work(self, s: IterationShape) -> Work:
        """Time, FLOPs and HBM bytes of one iteration, per GPU of the replica: the cached
        non-attention work of its rows plus the attention of its prefill chunks (causal-pair
        FLOPs, KV bytes) and of its decodes (:meth:`decode_attention`, linear in context)."""
        lin = self._linear_cached(s.prefill_tokens + s.decode_seqs, s.sampled_seqs)
        t = fl = by = 0.0
        phases = lin.phases
        if s.prefill_tokens:
            L = self.model.layers
            flops = self.attn_flops_pair_layer * s.prefill_attn_pairs
            nbytes = ((s.prefill_tokens + s.prefill_prefix_tokens) * self.kv_bytes_token_layer
                      + 2 * s.prefill_tokens * self.heads_gpu * self.model.head_dim * ACT_BYTES)
            t += L * roofline_s(self.params.attn_prefill, s.prefill_tokens, flops, nbytes,
                                self.peak, self.bw)
            fl, by = L * flops, L * nbytes
            phases = phases + ((t, fl, by),)
        if s.decode_seqs:
            a0, a1, f1, b1 = self.decode_attention(s.decode_seqs)
            c = s.decode_ctx_tokens
            t += a0 + a1 * c
            fl += f1 * c
            by += b1 * c
            phases = phases + ((a1 * c, f1 * c, b1 * c),)
        return Work(lin.time_s + t, lin.flops + fl, lin.hbm_bytes + by, phases)

    def iteration_s(self, s: IterationShape) -> float:
        """Uncapped duration of one iteration in seconds."""
        return self.work(s).time_s

    def decode_line(self, n_seqs: int) -> DecodeLine:
        """Linear coefficients of a decode-only iteration of ``n_seqs`` sequences."""
        line = self._decode_lines.get(n_seqs)
        if line is None:
            lin = self._linear_cached(n_seqs, n_seqs)
            a0, a1, f1, b1 = self.decode_attention(n_seqs)
            line = DecodeLine(n_seqs, lin.time_s + a0, a1, lin.flops, f1, lin.hbm_bytes, b1,
                              lin.time_s)
            self._decode_lines[n_seqs] = line
        return line
