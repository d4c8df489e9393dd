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
    """One iteration's composition. ``chunks`` are (request, tokens) prefill chunks, added
    with :meth:`add`, which also keeps the sums the iteration's shape needs (``tokens``,
    ``pairs``, ``prefix``, ``finishing``: see
    :class:`~simulator.physics.shapes.IterationShape`); ``admitted`` the waiting requests it
    starts; ``decode`` whether the running decodes take part. (A plain slotted class: built
    once per iteration, so its constructor stays cheap.)"""

    __slots__ = ("chunks", "admitted", "decode", "tokens", "pairs", "prefix", "finishing")

    def __init__(self) -> None:
        self.chunks: list[tuple[Request, int]] = []
        self.admitted: list[Request] = []
        self.decode = True
        self.tokens = 0        # prompt tokens computed (sum of the chunks)
        self.pairs = 0.0       # causal attention pairs of the chunks
        self.prefix = 0        # cached prefix tokens the chunks read
        self.finishing = 0     # chunks that complete their prompt

    def add(self, r: Request, c: int) -> None:
        """A prefill chunk of ``c`` tokens of ``r`` (after the ``r.prefilled_tokens`` it has)."""
        pre = r.prefilled_tokens
        self.chunks.append((r, c))
        self.tokens += c
        self.pairs += c * pre + c * (c + 1) / 2.0
        self.prefix += pre
        if pre + c == r.prompt_tokens:
            self.finishing += 1


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
    running decodes can run. (:meth:`Plan.add` written out: this runs every iteration.)
    """
    plan = Plan()
    n_running = n_decode + len(prefilling)
    slack = kv.slack_tokens
    admit_limit = kv.admit_limit_tokens
    used = kv_used_tokens + n_running * slack  # kv.held_tokens(kv_used_tokens, n_running)
    chunks = plan.chunks
    tokens = prefix = finishing = 0
    pairs = 0.0
    if lim.chunked_prefill:
        budget = lim.max_batched_tokens - n_decode
        if lim.chunk_tokens < budget:
            budget = lim.chunk_tokens
        for r in prefilling:
            if budget <= 0:
                break
            pre = r.prefilled_tokens
            c = r.prompt_tokens - pre
            if budget < c:
                c = budget
            else:
                finishing += 1
            chunks.append((r, c))
            tokens += c
            pairs += c * pre + c * (c + 1) / 2.0
            prefix += pre
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
                c = prompt if prompt <= budget else budget
                pre = r.prefilled_tokens  # 0 for a waiting request
                if pre + c == prompt:
                    finishing += 1
                admitted.append(r)
                chunks.append((r, c))
                tokens += c
                pairs += c * pre + c * (c + 1) / 2.0
                prefix += pre
                budget -= c
                used += need
                n_running += 1
        plan.tokens, plan.pairs, plan.prefix, plan.finishing = tokens, pairs, prefix, finishing
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
        plan.add(r, r.prompt_tokens)
        budget -= r.prompt_tokens
        used += need
        n_running += 1
    if plan.chunks:
        plan.decode = False
    return plan


Scheduler = Callable[[BatchLimits, KVCache, Sequence[Request], list[Request], int, int], Plan]

SCHEDULERS: dict[str, Scheduler] = {"fcfs": fcfs}
