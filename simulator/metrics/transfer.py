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


def phases_s(tr: dict[str, np.ndarray], table: "RequestTable",
             mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per phase, the seconds of every request of ``mask`` (table rows) that moved."""
    rid = table["request_id"]
    pos = np.searchsorted(tr["request_id"], rid)
    pos_c = np.clip(pos, 0, max(tr["request_id"].size - 1, 0))
    moved = mask & (pos < tr["request_id"].size)
    if tr["request_id"].size:
        moved &= tr["request_id"][pos_c] == rid
    p = pos_c[moved]
    arrival = table["arrival_s"][moved]
    first_sched = arrival + table["queue_s"][moved]
    return {
        "queue": first_sched - arrival,
        "prefill": tr["prefill_done_s"][p] - first_sched,
        "kv_wait": tr["start_s"][p] - tr["prefill_done_s"][p],
        "kv_transfer": tr["end_s"][p] - tr["start_s"][p],
        "decode": table["finish_s"][moved] - tr["end_s"][p],
    }


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else float("nan")


def transfer_summary(tr: dict[str, np.ndarray], table: "RequestTable",
                     done: np.ndarray) -> dict[str, Any]:
    """``summary.json``'s ``kv_transfer`` (every transfer of the run; latency phases of the
    measured completed requests ``done``)."""
    dur = tr["end_s"] - tr["start_s"]
    wait = tr["start_s"] - tr["prefill_done_s"]
    ph = phases_s(tr, table, done)
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
