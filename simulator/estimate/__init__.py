"""The analytical estimate: a scenario's steady state from the physics alone, in milliseconds
(:mod:`simulator.estimate.model`); ``fleetsim estimate`` and ``fleetsim sweep --estimate``."""

from simulator.estimate.model import Estimate, estimate

__all__ = ["Estimate", "estimate"]
