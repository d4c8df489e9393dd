"""Host power of a node: everything but the GPUs (CPUs, DRAM, NICs, fans, conversion losses).

The one host-power model of the simulator: the engine attributes the busy part to requests,
the ledger integrates it into node power, the capping controller senses it, and the projection
scales it by the busy fraction; each goes through :class:`HostPower`, so a change of its form
is a change here.

Form: ``idle_w`` whenever the node is on, plus ``active_w`` times the fraction of the node's
GPUs that are busy (fans and conversion losses follow GPU load). Linear in the busy GPUs, so
integrals and means over time are exact from busy GPU-seconds alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostPower:
    """Host power of one node, W (see the module docstring)."""

    idle_w: float
    active_w: float
    gpus_per_node: int

    def busy_w(self, busy_gpus: float) -> float:
        """Host power above idle while ``busy_gpus`` of the node's GPUs work, W."""
        return self.active_w / self.gpus_per_node * busy_gpus

    def node_w(self, busy_gpus: float) -> float:
        """Host power of a node with ``busy_gpus`` busy GPUs, W."""
        return self.idle_w + self.busy_w(busy_gpus)
