"""Replica scheduling policy: which sequences run in the next iteration (vLLM-style).

The policy is pure bookkeeping over a replica's queues; it returns a :class:`Plan` and never
advances time. Continuous batching with chunked prefill (Sarathi-Serve / vLLM V1): every
running decode gets one token, then prefill chunks fill the remaining token budget, in-flight
prefills first, then new admissions in arrival order while sequences, tokens and free KV-cache
blocks allow. Without chunked prefill (vLLM V0): an iteration either prefills whole prompts or
decodes.

KV-cache accounting: each sequence holds ``ceil(tokens / block)`` blocks; the scheduler bounds
this by ``(tokens + block - 1) / block`` (worst-case fragmentation of the last block), which
keeps the bound closed-form over a coalesced decode span. Admission keeps a 1 % watermark free,
as vLLM does.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.engine.request import Request

WATERMARK_FRACTION = 0.01  # vLLM's default free-block watermark for admission


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
    max_batch_size: int
    max_batched_tokens: int
    chunk_tokens: int
    chunked_prefill: bool
    kv_capacity_tokens: int
    block_tokens: int

    @property
    def watermark_tokens(self) -> float:
        return WATERMARK_FRACTION * self.kv_capacity_tokens


def plan_iteration(lim: BatchLimits, waiting, prefilling: list[Request], n_decode: int,
                   kv_used_tokens: int) -> Plan:
    """Choose the next iteration.

    ``kv_used_tokens``: KV tokens held after this iteration's decodes (already including one new
    token per decoding sequence). Returns an empty plan with ``decode=True`` when only the
    running decodes can run.
    """
    plan = Plan()
    n_running = n_decode + len(prefilling)
    slack = lim.block_tokens - 1
    if lim.chunked_prefill:
        budget = min(lim.max_batched_tokens - n_decode, lim.chunk_tokens)
        for r in prefilling:
            if budget <= 0:
                break
            c = min(r.prompt_tokens - r.prefilled_tokens, budget)
            plan.chunks.append((r, c))
            budget -= c
        used = kv_used_tokens + n_running * slack
        admit_tokens = lim.kv_capacity_tokens - lim.watermark_tokens
        for r in waiting:
            if budget <= 0 or n_running >= lim.max_batch_size:
                break
            need = r.prompt_tokens + 1 + slack
            if used + need > admit_tokens:
                break
            c = min(r.prompt_tokens, budget)
            plan.admitted.append(r)
            plan.chunks.append((r, c))
            budget -= c
            used += need
            n_running += 1
        return plan
    # whole-prompt prefill iterations (no chunking): prefill if anyone can be admitted
    budget = lim.max_batched_tokens
    used = kv_used_tokens + n_running * slack
    for r in waiting:
        if n_running >= lim.max_batch_size or r.prompt_tokens > budget:
            break
        need = r.prompt_tokens + 1 + slack
        if used + need > lim.kv_capacity_tokens - lim.watermark_tokens:
            break
        plan.admitted.append(r)
        plan.chunks.append((r, r.prompt_tokens))
        budget -= r.prompt_tokens
        used += need
        n_running += 1
    if plan.chunks:
        plan.decode = False
    return plan
