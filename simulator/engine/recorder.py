"""What a replica records while it runs: busy intervals and inter-token-latency pieces.

Struct of lists (appends are the engine's cheapest write), read back as float64 arrays by the
ledger and the metrics.
"""

from __future__ import annotations

import numpy as np


class Recorder:
    """Busy intervals and ITL pieces of one replica.

    Interval i: ``[t0_s[i], t1_s[i])`` with replica GPU energy ``energy_j[i]`` (sum over its
    GPUs), peak per-GPU power ``peak_w[i]``, mean sequences ``batch[i]``, tokens emitted
    ``tokens_out[i]``, prefill energy share ``prefill_j[i]``, mean KV tokens ``kv_tokens[i]``.
    ITL piece p: ``k`` iterations whose durations are ``a + b j`` (j < k), each giving ``w``
    tokens that inter-token latency; starting at ``itl_t_s``.
    """

    FIELDS = ("t0_s", "t1_s", "energy_j", "peak_w", "batch", "tokens_out", "prefill_j",
              "kv_tokens", "itl_t_s", "itl_a", "itl_b", "itl_k", "itl_w")
    __slots__ = FIELDS + ("_arrays",)

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, [])
        self._arrays: dict[str, tuple[int, np.ndarray]] = {}

    def array(self, name: str) -> np.ndarray:
        """Field ``name`` as a float64 array (converted once, again only after it grew)."""
        lst = getattr(self, name)
        hit = self._arrays.get(name)
        if hit is None or hit[0] != len(lst):
            hit = self._arrays[name] = (len(lst), np.array(lst, dtype=np.float64))
        return hit[1]

    def itl(self, t_s: float, a: float, b: float, k: int, w: int) -> None:
        """An ITL piece (nothing when it gives no token)."""
        if w > 0 and k > 0:
            self.itl_t_s.append(t_s)
            self.itl_a.append(a)
            self.itl_b.append(b)
            self.itl_k.append(k)
            self.itl_w.append(w)

    def busy(self, t0: float, t1: float, energy_j: float, peak_w: float, batch: float,
             tokens_out: int, prefill_j: float, kv_tokens: float) -> None:
        """A busy interval."""
        self.t0_s.append(t0)
        self.t1_s.append(t1)
        self.energy_j.append(energy_j)
        self.peak_w.append(peak_w)
        self.batch.append(batch)
        self.tokens_out.append(tokens_out)
        self.prefill_j.append(prefill_j)
        self.kv_tokens.append(kv_tokens)
