"""Prefill/decode disaggregation (Splitwise): hand a prefilled request to a decode replica and
move its KV cache there.

When a prefill replica finishes a request's prompt (and the request wants more than its first
token) it hands it to the :class:`KVMover`. The mover chooses a decode replica with a policy
(:data:`DECODE_POLICIES`: plain functions over a read-only :class:`DecodeLoad` view, as the
routers are) among those with room for the request's KV cache, reserves the blocks there, and
only then starts the transfer; if no decode replica has room the request waits, first come,
first served, and is placed again whenever a decode replica finishes a request. While the KV
moves it is held on both sides (the prefill replica frees it when the transfer ends). The
transfer's time is the link model's (:mod:`simulator.physics.transfer`); when it ends the
request joins the decode replica's decodes at its next iteration boundary, and its first token
counts as delivered then (TTFT includes the wait and the transfer).

Every transfer is one row of :attr:`KVMover.rows` (:data:`TRANSFER_COLUMNS`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from simulator.engine.clock import EngineClock
from simulator.engine.recorder import Rows
from simulator.engine.replica import Replica
from simulator.engine.request import Request
from simulator.physics.transfer import Link


class DecodeLoad(Protocol):
    """What a decode policy may read about a decode replica."""

    @property
    def outstanding(self) -> int: ...  # requests here or reserved here, not finished

    def kv_room_tokens(self) -> float: ...  # KV tokens a newcomer may still take


    @property
    def kv(self): ...  # its KVCache (capacity_tokens, block_tokens)

    @property
    def limits(self): ...  # its BatchLimits (max_batch_size: vLLM's max_num_seqs)


#: a decode policy: ``(replicas, context_tokens) -> index`` of one that fits, or -1
DecodePolicy = Callable[[Sequence[DecodeLoad], int], int]


def fits(rep: DecodeLoad, context_tokens: int) -> bool:
    """``rep`` can take a request of ``context_tokens`` (plus a worst-case last block): within
    its admission room, or it holds nothing and the request fits its whole cache (so one
    request can always move; the scenario check guarantees it)."""
    if rep.outstanding >= rep.limits.max_batch_size:  # every batch slot taken (max_num_seqs)
        return False
    need = context_tokens + rep.kv.block_tokens - 1
    return rep.kv_room_tokens() >= need or (
        rep.outstanding == 0 and need <= rep.kv.capacity_tokens)


def least_loaded(replicas: Sequence[DecodeLoad], context_tokens: int) -> int:
    """Fewest outstanding requests among those with room (ties: the lowest index). O(n)."""
    best, best_load = -1, 0
    for i, rep in enumerate(replicas):
        if (best < 0 or rep.outstanding < best_load) and fits(rep, context_tokens):
            best, best_load = i, rep.outstanding
    return best


def most_free_kv(replicas: Sequence[DecodeLoad], context_tokens: int) -> int:
    """Most free KV-cache tokens among those with room (ties: the lowest index). O(n)."""
    best, best_room = -1, 0.0
    for i, rep in enumerate(replicas):
        room = rep.kv_room_tokens()
        if (best < 0 or room > best_room) and fits(rep, context_tokens):
            best, best_room = i, room
    return best


DECODE_POLICIES: dict[str, DecodePolicy] = {
    "least_loaded": least_loaded,
    "most_free_kv": most_free_kv,
}

#: one row per transfer: request, replicas, KV bytes, times (s): prompt done, transfer
#: started (decode blocks reserved), first token delivered; ``move_s``: how long the links
#: carry it (with layer-wise overlap, partly before ``start_s``); ``link_w``: power it adds
TRANSFER_COLUMNS = ("request_id", "src_replica", "dst_replica", "bytes", "prefill_done_s",
                    "start_s", "end_s", "move_s", "link_w")


class KVMover:
    """Places prefilled requests on decode replicas and times their KV transfers.

    ``kv_bytes_per_token``: bytes of one token's KV cache over every layer and GPU (the
    model's, the same on every pool); ``layers``: the model's layers (layer-wise overlap)."""

    def __init__(self, env: EngineClock, decode: list[Replica], link: Link,
                 kv_bytes_per_token: float, layers: int, overlap: bool, policy: DecodePolicy):
        self.env = env
        self.decode = decode
        self.link = link
        self.kv_bytes_per_token = kv_bytes_per_token
        self.layers = layers
        self.overlap = overlap
        self.policy = policy
        self.waiting: deque[tuple[Request, Replica]] = deque()
        self.moving: dict[int, tuple[Request, Replica, Replica]] = {}  # by clock entry id
        self.rows = Rows(len(TRANSFER_COLUMNS))
        self._end_s: dict[int, float] = {}  # end of each moving request's transfer

    def hand_off(self, r: Request, src: Replica, now: float) -> None:
        """``src`` finished ``r``'s prompt (the prefill replica's handoff)."""
        self.waiting.append((r, src))
        self.place()

    def place(self) -> None:
        """Start the transfers of waiting requests, in order, while a decode replica has room."""
        waiting, decode = self.waiting, self.decode
        while waiting:
            r, src = waiting[0]
            i = self.policy(decode, r.input_tokens + r.generated_tokens)
            if i < 0:
                return
            waiting.popleft()
            dst = decode[i]
            dst.reserve(r)
            now = self.env.now
            nbytes = r.prompt_tokens * self.kv_bytes_per_token
            gpus = min(src.tp, dst.tp)
            # layer-wise overlap hides the move under the prompt's compute only when the
            # decode blocks were free as the prompt finished (no wait)
            hide_s = r.prefill_done_s - r.first_sched_s if now == r.prefill_done_s else 0.0
            t_s = self.link.exposed_s(nbytes, gpus, self.layers, hide_s, self.overlap)
            r.transfer_start_s = now
            eid = self.env.boundary(t_s, self._arrived)
            self.moving[eid] = (r, src, dst)
            self._end_s[r.rid] = now + t_s
            self.rows.buf.extend((r.rid, src.index, dst.index, nbytes, r.prefill_done_s, now,
                                  now + t_s, self.link.time_s(nbytes, gpus),
                                  self.link.transfer_power_w * gpus))

    def _arrived(self, eid: int) -> None:
        r, src, dst = self.moving.pop(eid)
        del self._end_s[r.rid]
        r.first_token_s = self.env.now
        gpus = min(src.tp, dst.tp)  # the links' energy is the request's (as in link_power)
        r.energy_j += (self.link.transfer_power_w * gpus
                       * self.link.time_s(r.prompt_tokens * self.kv_bytes_per_token, gpus))
        src.sent(r)
        dst.receive(r)

    def decode_finished(self, r: Request) -> None:
        """A decode replica finished a request: its blocks may let a waiting one move."""
        if self.waiting:
            self.place()

    def link_power(self, replica_node: Sequence[int]) -> tuple:
        """``(t0_s, t1_s, node, power_w)`` arrays of the links' added power: each transfer's
        power while its links carry it, half on the sending node, half on the receiving."""
        import numpy as np

        t = self.rows.table()
        if not len(t):
            return (np.zeros(0),) * 4
        c = {name: t[:, i] for i, name in enumerate(TRANSFER_COLUMNS)}
        nodes = np.asarray(replica_node)
        t1 = c["end_s"]
        t0 = t1 - c["move_s"]
        half = 0.5 * c["link_w"]
        return (np.r_[t0, t0], np.r_[t1, t1],
                np.r_[nodes[c["src_replica"].astype(int)], nodes[c["dst_replica"].astype(int)]],
                np.r_[half, half])

    def link_now_w(self, node: int) -> float:
        """Power the links of ``node`` add now, W: half of every placed transfer whose links
        are carrying it now and that leaves or enters ``node`` (what :meth:`link_power`
        records; with layer-wise overlap the part of a move before its placement is not
        seen in the run)."""
        now = self.env.now
        total = 0.0
        for r, src, dst in self.moving.values():
            if src.node != node and dst.node != node:
                continue
            gpus = min(src.tp, dst.tp)
            move_s = self.link.time_s(r.prompt_tokens * self.kv_bytes_per_token, gpus)
            end = self._end_s[r.rid]
            if end - move_s <= now < end:
                half = 0.5 * self.link.transfer_power_w * gpus
                total += half * ((src.node == node) + (dst.node == node))
        return total

    def in_flight(self) -> list[Request]:
        """Requests waiting for decode room or moving."""
        return [r for r, _ in self.waiting] + [m[0] for m in self.moving.values()]
