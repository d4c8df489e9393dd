"""What a replica records while it runs: busy intervals and inter-token-latency pieces.

Rows go first to a plain list (one ``extend`` of a tuple per row: the cheapest write Python
has) and are moved in bulk into flat typed arrays (``array('d')``, 8 bytes a value, a quarter
of what a list of floats holds) whenever the run calls :meth:`Recorder.flush`, which it does
every few thousand requests. One row of :data:`BUSY` per busy interval, one row of
:data:`ITL` per ITL piece; read back as float64 columns by the ledger and the metrics.
"""

from __future__ import annotations

from array import array

import numpy as np

#: the columns of a busy interval, in row order
BUSY = ("t0_s", "t1_s", "energy_j", "peak_w", "batch", "tokens_out", "prefill_j", "kv_tokens")
#: the columns of an ITL piece, in row order
ITL = ("itl_t_s", "itl_a", "itl_b", "itl_k", "itl_w")
_WHERE = {**{n: (0, i, len(BUSY)) for i, n in enumerate(BUSY)},
          **{n: (1, i, len(ITL)) for i, n in enumerate(ITL)}}


class Rows:
    """A growing table of float rows of a fixed width: appended to ``buf`` (a list, one
    ``buf.extend(row)`` per row), kept in ``flat`` (``array('d')``) after :meth:`flush`.
    :meth:`column` reads a column without copying (a strided view of ``flat``)."""

    __slots__ = ("width", "buf", "flat", "_view")

    def __init__(self, width: int):
        self.width = width
        self.buf: list[float] = []
        self.flat = array("d")
        self._view: np.ndarray | None = None

    def __len__(self) -> int:
        return (len(self.flat) + len(self.buf)) // self.width

    def flush(self) -> None:
        """Move the buffered rows into the typed array."""
        if self.buf:
            self._view = None
            more = array("d", self.buf)
            try:
                self.flat.extend(more)
            except BufferError:  # someone still holds a view of the old rows: they keep them
                self.flat = array("d", self.flat)
                self.flat.extend(more)
            self.buf.clear()  # in place: writers may hold the list

    def table(self) -> np.ndarray:
        """Every row, as an (n, width) float64 array viewing the typed array."""
        self.flush()
        if self._view is None:
            flat = np.frombuffer(self.flat, dtype=np.float64) if self.flat else np.zeros(0)
            self._view = flat.reshape(-1, self.width)
        return self._view

    def column(self, i: int) -> np.ndarray:
        """Column ``i`` (a read-only view)."""
        col = self.table()[:, i]
        col.flags.writeable = False
        return col

    def nbytes(self) -> int:
        return len(self.flat) * 8 + len(self.buf) * 32


class Recorder:
    """Busy intervals and ITL pieces of one replica.

    Interval i: ``[t0_s[i], t1_s[i])`` with replica GPU energy ``energy_j[i]`` (sum over its
    GPUs), peak per-GPU power ``peak_w[i]``, mean sequences ``batch[i]``, tokens emitted
    ``tokens_out[i]``, prefill energy share ``prefill_j[i]``, mean KV tokens ``kv_tokens[i]``.
    ITL piece p: ``k`` iterations whose durations are ``a + b j`` (j < k), each giving ``w``
    tokens that inter-token latency; starting at ``itl_t_s``. Every column is also an
    attribute (a float64 array: ``rec.t0_s``). The engine appends rows with
    ``rec.busy_rows.buf.extend(row)`` (or :meth:`busy`, :meth:`itl`).
    """

    FIELDS = BUSY + ITL
    __slots__ = ("busy_rows", "itl_rows", "_arrays")

    def __init__(self) -> None:
        self.busy_rows = Rows(len(BUSY))
        self.itl_rows = Rows(len(ITL))
        self._arrays: dict[str, tuple[int, np.ndarray]] = {}

    def __len__(self) -> int:
        """Busy intervals recorded."""
        return len(self.busy_rows)

    def flush(self) -> None:
        self.busy_rows.flush()
        self.itl_rows.flush()

    def array(self, name: str) -> np.ndarray:
        """Column ``name`` as a float64 array (converted once, again only after it grew)."""
        which, col, _ = _WHERE[name]
        rows = self.itl_rows if which else self.busy_rows
        hit = self._arrays.get(name)
        if hit is None or hit[0] != len(rows):
            hit = self._arrays[name] = (len(rows), rows.column(col))
        return hit[1]

    def __getattr__(self, name: str) -> np.ndarray:
        if name in _WHERE:
            return self.array(name)
        raise AttributeError(name)

    def itl(self, t_s: float, a: float, b: float, k: int, w: int) -> None:
        """An ITL piece (nothing when it gives no token)."""
        if w > 0 and k > 0:
            self.itl_rows.buf.extend((t_s, a, b, k, w))

    def busy(self, t0: float, t1: float, energy_j: float, peak_w: float, batch: float,
             tokens_out: int, prefill_j: float, kv_tokens: float) -> None:
        """A busy interval."""
        self.busy_rows.buf.extend((t0, t1, energy_j, peak_w, batch, tokens_out, prefill_j,
                                   kv_tokens))

    def nbytes(self) -> int:
        return self.busy_rows.nbytes() + self.itl_rows.nbytes()
