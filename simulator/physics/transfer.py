"""KV-cache transfer between a prefill replica and a decode replica (Splitwise): pure functions.

A link moves a request's KV cache (every layer's keys and values of its prompt) from the
prefill replica's GPUs to the decode replica's. Each GPU of a tensor-parallel group holds a
shard of the KV (its heads), and the shards move in parallel, each over its own GPU's link,
so ``min(tp_src, tp_dst)`` GPU links carry the transfer (a TP 2 prefill replica feeding a
TP 4 decode replica is limited by its own two links).

Time: ``latency_s + bytes / (gpus x gpu_bandwidth_bytes_per_s)``. With layer-wise overlap
(Splitwise section IV-C: a layer's KV is sent while the next layers compute) only what the
prompt's compute could not hide is exposed: at least one layer's share of the transfer, at
most the whole of it; the prefill time that hides it is the request's own prefill span.

Link constants (:data:`LINKS`), per GPU, one direction:

* ``nvlink``: NVLink 4 (H100), fitted to the measured NCCL send/recv table of Vidur
  (``calibration/data/sources/vidur-h100/network-dgx/send_recv.csv``, rows with both GPUs in
  one node, messages above 16 MB, median times): 362 GB/s and 8 us, reading the table's
  ``size`` as bytes, as ``calibration/sources.py`` does (read as fp16 elements the same rows
  would imply 724 GB/s, above NVLink 4's 450 GB/s per direction, which a one-way send cannot
  exceed). ``tests/engine/test_disaggregation.py`` refits it.
* ``infiniband``: 400 Gb/s per GPU (one ConnectX-7 NDR port per GPU, as in a DGX H100), the
  line rate: a **stated assumption** (optimistic; the same table's cross-node rows, one GPU
  per node, imply 34 GB/s = 69 % of it), with a 10 us latency (an assumption).

Link power: the NICs' static power is already in the node's host idle power; what a transfer
adds (``transfer_power_w`` per GPU link while it moves) is an **assumption**: 10 W for an
InfiniBand port pair (a ConnectX-7's typical draw is about 20 W, roughly half of it traffic-
dependent: not measured here), 0 W extra for NVLink (its power is in the GPU's own).
"""

from __future__ import annotations

from dataclasses import dataclass

GBIT = 1e9 / 8  # bytes per second in one Gb/s


@dataclass(frozen=True)
class Link:
    """One GPU's link in one direction: ``gpu_bandwidth_bytes_per_s`` (> 0), ``latency_s``
    (>= 0) per transfer, ``transfer_power_w`` (>= 0) drawn per GPU link while it moves."""

    name: str
    gpu_bandwidth_bytes_per_s: float
    latency_s: float
    transfer_power_w: float

    def time_s(self, nbytes: float, gpus: int) -> float:
        """Seconds to move ``nbytes`` over ``gpus`` GPU links in parallel (> 0)."""
        return self.latency_s + nbytes / (gpus * self.gpu_bandwidth_bytes_per_s)

    def exposed_s(self, nbytes: float, gpus: int, layers: int, hide_s: float,
                  overlap: bool) -> float:
        """Seconds the transfer adds after the prompt's last iteration: the whole transfer,
        or with layer-wise ``overlap`` what ``hide_s`` seconds of prefill compute could not
        hide (never less than one layer's share). Postcondition: latency_s <= result <=
        time_s(nbytes, gpus)."""
        move_s = nbytes / (gpus * self.gpu_bandwidth_bytes_per_s)
        if overlap:
            move_s = max(move_s / layers, move_s - hide_s)
        return self.latency_s + move_s


#: link kinds a scenario may name (``kv_transfer.link``); see the module docstring for sources
LINKS: dict[str, Link] = {
    "nvlink": Link("nvlink", 362e9, 8e-6, 0.0),
    "infiniband": Link("infiniband", 400 * GBIT, 10e-6, 10.0),
}
