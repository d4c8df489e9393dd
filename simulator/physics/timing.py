"""Iteration time of a tensor-parallel replica: a pure function of the iteration's shape.

Per layer and per GPU of a TP group (shapes sharded Megatron-style, :mod:`.layers`):

* GEMMs ``qkv``, ``o``, ``up`` (gate+up when gated), ``down``: roofline of their FLOPs and bytes
  (weights in the GEMM's precision plus BF16 activations) with fitted efficiencies, see
  :class:`RooflineOp`; an FP8 checkpoint may keep some GEMMs (or whole layers) in BF16;
* in a mixture of experts' MoE layers, the router, the shared expert (as ``up``/``down``) and
  the routed experts (:meth:`TimingModel.experts`: one grouped GEMM over the touched experts'
  weights, fitted efficiencies ``experts``);
* memory-bound element-wise ops ``norm`` (x2), ``rope``, ``act``, ``add`` (x2);
* attention: prefill from causal-pair FLOPs, decode from KV-cache bytes read (multi-head latent
  attention: the latent, with the up-projections absorbed; sliding-window layers: the window);
* two all-reduces of the activations when TP > 1: the stack's custom all-reduce for small
  messages (a latency plus NVLink bandwidth), NCCL (fitted tables) for large ones;
* under attention data parallelism (a mixture of experts served as vLLM ``--data-parallel-size
  tp --enable-expert-parallel``), each GPU is a rank with its own sequences, its own attention
  and dense layers whole (no per-layer all-reduce), and the routed experts of every rank's
  tokens spread whole over the GPUs, dispatched and combined per MoE layer by an all-gather and
  a reduce-scatter of the whole batch's activations (vLLM's default ``allgather_reducescatter``
  backend: an all-reduce's traffic, timed with the fitted NCCL all-reduce). The ranks step
  together and an iteration lasts as long as the busiest: decodes are shared evenly, each
  prefill chunk runs on a rank of its own (:meth:`TimingModel.rank_share`);

plus the embedding gather and the LM head (on sampled rows only, always BF16) once per
iteration, and a fixed CPU cost per iteration and per sequence. Units: seconds, bytes, all per
GPU. FLOPs are counted in BF16 equivalents (``FLOPs x peak_bf16 / peak`` of their precision):
tensor-core time at the BF16 rate, which is what the power model's activity and the DVFS
model's compute-bound time are expressed in.

Postcondition: :meth:`TimingModel.iteration_s` is > 0 for any shape with work, so the clock
always advances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from simulator.catalog import ModelShape
from simulator.physics.hardware import BYTES_PER_ELEMENT, GPUSpec
from simulator.physics.layers import (ACT_BYTES, dense_gemms, expert_ffn, expert_precision,
                                      kv_heads_per_gpu)
from simulator.physics.params import RooflineOp, TimingParams
from simulator.physics.shapes import IterationShape


@dataclass(slots=True)
class Work:
    """Time and work of an iteration (or a part of it), per GPU: seconds, BF16-equivalent tensor
    FLOPs, HBM bytes, and its phases: ``(time_s, flops, hbm_bytes)`` of the non-attention ops,
    of a mixture of experts' routed experts, of prefill attention and of decode attention
    (kernel overheads that move nothing belong to none), from which the power model reads how
    active the GPU is. The routed experts' row carries the FLOPs and bytes that give their
    busy rates (:meth:`TimingModel.experts`), not their totals."""

    time_s: float
    flops: float
    hbm_bytes: float
    phases: tuple[tuple[float, float, float], ...] = ()


def roofline_s(op: RooflineOp, m: float, flops: float, nbytes: float, peak_flops: float,
               bw_bytes_per_s: float) -> float:
    """Time of one kernel in seconds under the fitted roofline (see :class:`RooflineOp`)."""
    eta_c = op.eta_compute_max * (m / (m + op.m_half_tokens) if op.m_half_tokens > 0 else 1.0)
    return op.overhead_s + max(flops / (peak_flops * eta_c), nbytes / (bw_bytes_per_s * op.eta_memory))


@lru_cache(maxsize=64)
def _popularity(E: int, k: int, s: float) -> tuple[float, ...]:
    """Per-token probability ``q_i`` that expert ``i`` is among a token's ``k`` (``sum q_i = k``,
    each at most 1) with Zipf popularity ``p_i ~ i^-s``: ``q_i = min(1, c p_i)``, ``c`` such that
    the ``q_i`` sum to ``k`` (a token picks ``k`` distinct experts)."""
    w = [(i + 1) ** -s for i in range(E)]
    capped, rest = 0, sum(w)
    while capped < E:  # the most popular experts saturate at 1 first
        c = (k - capped) / rest
        if c * w[capped] <= 1.0:
            break
        rest -= w[capped]
        capped += 1
    return tuple(1.0 if i < capped else c * x for i, x in enumerate(w))


def touched_fraction(E: int, k: int, m_rows: float, s: float = 0.0) -> float:
    """Expected fraction of ``E`` experts that at least one of ``m_rows`` tokens (``k`` experts
    each) routes to: ``1 - (1 - k / E)^m`` under uniform routing (``s`` = 0); with Zipf
    popularity of exponent ``s``, the mean over experts of ``1 - (1 - k p_i)^m`` (popular experts
    are shared by many tokens, so fewer distinct experts are touched)."""
    if k >= E:
        return 1.0
    if s <= 0.0:
        return -math.expm1(m_rows * math.log1p(-k / E))
    tot = 0.0
    for q in _popularity(int(E), int(k), float(s)):
        tot += 1.0 if q >= 1.0 else -math.expm1(m_rows * math.log1p(-q))
    return tot / E


@dataclass(frozen=True)
class DecodeLine:
    """A decode-only iteration of fixed batch size n is linear in its total context c:

    ``time_s = t0_s + t1_s * c``, ``flops = f0 + f1 * c``, ``hbm_bytes = b0 + b1 * c``; its
    phases are those that do not depend on c (``const_phases``: the non-attention ops, the
    sliding-window layers' attention) and the full layers' decode attention
    ``(t1_s c, f1 c, b1 c)`` (the attention's per-layer overhead, in ``t0_s``, moves nothing).
    """

    n_seqs: int
    t0_s: float
    t1_s: float
    f0: float
    f1: float
    b0: float
    b1: float
    const_phases: tuple[tuple[float, float, float], ...]

    def work(self, c: float) -> Work:
        """The iteration at total context ``c``."""
        return Work(self.t0_s + self.t1_s * c, self.f0 + self.f1 * c, self.b0 + self.b1 * c,
                    self.const_phases + ((self.t1_s * c, self.f1 * c, self.b1 * c),))


class TimingModel:
    """Timing of one replica (``tp`` GPUs) serving ``model`` in ``precision``.

    ``attention_data_parallel`` (a mixture of experts under expert parallelism only): each GPU is
    a data-parallel rank for everything but the routed experts. Results are per GPU of the
    busiest rank, for iteration shapes of the whole replica (every rank's sequences).

    Pure: holds only constants derived from its arguments; results are cached by shape.
    """

    def __init__(self, model: ModelShape, tp: int, precision: str, params: TimingParams,
                 kv_precision: str, gpu: GPUSpec, expert_parallel: bool = False,
                 attention_data_parallel: bool = False):
        if attention_data_parallel and not (model.is_moe and expert_parallel):
            raise ValueError("attention data parallelism needs a mixture of experts under"
                             " expert parallelism")
        self.model, self.tp, self.params, self.gpu = model, tp, params, gpu
        self.precision, self.expert_parallel = precision, expert_parallel
        #: data-parallel ranks (1: attention tensor-parallel over the replica's GPUs)
        self.ranks = tp if attention_data_parallel else 1
        at = 1 if attention_data_parallel else tp  # GPUs splitting all but the routed experts
        self.kv_bytes = BYTES_PER_ELEMENT[kv_precision]
        self.peak = gpu.peak_bf16_flops  # attention, the LM head and BF16 GEMMs
        self.bw = gpu.hbm_bw_bytes_per_s
        m = model
        self.heads_gpu = m.heads / at
        self.kv_heads_gpu = kv_heads_per_gpu(m, at)
        # every GEMM but the routed experts, grouped by (shape, precision), on one GPU
        self.gemms = dense_gemms(m, at, precision)
        # element-wise ops over the whole model: (name, count, bytes moved per token)
        d, g = m.hidden_size, (3 if m.gated_mlp else 2)
        moe_width = (m.experts_per_token * expert_ffn(m, precision) + m.shared_expert_ffn_size) / at
        self.elementwise = [
            ("norm", 2 * m.layers, 2 * d * ACT_BYTES),
            ("rope", m.layers, 2 * (self.heads_gpu + self.kv_heads_gpu) * m.head_dim * ACT_BYTES),
            ("act", m.dense_mlp_layers, g * m.ffn_size / tp * ACT_BYTES),
            ("act", m.moe_layers, g * moe_width * ACT_BYTES),
            ("add", 2 * m.layers, 3 * d * ACT_BYTES),
        ]
        # _linear's constants, looked up once: per GEMM group (and the LM head) and per
        # element-wise op, what gemm() and elementwise_op() would look up on every call
        head_k, head_n = m.hidden_size, m.vocab_size / at
        self._gemm_rows = tuple(self._gemm_row(g.op, g.k, g.n, g.precision, g.count)
                                for g in self.gemms)
        self._head_row = self._gemm_row("lm_head", head_k, head_n, "bf16", 1)
        self._elementwise_rows = tuple(self._elementwise_row(name, count, bpr)
                                       for name, count, bpr in self.elementwise if count)
        self._emb_row = self._elementwise_row("emb", 1, m.hidden_size * ACT_BYTES)
        # KV-cache bytes of one context token in one layer on one GPU: K and V of the GPU's
        # heads (a stack that repeats K/V to every query head reads them once per query head),
        # or the latent of multi-head latent attention (the same on every GPU)
        if m.mla:
            self.kv_bytes_token_layer = (m.kv_lora_rank + m.qk_rope_head_dim) * self.kv_bytes
            # decode with the up-projections absorbed: scores over the latent and rope parts,
            # values over the latent
            self.decode_flops_pair_layer = 2.0 * self.heads_gpu * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
        else:
            kv_read_heads = self.heads_gpu if params.attn_expanded_kv else self.kv_heads_gpu
            self.kv_bytes_token_layer = 2 * kv_read_heads * m.head_dim * self.kv_bytes
            self.decode_flops_pair_layer = 2.0 * self.heads_gpu * (m.head_dim + m.v_head_dim)
        # QK^T and PV, 2 FLOP per multiply-add
        self.attn_flops_pair_layer = 2.0 * self.heads_gpu * (m.head_dim + m.v_head_dim)
        self._linear_cached = lru_cache(maxsize=8192)(self._linear)
        self._decode_lines: dict[int, DecodeLine] = {}
        self._decode_att: dict[float, tuple[float, float, float, float]] = {}
        self._sliding: dict[float, Work] = {}

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
        custom = self.params.custom_all_reduce
        if custom is not None and nbytes <= custom.max_bytes:
            return custom.latency_s + self._wire_s(nbytes) / custom.nvlink_efficiency
        return self._nccl_s(nbytes)

    def _wire_s(self, nbytes: float) -> float:
        """Bandwidth term of an all-reduce over NVLink: 2 (p - 1) / p of the data each way."""
        return 2 * (self.tp - 1) / self.tp * nbytes / (self.gpu.nvlink_bw_bytes_per_s / 2)

    def _nccl_s(self, nbytes: float) -> float:
        """An NCCL all-reduce of ``nbytes`` over the replica's GPUs (fitted per group size;
        the wire time where no fit exists)."""
        fit = self.params.all_reduce.get(self.tp)
        if fit is None:
            return self._wire_s(nbytes)
        return fit.alpha_s + fit.beta_s_per_byte * nbytes

    def _gemm_row(self, name: str, k: float, n: float, precision: str, count: int) -> tuple:
        """What :meth:`gemm` looks up for a GEMM of ``k`` x ``n`` weights (``count`` of them
        per iteration), with the products it forms from them alone."""
        op = self.params.gemm_op(name)
        peak = self.gpu.peak_flops(precision)
        return (count, k, n, k * n * BYTES_PER_ELEMENT[precision], k + n, op.eta_compute_max,
                op.m_half_tokens, op.overhead_s, self.bw * op.eta_memory, peak, self.peak / peak)

    def _elementwise_row(self, name: str, count: int, bytes_per_row: float) -> tuple:
        """What :meth:`elementwise_op` looks up for op ``name`` (``count`` per iteration)."""
        op = self.params.elementwise_op(name)
        return (count, bytes_per_row, op.eta_compute_max, op.m_half_tokens, op.overhead_s,
                self.bw * op.eta_memory)

    def dispatch_combine_s(self, m_total: float) -> float:
        """One MoE layer's dispatch and combine under attention data parallelism: an all-gather
        of every rank's ``m_total`` token rows and a reduce-scatter of the results over the
        replica's GPUs, an all-reduce's traffic (NCCL, fitted)."""
        return self._nccl_s(m_total * self.model.hidden_size * ACT_BYTES)

    def _comm_s(self, m_rows: float, m_total: float) -> float:
        """Collectives of one iteration: two all-reduces per layer (tensor-parallel attention),
        or one dispatch and combine per MoE layer (attention data parallelism)."""
        if self.ranks > 1:
            return self.model.moe_layers * self.dispatch_combine_s(m_total)
        return 2 * self.model.layers * self.all_reduce_s(m_rows)

    def _rest(self, m_rows: float, m_total: float | None = None) -> Work:
        """Element-wise ops of every layer and the collectives (``m_total``: the rows of every
        data-parallel rank, default ``m_rows``)."""
        t = by = 0.0
        for name, count, bpr in self.elementwise:
            if count:
                w = self.elementwise_op(name, m_rows, bpr)
                t, by = t + count * w.time_s, by + count * w.hbm_bytes
        return Work(t + self._comm_s(m_rows, m_rows if m_total is None else m_total), 0.0, by)

    def experts(self, m_rows: float) -> Work:
        """The routed experts of every MoE layer for ``m_rows`` tokens, on the busiest GPU.

        Under uniform routing an expert receives at least one of the ``m`` tokens with
        probability ``1 - (1 - k / E)^m``; with Zipf popularity
        (``TimingParams.expert_popularity_exponent`` > 0, :func:`touched_fraction`) popular
        experts are shared by more tokens and fewer distinct ones are touched. Every expert
        touched has its weights read whole (why small-batch MoE decode reads far more than its
        active parameters). With expert
        parallelism a GPU holds ``E / tp`` whole experts and gets ``m k / tp`` token rows on
        average; the busiest one ``skew x`` that ``+ sqrt(2 mean ln tp)`` (the expected maximum
        of ``tp`` Poisson-like loads; ``skew`` = ``TimingParams.expert_skew``, routing beyond
        uniform). Sliced like a dense MLP (tensor parallelism), every GPU does ``1 / tp`` of
        every touched expert for all ``m k`` rows. The grouped GEMM's compute efficiency
        follows the rows per touched expert.

        Power (the returned phase): the expert kernels count as busy for their whole time, at
        the FLOP and byte rates of the same work run at the dense ``up`` GEMM's fitted
        efficiencies; their fitted efficiencies set how long they take, not how idle the GPU
        is meanwhile.
        """
        mdl, tp = self.model, self.tp
        E, k = mdl.experts, mdl.experts_per_token
        prec = expert_precision(mdl, self.precision)
        f = expert_ffn(mdl, self.precision)
        p_touch = touched_fraction(E, k, m_rows, self.params.expert_popularity_exponent)
        routed = m_rows * k
        if self.expert_parallel and tp > 1:
            mean = routed / tp
            rows = self.params.expert_skew * mean + math.sqrt(2.0 * mean * math.log(tp))
            touched, width = E / tp * p_touch, f
        else:
            rows, touched, width = routed, E * p_touch, f / tp
        per_expert = mdl.mlp_params(1) * width  # gate, up and down weights of one expert slice
        flops = 2.0 * rows * per_expert
        nbytes = (touched * per_expert * BYTES_PER_ELEMENT[prec]
                  + rows * (2 * mdl.hidden_size + (3 if mdl.gated_mlp else 2) * width) * ACT_BYTES)
        peak = self.gpu.peak_flops(prec)
        m_eff = rows / touched if touched > 0 else 0.0
        t = roofline_s(self.params.expert_op(prec), m_eff, flops, nbytes, peak, self.bw)
        if self.expert_parallel and tp > 1:
            t += self.params.expert_parallel_layer_s
        L = mdl.moe_layers
        fl_eq = flops * (self.peak / peak)
        # the power model's view (Work.phases): the expert kernels keep the SMs busy for their
        # whole time, at the rates of the same FLOPs and bytes run at the dense GEMMs' fitted
        # efficiencies (their extra time is tiles padded for few rows, scaling and routing
        # work, not idle time)
        up = self.params.gemm_op("up")
        t_busy = max(flops / (peak * up.eta_compute_max), nbytes / (self.bw * up.eta_memory))
        k_busy = t / t_busy if t_busy > 0 else 1.0
        return Work(L * t, L * fl_eq, L * nbytes, ((L * t, L * fl_eq * k_busy, L * nbytes * k_busy),))

    def _linear(self, m_rows: float, sampled: float, m_total: float | None = None) -> Work:
        """Whole-model non-attention work: every GEMM in its precision group, the routed
        experts, element-wise ops and all-reduces, embedding, LM head, CPU costs. ``m_rows``
        and ``sampled``: one rank's; ``m_total``: every rank's rows, which the routed experts
        and their dispatch see (attention data parallelism; default ``m_rows``).

        :meth:`gemm`, :meth:`_rest` and :meth:`elementwise_op` written out over constants
        looked up once (``_gemm_rows``, ...), with the same floating-point expressions in the
        same order: the same result, bit for bit (``tests/test_physics.py``)."""
        t = fl = by = 0.0
        bw, peak_bf16 = self.bw, self.peak
        m = m_rows
        for count, k, n, weight_bytes, kn, eta_max, m_half, overhead, bw_eta, peak, ratio \
                in self._gemm_rows:
            flops = 2.0 * m * k * n
            nbytes = weight_bytes + m * kn * ACT_BYTES
            eta_c = eta_max * (m / (m + m_half) if m_half > 0 else 1.0)
            w_t = overhead + max(flops / (peak * eta_c), nbytes / bw_eta)
            t, fl, by = t + count * w_t, fl + count * (flops * ratio), by + count * nbytes
        rest_t = rest_by = 0.0
        for count, bpr, eta_max, m_half, overhead, bw_eta in self._elementwise_rows:
            nbytes = m * bpr
            eta_c = eta_max * (m / (m + m_half) if m_half > 0 else 1.0)
            w_t = overhead + max(0.0 / (peak_bf16 * eta_c), nbytes / bw_eta)
            rest_t, rest_by = rest_t + count * w_t, rest_by + count * nbytes
        if self.ranks > 1:
            rest_t = rest_t + self._comm_s(m_rows, m_total)
        else:
            rest_t = rest_t + 2 * self.model.layers * self.all_reduce_s(m_rows)
        _, bpr, eta_max, m_half, overhead, bw_eta = self._emb_row
        emb_by = m * bpr
        eta_c = eta_max * (m / (m + m_half) if m_half > 0 else 1.0)
        emb_t = overhead + max(0.0 / (peak_bf16 * eta_c), emb_by / bw_eta)
        head_t = head_fl = head_by = 0.0
        if sampled:
            _, k, n, weight_bytes, kn, eta_max, m_half, overhead, bw_eta, peak, ratio = \
                self._head_row
            s = sampled
            flops = 2.0 * s * k * n
            head_by = weight_bytes + s * kn * ACT_BYTES
            eta_c = eta_max * (s / (s + m_half) if m_half > 0 else 1.0)
            head_t = overhead + max(flops / (peak * eta_c), head_by / bw_eta)
            head_fl = flops * ratio
        p = self.params
        t += rest_t + emb_t + head_t + p.iteration_fixed_s + p.per_seq_s * sampled
        fl += head_fl
        by += rest_by + emb_by + head_by
        if self.model.is_moe and m_rows:  # the routed experts: a phase of their own
            e = self.experts(m_rows if m_total is None else m_total)
            return Work(t + e.time_s, fl + e.flops, by + e.hbm_bytes, ((t, fl, by),) + e.phases)
        return Work(t, fl, by, ((t, fl, by),))

    def decode_attention(self, n_seqs: float) -> tuple[float, float, float, float]:
        """(t0_s, t1_s per context token, FLOPs and bytes per context token) of decode attention
        in the full-attention layers (``t0_s``: every layer's kernel overhead).

        Roofline of a kernel whose FLOPs and bytes are both proportional to the context: the
        binding side does not change with the context, so time is exactly linear in it.
        """
        hit = self._decode_att.get(n_seqs)
        if hit is not None:
            return hit
        L, op = self.model.full_attention_layers, self.params.attn_decode
        eta_c = op.eta_compute_max * (n_seqs / (n_seqs + op.m_half_tokens) if op.m_half_tokens else 1.0)
        f1 = self.decode_flops_pair_layer
        b1 = self.kv_bytes_token_layer
        t1 = max(f1 / (self.peak * eta_c), b1 / (self.bw * op.eta_memory))
        hit = self._decode_att[n_seqs] = (self.model.layers * op.overhead_s, L * t1, L * f1, L * b1)
        return hit

    def sliding_decode(self, n_seqs: float) -> Work:
        """Decode attention of the sliding-window layers: each sequence reads its last
        ``sliding_window_tokens`` tokens (its whole context when shorter: not modelled, a
        small overestimate for windows of a few hundred tokens)."""
        hit = self._sliding.get(n_seqs)
        if hit is None:
            m = self.model
            ctx = n_seqs * m.sliding_window_tokens
            a0, a1, f1, b1 = self.decode_attention(n_seqs)
            per_layer = (a1 / m.full_attention_layers if m.full_attention_layers else
                         max(self.decode_flops_pair_layer / self.peak,
                             self.kv_bytes_token_layer / (self.bw * self.params.attn_decode.eta_memory)))
            Ls = m.sliding_window_layers
            hit = self._sliding[n_seqs] = Work(Ls * per_layer * ctx, Ls * self.decode_flops_pair_layer * ctx,
                                               Ls * self.kv_bytes_token_layer * ctx)
        return hit

    def rank_share(self, s: IterationShape) -> IterationShape:
        """The busiest data-parallel rank's part of the replica's iteration ``s``: an even
        share of the decodes and their context, and the prefill chunks spread one to a rank
        (a rank takes ``1 / min(ranks, chunks)`` of them, with their own sampled rows).
        Fractional: an expectation, not a count."""
        D = self.ranks
        p = min(D, s.prefill_seqs) if s.prefill_seqs else 1
        finishing = max(s.sampled_seqs - s.decode_seqs, 0)
        return IterationShape(s.prefill_tokens / p, s.prefill_attn_pairs / p,
                              s.prefill_prefix_tokens / p, s.prefill_seqs / p,
                              finishing / p + s.decode_seqs / D, s.decode_seqs / D,
                              s.decode_ctx_tokens / D)

    # ------------------------------------------------------------------- API
    def work(self, s: IterationShape) -> Work:
        """Time, FLOPs and HBM bytes of one iteration, per GPU of the replica: the cached
        non-attention work of its rows plus the attention of its prefill chunks (causal-pair
        FLOPs, KV bytes) and of its decodes (:meth:`decode_attention`, linear in context).
        Under attention data parallelism, of the busiest rank (:meth:`rank_share`)."""
        if self.ranks > 1:
            m_total = s.prefill_tokens + s.decode_seqs
            s = self.rank_share(s)
            lin = self._linear_cached(s.prefill_tokens + s.decode_seqs, s.sampled_seqs, m_total)
        else:
            lin = self._linear_cached(s.prefill_tokens + s.decode_seqs, s.sampled_seqs)
        t = fl = by = 0.0
        phases = lin.phases
        m = self.model
        if s.prefill_tokens:
            Lf, Ls = m.full_attention_layers, m.sliding_window_layers
            flops = self.attn_flops_pair_layer * s.prefill_attn_pairs
            nbytes = ((s.prefill_tokens + s.prefill_prefix_tokens) * self.kv_bytes_token_layer
                      + 2 * s.prefill_tokens * self.heads_gpu * m.head_dim * ACT_BYTES)
            t += Lf * roofline_s(self.params.attn_prefill, s.prefill_tokens, flops, nbytes,
                                 self.peak, self.bw)
            fl, by = Lf * flops, Lf * nbytes
            if Ls:  # a window caps each query's keys
                pairs = min(s.prefill_attn_pairs, s.prefill_tokens * m.sliding_window_tokens)
                sf = self.attn_flops_pair_layer * pairs
                sb = (min(s.prefill_tokens + s.prefill_prefix_tokens,
                          s.prefill_tokens + s.prefill_seqs * m.sliding_window_tokens)
                      * self.kv_bytes_token_layer
                      + 2 * s.prefill_tokens * self.heads_gpu * m.head_dim * ACT_BYTES)
                t += Ls * roofline_s(self.params.attn_prefill, s.prefill_tokens, sf, sb, self.peak, self.bw)
                fl, by = fl + Ls * sf, by + Ls * sb
            phases = phases + ((t, fl, by),)
        if s.decode_seqs:
            a0, a1, f1, b1 = self.decode_attention(s.decode_seqs)
            c = s.decode_ctx_tokens
            t += a0 + a1 * c
            fl += f1 * c
            by += b1 * c
            phases = phases + ((a1 * c, f1 * c, b1 * c),)
            if m.sliding_window_layers:
                sw = self.sliding_decode(s.decode_seqs)
                t, fl, by = t + sw.time_s, fl + sw.flops, by + sw.hbm_bytes
                phases = phases + ((sw.time_s, sw.flops, sw.hbm_bytes),)
        return Work(lin.time_s + t, lin.flops + fl, lin.hbm_bytes + by, phases)

    def iteration_s(self, s: IterationShape) -> float:
        """Uncapped duration of one iteration in seconds."""
        return self.work(s).time_s

    def decode_line(self, n_seqs: int) -> DecodeLine:
        """Linear coefficients of a decode-only iteration of ``n_seqs`` sequences (in the
        replica's total context; under attention data parallelism a rank holds ``1 / ranks``
        of the sequences and of the context)."""
        line = self._decode_lines.get(n_seqs)
        if line is None:
            D = self.ranks
            n = n_seqs / D if D > 1 else n_seqs
            lin = self._linear_cached(n, n, n_seqs) if D > 1 else self._linear_cached(n_seqs, n_seqs)
            a0, a1, f1, b1 = self.decode_attention(n)
            if D > 1:
                a1, f1, b1 = a1 / D, f1 / D, b1 / D
            const = lin.phases
            t0, f0, b0 = lin.time_s + a0, lin.flops, lin.hbm_bytes
            if self.model.sliding_window_layers:
                sw = self.sliding_decode(n)
                const = const + ((sw.time_s, sw.flops, sw.hbm_bytes),)
                t0, f0, b0 = t0 + sw.time_s, f0 + sw.flops, b0 + sw.hbm_bytes
            line = DecodeLine(n_seqs, t0, a1, f0, f1, b0, b1, const)
            self._decode_lines[n_seqs] = line
        return line
