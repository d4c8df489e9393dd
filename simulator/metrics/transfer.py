"""What a disaggregated run's KV transfers did (``summary.json``'s ``kv_transfer``): how many,
how many bytes, how long they took and waited, the energy their links added, and where the
measured requests' latency went (queue, prefill, waiting for decode room, transfer, decode).

Definitions, per completed request that moved (``prefill_done_s``, ``start_s``, ``end_s`` of
its transfer row; :data:`~simulator.engine.disagg.TRANSFER_COLUMNS`): ``queue`` = first
scheduled - arrival; ``prefill`` = prefill done - first scheduled; ``kv_wait`` = transfer
start - prefill done; ``kv_transfer`` = end - start (the exposed transfer time: the first
token is delivered at its end); ``decode`` = finish - end. The five add up to its e2e latency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.engine.disagg import TRANSFER_COLUMNS

if TYPE_CHECKING:
    from simulator.metrics.requests import RequestTable

PHASES = ("queue", "prefill", "kv_wait", "kv_transfer", "decode")


def transfer_columns(rows) -> dict[str, np.ndarray]:
    """The mover's rows as named float64 columns, in request order."""
    t = rows.table()
    cols = {name: np.array(t[:, i]) for i, name in enumerate(TRANSFER_COLUMNS)}
    order = np.argsort(cols["request_id"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


#: columns a disaggregated run adds to its request table (seconds; NaN where the request did
#: not move: a one-token answer, or one still waiting for decode room or in flight)
PHASE_COLUMNS = ("prefill_s", "kv_wait_s", "kv_transfer_s", "decode_s", "decode_replica")


def add_phase_columns(table: "RequestTable", tr: dict[str, np.ndarray]) -> None:
    """Where each moved request's latency went, as columns of ``table`` (after ``queue_s``,
    which every run has): ``prefill_s`` (first scheduled to prompt done), ``kv_wait_s``
    (waiting for decode room), ``kv_transfer_s`` (the exposed transfer), ``decode_s``
    (transfer end to last token; NaN until finished) and ``decode_replica`` (-1: none). For a
    completed moved request ``queue_s + prefill_s + kv_wait_s + kv_transfer_s + decode_s``
    is its ``e2e_s``."""
    rid = table["request_id"]
    n = rid.size
    pos = np.searchsorted(tr["request_id"], rid)
    pos_c = np.clip(pos, 0, max(tr["request_id"].size - 1, 0))
    moved = pos < tr["request_id"].size
    if tr["request_id"].size:
        moved &= tr["request_id"][pos_c] == rid
    p = pos_c[moved]
    first_sched = table["arrival_s"][moved] + table["queue_s"][moved]
    cols = {k: np.full(n, np.nan) for k in PHASE_COLUMNS[:-1]}
    cols["prefill_s"][moved] = tr["prefill_done_s"][p] - first_sched
    cols["kv_wait_s"][moved] = tr["start_s"][p] - tr["prefill_done_s"][p]
    cols["kv_transfer_s"][moved] = tr["end_s"][p] - tr["start_s"][p]
    cols["decode_s"][moved] = table["finish_s"][moved] - tr["end_s"][p]
    dst = np.full(n, -1, dtype=np.int64)
    dst[moved] = tr["dst_replica"][p].astype(np.int64)
    cols["decode_replica"] = dst
    table.cols.update(cols)


def phases_s(table: "RequestTable", mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per phase, the seconds of every request of ``mask`` (table rows) that moved (the
    columns :func:`add_phase_columns` added)."""
    m = mask & (table["decode_replica"] >= 0)
    return {"queue": table["queue_s"][m], "prefill": table["prefill_s"][m],
            "kv_wait": table["kv_wait_s"][m], "kv_transfer": table["kv_transfer_s"][m],
            "decode": table["decode_s"][m]}


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else float("nan")


def transfer_summary(tr: dict[str, np.ndarray], table: "RequestTable",
                     done: np.ndarray) -> dict[str, Any]:
    """``summary.json``'s ``kv_transfer`` (every transfer of the run; latency phases of the
    measured completed requests ``done``)."""
    dur = tr["end_s"] - tr["start_s"]
    wait = tr["start_s"] - tr["prefill_done_s"]
    ph = phases_s(table, done)
    return {
        "transfers": int(tr["request_id"].size),
        "bytes_total": float(tr["bytes"].sum()),
        "bytes_mean": float(tr["bytes"].mean()) if dur.size else float("nan"),
        "transfer_s_p50": _pct(dur, 50), "transfer_s_p99": _pct(dur, 99),
        "wait_s_p50": _pct(wait, 50), "wait_s_p99": _pct(wait, 99),
        "transfers_waited": int((wait > 0).sum()),
        "energy_link_j": float((tr["link_w"] * tr["move_s"]).sum()),
        "latency_s_mean": {k: float(v.mean()) if v.size else float("nan")
                           for k, v in ph.items()},
    }
