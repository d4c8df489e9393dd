"""The one interface between the engine and the physics of a replica.

The engine asks an :class:`IterationModel` for the cost of an iteration's shape under a GPU
cap (:meth:`IterationModel.cost`), and for the closed form of a run of decode-only iterations
(:meth:`IterationModel.decode_span`: duration, energy, iterations within a time, peak power,
the inter-token-latency line). It never reads a coefficient. A model family with a different
iteration (mixture of experts, compressed KV) is a different timing model behind the same door.
"""

from __future__ import annotations

from simulator.catalog import ModelShape
from simulator.physics.dvfs import DVFSParams
from simulator.physics.hardware import GPUSpec
from simulator.physics.params import Calibration
from simulator.physics.power import Cost, DecodeSpan, demanded_energy_j, iteration_cost
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel

#: mixed-iteration bases kept per model before the cache starts over (bounds its memory)
MIXED_CACHE_ENTRIES = 1 << 16
#: decode spans kept per model before that cache starts over (a controller's caps vary)
SPAN_CACHE_ENTRIES = 1 << 14


class IterationModel:
    """Time and per-GPU energy of one replica's iterations (pure; caches by shape)."""

    __slots__ = ("timing", "power", "dvfs", "idle_w", "_mixed", "_spans")

    def __init__(self, timing: TimingModel, calibration: Calibration, dvfs: DVFSParams):
        self.timing = timing
        self.power = calibration.power
        self.dvfs = dvfs
        self.idle_w = calibration.power.idle_w  # per GPU, W
        self._mixed: dict[tuple, tuple[float, float]] = {}
        self._spans: dict[tuple[int, float], DecodeSpan] = {}

    @classmethod
    def build(cls, model: ModelShape, tp: int, precision: str, kv_precision: str,
              calibration: Calibration, gpu: GPUSpec, dvfs: DVFSParams,
              expert_parallel: bool = False,
              attention_data_parallel: bool = False) -> "IterationModel":
        timing = TimingModel(model, tp, precision, calibration.timing, kv_precision, gpu,
                             expert_parallel, attention_data_parallel)
        return cls(timing, calibration, dvfs)

    def cost(self, shape: IterationShape, cap_w: float) -> Cost:
        """Duration and per-GPU energy of one iteration under the per-GPU cap ``cap_w``."""
        return iteration_cost(self.power, self.timing.work(shape), cap_w, self.dvfs)

    def mixed_base(self, prefill_tokens: int, prefill_attn_pairs: float,
                   prefill_prefix_tokens: int, prefill_seqs: int, sampled_seqs: int,
                   decode_seqs: int) -> tuple[float, float]:
        """``(time_s, energy_j)`` per GPU, uncapped, of the iteration of this shape whose
        decodes attend to no context (``decode_ctx_tokens = 0``); cached.

        An iteration's work is affine in its decodes' total context ``c`` (decode attention
        reads KV bytes linear in it at a rate independent of it: the premise of
        :class:`DecodeSpan`), so uncapped it costs ``time_s + t1_s c`` and
        ``energy_j + e1_j c`` with ``t1_s``, ``e1_j`` those of :meth:`decode_span`
        (``decode_seqs``): the engine's mixed iterations use this and fall back to
        :meth:`cost` where the cap binds. ``tests/test_scale.py`` checks it against
        :meth:`cost` over random shapes of every catalog family."""
        key = (prefill_tokens, prefill_attn_pairs, prefill_prefix_tokens, prefill_seqs,
               sampled_seqs, decode_seqs)
        hit = self._mixed.get(key)
        if hit is None:
            if len(self._mixed) >= MIXED_CACHE_ENTRIES:
                self._mixed.clear()
            w = self.timing.work(IterationShape(*key, 0))
            hit = self._mixed[key] = (w.time_s, demanded_energy_j(self.power, w))
        return hit

    def decode_span(self, n_seqs: int, cap_w: float) -> DecodeSpan:
        """Closed form of consecutive decode-only iterations of ``n_seqs`` sequences; cached
        (a span is immutable: every replica of the model, and every simulation that shares
        the model, shares it)."""
        key = (n_seqs, cap_w)
        span = self._spans.get(key)
        if span is None:
            if len(self._spans) >= SPAN_CACHE_ENTRIES:
                self._spans.clear()
            span = self._spans[key] = DecodeSpan(self.timing.decode_line(n_seqs), self.power,
                                                 cap_w, self.dvfs)
        return span
