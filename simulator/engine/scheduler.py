"""Replica scheduling policies: which sequences run in the next iteration.

A policy is a plain function ``(limits, kv, waiting, prefilling, n_decode, kv_used_tokens) ->
Plan``: pure bookkeeping over a replica's queues that never advances time. Policies are chosen
by name from :data:`SCHEDULERS` (``serving.scheduler``), as routers are from ``ROUTERS``.

``fcfs`` is vLLM-style first-come-first-served continuous batching with chunked prefill
(Sarathi-Serve / vLLM V1): every running decode gets one token, then prefill chunks fill the
remaining token budget, in-flight prefills first, then new admissions in arrival order while
sequences, tokens and free KV-cache blocks (:class:`~simulator.engine.kvcache.KVCache`) allow.
Without chunked prefill (vLLM V0) an iteration either prefills whole prompts or decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.engine.kvcache import KVCache
from simulator.engine.request import Request


class Plan:
    """One iteration's composition. ``chunks`` are (request, tokens) prefill chunks;
    ``admitted`` the waiting requests it starts; ``decode`` whether the running decodes take
    part. (A plain slotted class: built once per iteration, so its constructor stays cheap.)"""

    __slots__ = ("chunks", "admitted", "decode")

    def __init__(self) -> None:
        self.chunks: list[tuple[Request, int]] = []
        self.admitted: list[Request] = []
        self.decode = True


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """A replica's serving limits (vLLM's max_num_seqs, max_num_batched_tokens, chunk size)."""

    max_batch_size: int
    max_batched_tokens: int
    chunk_tokens: int
    chunked_prefill: bool


def fcfs(lim: BatchLimits, kv: KVCache, waiting: Sequence[Request], prefilling: list[Request],
         n_decode: int, kv_used_tokens: int) -> Plan:
    """Choose the next iteration (first come, first served; see the module docstring).

    ``kv_used_tokens``: KV tokens held after this iteration's decodes (already including one new
    token per decoding sequence). Returns an empty plan with ``decode=True`` when only the
    running decodes can run.
    """
    plan = Plan()
    n_running = n_decode + len(prefilling)
    slack = kv.slack_tokens
    admit_limit = kv.admit_limit_tokens
    used = kv_used_tokens + n_running * slack  # kv.held_tokens(kv_used_tokens, n_running)
    chunks = plan.chunks
    if lim.chunked_prefill:
        budget = lim.max_batched_tokens - n_decode
        if lim.chunk_tokens < budget:
            budget = lim.chunk_tokens
        for r in prefilling:
            if budget <= 0:
                break
            c = r.prompt_tokens - r.prefilled_tokens
            if budget < c:
                c = budget
            chunks.append((r, c))
            budget -= c
        if waiting and budget > 0:
            max_batch = lim.max_batch_size
            admitted = plan.admitted
            for r in waiting:
                if budget <= 0 or n_running >= max_batch:
                    break
                prompt = r.prompt_tokens
                need = prompt + 1 + slack
                if used + need > admit_limit:
                    break
                c = prompt if prompt < budget else budget
                admitted.append(r)
                chunks.append((r, c))
                budget -= c
                used += need
                n_running += 1
        return plan
    # whole-prompt prefill iterations (no chunking): prefill if anyone can be admitted
    budget = lim.max_batched_tokens
    for r in waiting:
        if n_running >= lim.max_batch_size or r.prompt_tokens > budget:
            break
        need = r.prompt_tokens + 1 + slack
        if used + need > admit_limit:
            break
        plan.admitted.append(r)
        plan.chunks.append((r, r.prompt_tokens))
        budget -= r.prompt_tokens
        used += need
        n_running += 1
    if plan.chunks:
        plan.decode = False
    return plan


Scheduler = Callable[[BatchLimits, KVCache, Sequence[Request], list[Request], int, int], Plan]

SCHEDULERS: dict[str, Scheduler] = {"fcfs": fcfs}
