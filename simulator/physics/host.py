"""Host power of a node: everything but the GPUs (CPUs, DRAM, NICs, NVSwitches, fans, power
conversion).

The one host-power model of the simulator: the engine attributes its load-dependent part to
requests, the ledger integrates it into node power, the capping controller senses it and plans
caps with it, and the projection evaluates it at each level's mean GPU power; each goes through
:class:`HostPower`, so a change of its form is a change here.

Form: ``idle_w`` when the node's GPUs idle, plus ``load_factor`` watts per watt of GPU power
above the GPUs' idle power (fans and conversion losses follow the heat the GPUs make, and the
CPUs work with the GPUs), never letting GPUs + host exceed the node's rating:

    host(P_gpu) = min(idle_w + load_factor * max(P_gpu - n_gpu * gpu_idle_w, 0), rated_w - P_gpu)

Anchors (device profile ``node:``): a measured 8 x H100 HGX node peaks at about 8.4 kW with its
GPUs near full load (Latif et al., IEEE Access 2025), i.e. about 2.8 kW of host at 8 x 700 W of
GPU; the DGX H100 rating of 10.2 kW is the ceiling. Below the ceiling the model is linear in GPU
power, so time integrals and means are exact from GPU energy alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class HostPower:
    """Host power of one node, W (see the module docstring)."""

    idle_w: float
    load_factor: float  # W of host per W of GPU power above idle
    gpus_per_node: int
    gpu_idle_w: float   # one GPU's idle power, W
    rated_w: float      # the node's rating: GPUs + host never above it

    def busy_w(self, gpu_w_above_idle: float) -> float:
        """The load-dependent host power of ``gpu_w_above_idle`` W of GPU work (what the engine
        attributes to an iteration; the rating ceiling is left to the ledger)."""
        return self.load_factor * gpu_w_above_idle

    def node_w(self, gpu_w):
        """Host power of a node whose GPUs draw ``gpu_w`` in all, W (scalar or array)."""
        if type(gpu_w) is float:  # one number (the estimate, the ledger's now): no numpy
            above = gpu_w - self.gpus_per_node * self.gpu_idle_w
            room = self.rated_w - gpu_w
            # np.maximum / np.minimum on numbers: the same values, NaN included
            host = self.idle_w + self.load_factor * (above if above > 0.0 or above != above
                                                     else 0.0)
            room = room if room > 0.0 or room != room else 0.0
            return room if room < host or room != room else host
        above = np.maximum(np.asarray(gpu_w, dtype=float) - self.gpus_per_node * self.gpu_idle_w, 0.0)
        host = np.minimum(self.idle_w + self.load_factor * above,
                          np.maximum(self.rated_w - np.asarray(gpu_w, dtype=float), 0.0))
        return float(host) if np.ndim(host) == 0 else host

    def gpu_cap_room_w(self, budget_w: float, other_gpu_w: float) -> float:
        """The most watts of GPU caps a node can hold within ``budget_w`` with every host at its
        cap-level draw, given ``other_gpu_w`` of GPUs outside the caps (idle ones): the largest
        X with ``X + other + host(X + other) <= budget`` (the linear branch; conservative)."""
        const = self.idle_w - self.load_factor * self.gpus_per_node * self.gpu_idle_w
        return (budget_w - const) / (1.0 + self.load_factor) - other_gpu_w
