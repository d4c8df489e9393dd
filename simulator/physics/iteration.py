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
from simulator.physics.power import Cost, DecodeSpan, iteration_cost
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel


class IterationModel:
    """Time and per-GPU energy of one replica's iterations (pure; caches by shape)."""

    __slots__ = ("timing", "power", "dvfs", "idle_w")

    def __init__(self, timing: TimingModel, calibration: Calibration, dvfs: DVFSParams):
        self.timing = timing
        self.power = calibration.power
        self.dvfs = dvfs
        self.idle_w = calibration.power.idle_w  # per GPU, W

    @classmethod
    def build(cls, model: ModelShape, tp: int, precision: str, kv_precision: str,
              calibration: Calibration, gpu: GPUSpec, dvfs: DVFSParams,
              expert_parallel: bool = False) -> "IterationModel":
        timing = TimingModel(model, tp, precision, calibration.timing, kv_precision, gpu,
                             expert_parallel)
        return cls(timing, calibration, dvfs)

    def cost(self, shape: IterationShape, cap_w: float) -> Cost:
        """Duration and per-GPU energy of one iteration under the per-GPU cap ``cap_w``."""
        return iteration_cost(self.power, self.timing.work(shape), cap_w, self.dvfs)

    def decode_span(self, n_seqs: int, cap_w: float) -> DecodeSpan:
        """Closed form of consecutive decode-only iterations of ``n_seqs`` sequences."""
        return DecodeSpan(self.timing.decode_line(n_seqs), self.power, cap_w, self.dvfs)
