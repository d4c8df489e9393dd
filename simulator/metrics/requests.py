"""The per-request table of a run: typed columns (numpy), one row per request.

The summary reads the columns directly; the pandas DataFrame (``RunResult.requests``) is built
only when someone asks for it, and ``requests.parquet`` is written from the columns in row
groups by pyarrow, so a large run never holds a DataFrame or a copy of its table to write it.

Columns (units in the names): ``request_id``, ``class`` and ``state`` (categorical: codes
into :attr:`RequestTable.classes` and :data:`STATE_CATEGORIES`), ``warmup``, ``replica``,
``node``, ``arrival_s``, ``input_tokens``, ``output_tokens``, ``queue_s``, ``ttft_s``,
``tpot_s`` and ``e2e_s`` (NaN unless completed), ``finish_s``, ``preemptions``, ``energy_j``
(busy GPU + host share attributed by tokens), ``energy_facility_wh`` (times PUE) and
``slo_met`` (completed within both the TTFT and TPOT targets of its class).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.engine.request import DECODE, DONE, DROPPED, PREFILL, QUEUED, TRANSFER

if TYPE_CHECKING:
    import pandas as pd

    from simulator.engine.run import EngineRun

STATE_NAMES = {DONE: "completed", DROPPED: "dropped", QUEUED: "in_flight", PREFILL: "in_flight",
               DECODE: "in_flight", TRANSFER: "in_flight"}
STATE_CATEGORIES = ["completed", "dropped", "in_flight"]
COMPLETED, DROPPED_CODE, IN_FLIGHT = 0, 1, 2
# engine state -> index in STATE_CATEGORIES
STATE_CODES = np.array([STATE_CATEGORIES.index(STATE_NAMES[k]) for k in sorted(STATE_NAMES)])
J_PER_WH = 3600.0
#: the table's columns, in order (``class`` and ``state`` are categorical)
COLUMNS = ("request_id", "class", "state", "warmup", "replica", "node", "arrival_s",
           "input_tokens", "output_tokens", "queue_s", "ttft_s", "tpot_s", "e2e_s", "finish_s",
           "preemptions", "energy_j", "energy_facility_wh", "slo_met")
#: rows per Parquet row group when writing
ROW_GROUP = 262_144


class RequestTable:
    """The columns of :data:`COLUMNS` as numpy arrays (``cols``); ``class`` and ``state``
    hold category codes into ``classes`` and :data:`STATE_CATEGORIES`."""

    __slots__ = ("cols", "classes")

    def __init__(self, cols: dict[str, np.ndarray], classes: list[str]):
        self.cols = cols
        self.classes = classes

    def __len__(self) -> int:
        return int(self.cols["request_id"].size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    @property
    def names(self) -> tuple[str, ...]:
        """:data:`COLUMNS`, then any a run added (a disaggregated run's latency phases)."""
        return COLUMNS + tuple(k for k in self.cols if k not in COLUMNS)

    def frame(self) -> "pd.DataFrame":
        """The table as a pandas DataFrame (categorical ``class`` and ``state``)."""
        import pandas as pd

        data = {}
        for name in self.names:
            x = self.cols[name]
            if name == "class":
                x = pd.Categorical.from_codes(x, categories=list(self.classes))
            elif name == "state":
                x = pd.Categorical.from_codes(x, categories=STATE_CATEGORIES)
            data[name] = x
        return pd.DataFrame(data)

    def _arrow_batches(self):
        import pyarrow as pa

        n = len(self)
        fields = []
        names = self.names
        for name in names:
            if name in ("class", "state"):
                fields.append(pa.field(name, pa.dictionary(pa.int8(), pa.string())))
            else:
                fields.append(pa.field(name, pa.from_numpy_dtype(self.cols[name].dtype)))
        schema = pa.schema(fields)
        dicts = {"class": arrow_strings(self.classes), "state": arrow_strings(STATE_CATEGORIES)}
        for lo in range(0, max(n, 1), ROW_GROUP):
            hi = min(n, lo + ROW_GROUP)
            arrays = []
            for name in names:
                x = self.cols[name][lo:hi]
                if name in dicts:
                    arrays.append(pa.DictionaryArray.from_arrays(
                        arrow_array(x.astype(np.int8)), dicts[name]))
                else:
                    arrays.append(arrow_array(x))
            yield schema, pa.RecordBatch.from_arrays(arrays, schema=schema)

    def to_parquet(self, path: str | Path) -> None:
        """Write ``requests.parquet`` in row groups of :data:`ROW_GROUP` requests."""
        write_parquet_batches(path, self._arrow_batches())

    def to_csv(self, path: str | Path) -> None:
        self.frame().to_csv(path, index=False)


def arrow_array(x: np.ndarray):
    """A numpy column as an Arrow array, built from its buffers (``pyarrow.array`` would
    import pandas): NaN floats become nulls, as pandas writes them."""
    import pyarrow as pa

    n = x.size
    if x.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(
            np.packbits(x, bitorder="little"))])
    x = np.ascontiguousarray(x)
    validity, nulls = None, 0
    if x.dtype.kind == "f":
        bad = np.isnan(x)
        nulls = int(bad.sum())
        if nulls:
            validity = pa.py_buffer(np.packbits(~bad, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), n, [validity, pa.py_buffer(x)],
                                 null_count=nulls)


def arrow_strings(values: list[str]):
    """Python strings as an Arrow string array (from buffers, as :func:`arrow_array`)."""
    import pyarrow as pa

    enc = [v.encode() for v in values]
    offsets = np.zeros(len(enc) + 1, np.int32)
    offsets[1:] = np.cumsum([len(e) for e in enc])
    return pa.Array.from_buffers(pa.string(), len(enc),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(enc))])


def request_table(run: "EngineRun") -> RequestTable:
    """One row per request, from the engine's columnar record (:class:`RequestLog`)."""
    sc = run.scenario
    pue = sc.facility.pue
    replica_node = np.array([r.node for r in run.fleet.replicas], dtype=np.int64)
    col = run.requests.columns(release=True)
    n = col["request_id"].size
    arrival = col["arrival_s"]
    first = col["first_token_s"]
    finish = col["finish_s"]
    out = col["output_tokens"]
    replica = col["replica"]
    state_code = STATE_CODES[col["state"]] if n else np.zeros(0, np.int64)
    ttft = first - arrival
    e2e = finish - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (finish - first) / np.maximum(out - 1, 1), 0.0)
    rid = col["request_id"]
    warm = (arrival < sc.simulation.warmup_s) | (rid < sc.simulation.warmup_requests)
    wl = run.workload
    cls = col["cls"]
    slo_ttft = np.array([s.ttft_s for s in wl.slos])[cls] if n else np.zeros(0)
    slo_tpot = np.array([s.tpot_s for s in wl.slos])[cls] if n else np.zeros(0)
    energy = col["energy_j"]
    done = state_code == COMPLETED
    cols = {
        "request_id": rid,
        "class": cls,
        "state": state_code,
        "warmup": warm,
        "replica": replica,
        "node": np.where(replica >= 0, replica_node[np.clip(replica, 0, None)], -1)
        if n else np.zeros(0, np.int64),
        "arrival_s": arrival,
        "input_tokens": col["input_tokens"],
        "output_tokens": out,
        "queue_s": col["first_sched_s"] - arrival,
        "ttft_s": ttft,
        "tpot_s": np.where(done, tpot, np.nan),
        "e2e_s": np.where(done, e2e, np.nan),
        "finish_s": finish,
        "preemptions": col["preemptions"],
        "energy_j": energy,
        "energy_facility_wh": energy * pue / J_PER_WH,
        "slo_met": done & (ttft <= slo_ttft) & (np.where(out > 1, tpot, 0.0) <= slo_tpot),
    }
    return RequestTable(cols, list(wl.class_names))


def write_parquet_batches(path: str | Path, batches) -> None:
    """Stream ``(schema, RecordBatch)`` pairs into one Parquet file, a row group per batch
    (the schema of the first batch; nothing is held beyond the batch being written)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for schema, batch in batches:
            if writer is None:
                writer = pq.ParquetWriter(str(path), schema)
            writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
