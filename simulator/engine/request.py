"""A request's life: arrival, queueing, prefill (possibly chunked), decode, completion; and the
run's columnar record of every request once it has ended."""

from __future__ import annotations

import numpy as np

from simulator.engine.recorder import Rows

QUEUED, PREFILL, DECODE, DONE, DROPPED = range(5)
#: prefilled on a prefill replica, waiting for decode blocks or moving its KV cache there
TRANSFER = 5
NAN = float("nan")


class Request:
    """One query in flight. Times are absolute simulated seconds; token counts are tokens.

    ``prompt_tokens`` is what the next prefill must compute: the input, or the input plus the
    tokens generated so far after a preemption (recompute). A request that has ended lives
    on only as a row of the run's :class:`RequestLog`.
    """

    __slots__ = (
        "rid", "cls", "arrival_s", "input_tokens", "output_tokens", "client",
        "replica", "state", "prompt_tokens", "prefilled_tokens", "generated_tokens",
        "join_it", "join_gen", "heap_ver",
        "first_token_s", "finish_s", "energy_j", "slot_mark_j", "preemptions",
        "first_sched_s", "prefill_done_s", "transfer_start_s",
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
        self.first_token_s = NAN
        self.finish_s = NAN
        self.first_sched_s = NAN
        self.energy_j = 0.0
        self.slot_mark_j = 0.0
        self.preemptions = 0
        # disaggregation: prompt done on the prefill replica; KV transfer started (NaN: not)
        self.prefill_done_s = NAN
        self.transfer_start_s = NAN


#: the columns of a :class:`RequestLog` row, in order
LOG_COLUMNS = ("request_id", "cls", "arrival_s", "input_tokens", "output_tokens", "replica",
               "state", "first_token_s", "finish_s", "first_sched_s", "energy_j",
               "preemptions")
_INT_COLUMNS = frozenset({"request_id", "cls", "input_tokens", "output_tokens", "replica",
                          "state", "preemptions"})


class RequestLog:
    """Every ended request of a run as one row of :data:`LOG_COLUMNS` (a
    :class:`~simulator.engine.recorder.Rows` table: 8 bytes a value, 96 bytes a request once
    flushed), added when the request ends (completed or dropped) or when the run stops with
    it in flight; :meth:`columns` gives them in request order. Integers are held exactly
    (below 2**53)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows = Rows(len(LOG_COLUMNS))

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, r: Request) -> None:
        """Record ``r`` as it is now."""
        self.rows.buf.extend((r.rid, r.cls, r.arrival_s, r.input_tokens, r.output_tokens,
                              r.replica, r.state, r.first_token_s, r.finish_s,
                              r.first_sched_s, r.energy_j, r.preemptions))

    def flush(self) -> None:
        self.rows.flush()

    def nbytes(self) -> int:
        return self.rows.nbytes()

    def columns(self, release: bool = False) -> dict[str, np.ndarray]:
        """Every column as a numpy array in request-id order (float64; int64 for counts and
        indices); ``release``: then let the log's own rows go (a large run's table is built
        once, and need not sit beside them)."""
        rid = self.rows.column(0).astype(np.int64)
        order = np.argsort(rid, kind="stable")
        out = {}
        for i, name in enumerate(LOG_COLUMNS):
            col = rid if i == 0 else self.rows.column(i)
            col = col[order]
            out[name] = col.astype(np.int64) if name in _INT_COLUMNS else col
        if release:
            self.rows = Rows(len(LOG_COLUMNS))
        return out
