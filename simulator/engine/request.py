"""A request's life: arrival, queueing, prefill (possibly chunked), decode, completion."""

from __future__ import annotations

QUEUED, PREFILL, DECODE, DONE, DROPPED = range(5)


class Request:
    """One query. Times are absolute simulated seconds; token counts are tokens.

    ``prompt_tokens`` is what the next prefill must compute: the input, or the input plus the
    tokens generated so far after a preemption (recompute).
    """

    __slots__ = (
        "rid", "cls", "arrival_s", "input_tokens", "output_tokens", "client",
        "replica", "state", "prompt_tokens", "prefilled_tokens", "generated_tokens",
        "join_it", "join_gen", "heap_ver",
        "first_token_s", "finish_s", "energy_j", "slot_mark_j", "preemptions",
        "first_sched_s",
    )

    def __init__(self, rid: int, cls: int, arrival_s: float, input_tokens: int,
                 output_tokens: int, client: int = -1):
        self.rid = rid
        self.cls = cls
        self.arrival_s = arrival_s
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.client = client
        self.replica = -1
        self.state = QUEUED
        self.prompt_tokens = input_tokens
        self.prefilled_tokens = 0
        self.generated_tokens = 0
        self.join_it = 0
        self.join_gen = 0
        self.heap_ver = 0
        self.first_token_s = float("nan")
        self.finish_s = float("nan")
        self.first_sched_s = float("nan")
        self.energy_j = 0.0
        self.slot_mark_j = 0.0
        self.preemptions = 0
