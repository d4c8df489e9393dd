"""Request arrivals: what the engine consumes.

Open loop (``poisson``, ``gamma``, ``replay``): :meth:`Workload.open_blocks` lazily yields
:class:`ArrivalBlock` s (struct of arrays, arrival-time order). Closed loop: the engine starts
``clients`` clients and draws each request's class and lengths with
:meth:`Workload.sample_requests`.

Randomness (no global state; one generator per stream). From the root ``SeedSequence``
(``entropy``, ``spawn_key``) the streams are ``SeedSequence(entropy, spawn_key=root.spawn_key +
key)`` with fixed keys:

* ``(0,)`` inter-arrival gaps, ``(1,)`` class choice, ``(2,)`` thinning (hourly curve);
* ``(3, h, 0)`` and ``(3, h, 1)``: input and output lengths of the class whose name hashes to
  ``h`` (first 8 bytes of SHA-256 of the UTF-8 name, little-endian);
* closed loop uses ``(4,)`` for class choice and ``(5, h, 0|1)`` for lengths;
* ``(6,)``: which trace requests a replay with ``replay_share < 1`` keeps;
* ``(7, ...)``: :meth:`Workload.length_sample` (estimates only, never a simulation).

So adding a class never changes another class's length draws, and arrival times of
poisson/gamma do not depend on the classes at all. Values are drawn in fixed internal chunks of
:data:`CHUNK` candidates, so the sequence of requests does not depend on ``block_size``; each
call of :meth:`Workload.open_blocks` restarts the same sequence.

Hourly curves (poisson and gamma) use thinning (Lewis-Shedler): candidates are generated at
the peak rate ``rate_per_s * max(m)`` and each is kept with probability ``m[hour] / max(m)``.
For gamma this thinned process no longer has exactly the requested CV (it tends towards 1 as
more candidates are rejected); that is accepted. Gamma's first arrival is one ordinary gap after
time 0 (not the stationary residual gap): use a warm-up.

Invariants (tested in ``tests/workload``): times are non-decreasing and ``< end_s``; lengths
are int64 ``>= 1``; class indices are in range; exactly ``max_requests`` are produced when the
process has that many before ``end_s``; the same seed gives identical blocks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import ScenarioError
from simulator.workload.distributions import LengthSampler, build_length_sampler, resolve_path
from simulator.workload.spec import SLO, WorkloadSpec
from simulator.workload.trace import load_azure_trace

#: Candidates drawn per internal chunk (fixed: the draws must not depend on ``block_size``).
CHUNK = 4096
SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24

_KEY_GAPS, _KEY_CLASS, _KEY_THIN, _KEY_LENGTHS = 0, 1, 2, 3
_KEY_CLOSED_CLASS, _KEY_CLOSED_LENGTHS = 4, 5
_KEY_REPLAY_SHARE = 6
_KEY_ESTIMATE = 7
_INPUT, _OUTPUT = 0, 1


@dataclass(frozen=True, eq=False)
class ArrivalBlock:
    """Consecutive requests in arrival-time order (struct of arrays, all of one length)."""

    t_s: np.ndarray  #: float64, non-decreasing absolute simulated arrival times, s
    class_idx: np.ndarray  #: int32 index into :attr:`Workload.class_names`
    input_tokens: np.ndarray  #: int64 prompt lengths, tokens, >= 1
    output_tokens: np.ndarray  #: int64 generated lengths, tokens, >= 1

    def __len__(self) -> int:
        return len(self.t_s)


def class_stream_key(name: str) -> int:
    """Stable (hash-seed independent) integer of a class name, for its stream's spawn key."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def _child_seq(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key))


def _child(root: np.random.SeedSequence, *key: int) -> np.random.Generator:
    return np.random.default_rng(_child_seq(root, *key))


class _Streams:
    """The generators of one pass over the arrival process (or of the closed loop)."""

    def __init__(self, root: np.random.SeedSequence, names: list[str], closed: bool):
        ckey, lkey = (_KEY_CLOSED_CLASS, _KEY_CLOSED_LENGTHS) if closed else (_KEY_CLASS, _KEY_LENGTHS)
        self.gaps = _child(root, _KEY_GAPS)
        self.thin = _child(root, _KEY_THIN)
        self.cls = _child(root, ckey)
        keys = [class_stream_key(n) for n in names]
        self.inp = [_child(root, lkey, k, _INPUT) for k in keys]
        self.out = [_child(root, lkey, k, _OUTPUT) for k in keys]


_Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: A chunk and its horizon: every later chunk's arrivals come at or after ``horizon_s``.
_Piece = tuple[_Chunk, float]


class Workload:
    """A validated :class:`WorkloadSpec` made ready to sample.

    Args:
        spec: the workload section of a scenario.
        seed: root of this workload's random streams (an int or a ``SeedSequence``).
        base_dir: folder against which relative trace paths resolve (the scenario's folder).

    Raises:
        DataError: a trace (replay or empirical lengths) cannot be read or has a bad row.
        ScenarioError: ``loop`` is set but the traces span no time.
    """

    def __init__(
        self,
        spec: WorkloadSpec,
        seed: np.random.SeedSequence | int,
        base_dir: Path = Path("."),
    ):
        self.spec = spec
        self._root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.class_names: list[str] = list(spec.classes)
        self.slos: list[SLO] = [c.slo for c in spec.classes.values()]
        self.priorities: list[int] = [c.priority for c in spec.classes.values()]
        self.is_closed_loop: bool = spec.arrival == "closed_loop"
        self.clients: int | None = spec.clients if self.is_closed_loop else None
        self.think_time_s: float = spec.think_time_s
        self._inp: list[LengthSampler] = []
        self._out: list[LengthSampler] = []
        self._replay: _Chunk | None = None
        self._replay_period_s = math.inf
        if spec.arrival == "replay":
            self._replay = self._load_replay(Path(base_dir))
            counts = np.bincount(self._replay[1], minlength=len(self.class_names))
            self.shares: np.ndarray = counts / counts.sum()
        else:
            shares = spec.class_shares()
            self.shares = np.array([shares[n] for n in self.class_names], dtype=np.float64)
            for name, qc in spec.classes.items():
                f = f"workload.classes.{name}"
                self._inp.append(build_length_sampler(qc.input_tokens, base_dir, f"{f}.input_tokens"))
                self._out.append(build_length_sampler(qc.output_tokens, base_dir, f"{f}.output_tokens"))
        self._cum = np.cumsum(self.shares / self.shares.sum())
        self._last_class = int(np.flatnonzero(self.shares > 0)[-1])
        self._closed: _Streams | None = None

    # ------------------------------------------------------------------ public
    def open_blocks(
        self,
        end_s: float = math.inf,
        max_requests: int | None = None,
        block_size: int = 8192,
    ) -> Iterator[ArrivalBlock]:
        """Arrivals with ``t_s < end_s``, at most ``max_requests`` of them, in blocks.

        Blocks have ``block_size`` requests except the last (truncated exactly at ``end_s`` /
        ``max_requests``). Generation is lazy: with ``end_s = inf`` and no ``max_requests`` a
        poisson/gamma (or looping replay) iterator never ends. Every call starts the same
        sequence again. Not available for closed loop (use :meth:`sample_requests`).
        """
        if self.is_closed_loop:
            raise ValueError("a closed-loop workload has no open arrivals; use sample_requests")
        if math.isnan(end_s):
            raise ValueError("end_s must be a number of seconds, not NaN")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1 (got {block_size})")
        if max_requests is not None and max_requests < 0:
            raise ValueError(f"max_requests must be >= 0 (got {max_requests})")
        source = self._replay_chunks() if self._replay is not None else self._renewal_chunks()
        return self._reblock(source, end_s, max_requests, block_size)

    def sample_requests(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class (int32), input and output lengths (int64 tokens) of the next ``n`` requests.

        Drawn from the mix and the classes' length distributions with the closed-loop streams
        (successive calls continue the sequence). Not available for replay.
        """
        if self._replay is not None:
            raise ValueError("a replay workload takes its requests from the traces")
        if self._closed is None:
            self._closed = _Streams(self._root, self.class_names, closed=True)
        cls = self._choose(self._closed.cls, n)
        inp, out = self._lengths(self._closed, cls)
        return cls, inp, out

    def length_sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Prompt and output lengths (int64 tokens) of ``n`` requests as the workload mixes them:
        the first ``n`` trace rows for replay, else draws from a stream of their own (key 7;
        no other stream moves). For estimates (e.g. a throughput bound), not for simulation."""
        if self._replay is not None:
            return self._replay[2][:n], self._replay[3][:n]
        st = _Streams(_child_seq(self._root, _KEY_ESTIMATE), self.class_names, closed=True)
        cls = self._choose(st.cls, n)
        return self._lengths(st, cls)

    def mean_input_tokens(self) -> float:
        """Share-weighted mean prompt length, tokens (trace mean for replay)."""
        if self._replay is not None:
            return float(self._replay[2].mean())
        return float(sum(s * d.mean_tokens for s, d in zip(self.shares, self._inp)))

    def mean_output_tokens(self) -> float:
        """Share-weighted mean generated length, tokens (trace mean for replay)."""
        if self._replay is not None:
            return float(self._replay[3].mean())
        return float(sum(s * d.mean_tokens for s, d in zip(self.shares, self._out)))

    def class_mean_output_tokens(self) -> dict[str, float]:
        """Mean generated length of each class, tokens (its trace rows for replay; NaN for a
        replay class without rows)."""
        if self._replay is not None:
            cls, out = self._replay[1], self._replay[3]
            return {n: float(out[cls == k].mean()) if (cls == k).any() else math.nan
                    for k, n in enumerate(self.class_names)}
        return {n: float(d.mean_tokens) for n, d in zip(self.class_names, self._out)}

    def mean_rate_per_s(self) -> float | None:
        """Long-run mean arrival rate, requests/s (None for closed loop).

        poisson/gamma: ``rate_per_s`` times the mean hourly multiplier; replay: requests per
        loop period (or over the trace span, when not looping).
        """
        spec = self.spec
        if self.is_closed_loop:
            return None
        if self._replay is not None:
            n = len(self._replay[0]) * spec.replay_share
            return n / self._replay_period_s if math.isfinite(self._replay_period_s) and self._replay_period_s > 0 else None
        m = 1.0 if spec.hourly_multipliers is None else float(np.mean(spec.hourly_multipliers))
        return float(spec.rate_per_s) * m  # type: ignore[arg-type]

    # ------------------------------------------------------------------ sampling
    def _choose(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if len(self.class_names) == 1:
            return np.zeros(n, dtype=np.int32)
        idx = np.searchsorted(self._cum, rng.random(n), side="right")
        np.minimum(idx, self._last_class, out=idx)  # cum[-1] may round to just below 1
        return idx.astype(np.int32)

    def _lengths(self, st: _Streams, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inp = np.empty(len(cls), dtype=np.int64)
        out = np.empty(len(cls), dtype=np.int64)
        for k in range(len(self.class_names)):
            mask = cls == k
            n = int(mask.sum())
            if n:
                inp[mask] = self._inp[k].sample(st.inp[k], n)
                out[mask] = self._out[k].sample(st.out[k], n)
        return inp, out

    def _renewal_chunks(self) -> Iterator[_Piece]:
        """poisson/gamma: chunks of arrivals at the peak rate, thinned by the hourly curve."""
        spec = self.spec
        st = _Streams(self._root, self.class_names, closed=False)
        mult = None if spec.hourly_multipliers is None else np.asarray(spec.hourly_multipliers)
        peak = 1.0 if mult is None else float(mult.max())
        rate = float(spec.rate_per_s) * peak  # type: ignore[arg-type]
        shape = 1.0 / spec.cv**2 if spec.arrival == "gamma" else 1.0
        t_last = 0.0
        while True:
            if spec.arrival == "gamma":
                gaps = st.gaps.gamma(shape, 1.0 / (rate * shape), CHUNK)
            else:
                gaps = st.gaps.exponential(1.0 / rate, CHUNK)
            t = t_last + np.cumsum(gaps)
            t_last = float(t[-1])
            if mult is not None:
                hour = np.floor(spec.start_hour + t / SECONDS_PER_HOUR).astype(np.int64) % HOURS_PER_DAY
                t = t[st.thin.random(CHUNK) * peak < mult[hour]]
            cls = self._choose(st.cls, len(t))
            inp, out = self._lengths(st, cls)
            yield (t, cls, inp, out), t_last

    def _load_replay(self, base_dir: Path) -> _Chunk:
        """All traces merged by time; time 0 = the earliest timestamp across the traces."""
        spec = self.spec
        frames = []
        for name, path in (spec.traces or {}).items():
            df = load_azure_trace(resolve_path(path, base_dir), field=f"workload.traces.{name}")
            frames.append((self.class_names.index(name), df))
        t0 = min(df["timestamp"].min() for _, df in frames)
        ts, cl, ins, outs = [], [], [], []
        for k, df in frames:
            ns = (df["timestamp"] - t0).to_numpy().astype("timedelta64[ns]").astype(np.int64)
            ts.append(ns.astype(np.float64) / 1e9 / spec.time_scale)
            cl.append(np.full(len(df), k, dtype=np.int32))
            inp, out = df["input_tokens"].to_numpy(np.int64), df["output_tokens"].to_numpy(np.int64)
            if spec.replay_input_scale != 1.0:
                inp = np.maximum(1, np.rint(inp * spec.replay_input_scale)).astype(np.int64)
            if spec.replay_output_scale != 1.0:
                out = np.maximum(0, np.rint(out * spec.replay_output_scale)).astype(np.int64)
            ins.append(inp)
            outs.append(np.maximum(out, 1))
        t = np.concatenate(ts)
        order = np.argsort(t, kind="stable")
        merged = (t[order], np.concatenate(cl)[order], np.concatenate(ins)[order],
                  np.concatenate(outs)[order])
        span = float(merged[0][-1] - merged[0][0])
        if spec.loop:
            if len(t) < 2 or span <= 0:
                raise ScenarioError(
                    "cannot loop traces that span 0 s (need at least two distinct timestamps)",
                    field="workload.loop",
                )
            # one period = span + one mean gap, so the looped process keeps the trace's rate
            self._replay_period_s = span * len(t) / (len(t) - 1)
        else:
            self._replay_period_s = span
        for a in merged:
            a.setflags(write=False)
        return merged

    def _replay_chunks(self) -> Iterator[_Piece]:
        if self.spec.replay_share < 1.0:
            yield from self._shared_replay_chunks()
            return
        t, cls, inp, out = self._replay  # type: ignore[misc]
        rep = 0
        while True:
            shifted = t + rep * self._replay_period_s
            yield (shifted, cls, inp, out), float(shifted[-1])
            if not self.spec.loop:
                return
            rep += 1

    def _shared_replay_chunks(self) -> Iterator[_Piece]:
        """Each request of the (looped) traces kept with probability ``replay_share``: the gaps
        between kept rows are geometric, so the cost is per kept request, not per trace row."""
        t, cls, inp, out = self._replay  # type: ignore[misc]
        rng = _child(self._root, _KEY_REPLAY_SHARE)
        n = len(t)
        pos = -1  # global row index over the repeated traces
        while True:
            k = pos + np.cumsum(rng.geometric(self.spec.replay_share, CHUNK))
            pos = int(k[-1])
            rep, i = np.divmod(k, n)
            if not self.spec.loop:
                keep = rep == 0
                if not keep.all():
                    i = i[keep]
                    if i.size:
                        yield (t[i], cls[i], inp[i], out[i]), float(t[i][-1])
                    return
            times = t[i] + rep * self._replay_period_s
            yield (times, cls[i], inp[i], out[i]), float(times[-1])

    @staticmethod
    def _reblock(
        source: Iterator[_Piece], end_s: float, max_requests: int | None, block_size: int
    ) -> Iterator[ArrivalBlock]:
        """Cut a stream of chunks into blocks of ``block_size``, truncating exactly."""
        pending: list[_Chunk] = []
        n_pending = 0
        emitted = 0
        done = max_requests == 0 or end_s <= 0
        while not done:
            piece = next(source, None)
            if piece is None:
                break
            chunk, horizon_s = piece
            cut = int(np.searchsorted(chunk[0], end_s, side="left"))
            done = cut < len(chunk[0]) or horizon_s >= end_s
            if max_requests is not None and emitted + n_pending + cut >= max_requests:
                cut = max_requests - emitted - n_pending
                done = True
            if cut:
                pending.append(tuple(a[:cut] for a in chunk))  # type: ignore[arg-type]
                n_pending += cut
            while n_pending >= block_size:
                cat = [np.concatenate([p[i] for p in pending]) for i in range(4)]
                yield ArrivalBlock(*(a[:block_size] for a in cat))
                emitted += block_size
                rest = tuple(a[block_size:] for a in cat)
                n_pending -= block_size
                pending = [rest] if n_pending else []  # type: ignore[list-item]
        if n_pending:
            cat = [np.concatenate([p[i] for p in pending]) for i in range(4)]
            yield ArrivalBlock(*cat)
