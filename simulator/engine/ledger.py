"""The energy ledger of a run: the one owner of node power, in the run and after it.

Power is piecewise constant: a replica's GPUs draw their iteration's power while busy (the
replica's :class:`~simulator.engine.recorder.Recorder`) and idle power otherwise, GPUs of no
replica idle all run, and each node's host draws :class:`~simulator.physics.host.HostPower` of
its GPUs' power. From that one definition the ledger gives

* in the run, the power of a set of nodes now (what a controller senses), the most they can
  draw outside their replicas' GPU caps, and their idle power;
* after the run, exact node and row timelines, and exact integrals over the whole run or any
  window (:meth:`Ledger.window`), per pool or for the fleet; ``summarise``, the projection and
  the charts all read energy here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from simulator.engine.fleet import Fleet, Pool
from simulator.engine.replica import Replica

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Window:
    """Exact integrals of the ledger over ``[start_s, end_s]`` (a pool's or the fleet's).

    Energies in J (GPU energy summed over GPUs), times in s. ``busy_gpu_s``: GPU-seconds of
    busy replicas; ``replica_busy_s``: replica-seconds busy; ``batch_s``: sum of batch x busy
    time; ``kv_fraction_s``: sum of (KV tokens held / capacity) x busy time; ``tokens_out``:
    tokens emitted (prorated by overlap).
    """

    start_s: float
    end_s: float
    nodes: int
    gpus: int
    busy_gpu_j: float
    prefill_gpu_j: float
    idle_gpu_j: float
    host_j: float
    busy_gpu_s: float
    replica_busy_s: float
    batch_s: float
    kv_fraction_s: float
    tokens_out: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def gpu_j(self) -> float:
        return self.busy_gpu_j + self.idle_gpu_j

    @property
    def decode_gpu_j(self) -> float:
        return self.busy_gpu_j - self.prefill_gpu_j

    @property
    def it_j(self) -> float:
        return self.gpu_j + self.host_j


def _overlap(t0: np.ndarray, t1: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Fraction of each interval inside [w0, w1]."""
    dur = t1 - t0
    ov = np.clip(np.minimum(t1, w1) - np.maximum(t0, w0), 0.0, None)
    return np.divide(ov, dur, out=np.zeros_like(ov), where=dur > 0)


class Ledger:
    """Node power of one fleet (see the module docstring)."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.end_s: float | None = None
        self._host: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {}
        self._groups: dict[tuple[int, ...], list[tuple[Pool, float, list[Replica]]]] = {}
        # per node: (t0_s, t1_s, power_w) of power its links add (KV transfers), host side
        self._links: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # in the run: the power a node's links add now, W (a disaggregated fleet's KV mover)
        self.link_now_w: Callable[[int], float] | None = None

    def add_link_power(self, t0_s: np.ndarray, t1_s: np.ndarray, node: np.ndarray,
                       power_w: np.ndarray) -> None:
        """Intervals of power that nodes' links (NICs) add to their host power: a
        disaggregated fleet's KV transfers (:meth:`~simulator.engine.disagg.KVMover.link_power`).
        They may overlap one another and the GPUs' intervals."""
        for k in np.unique(node).astype(int).tolist():
            m = node == k
            self._links[k] = (t0_s[m], t1_s[m], power_w[m])

    # ------------------------------------------------------------ in the run
    def _group(self, nodes: Sequence[int]) -> list[tuple[Pool, float, list[Replica]]]:
        """Per node: its pool, the power of its GPUs outside replicas, its replicas."""
        key = tuple(nodes)
        hit = self._groups.get(key)
        if hit is None:
            hit = self._groups[key] = [
                (pool, pool.unused_gpus_per_node * pool.idle_w,
                 [r for r in pool.replicas if r.node == k])
                for k in key for pool in (self.fleet.pool_of_node(k),)]
        return hit

    def power_now_w(self, nodes: Sequence[int]) -> float:
        """IT power of ``nodes`` now, W: GPUs at their current iteration's power (idle GPUs
        at idle power) plus each node's host at that GPU power."""
        total = 0.0
        for pool, other_w, reps in self._group(nodes):
            gpu_w = other_w
            for r in reps:
                gpu_w += r.power_now_w()
            total += gpu_w + pool.host.node_w(gpu_w)
        if self.link_now_w is not None:  # KV transfers' links (as add_link_power records)
            for k in nodes:
                total += self.link_now_w(k)
        return total

    def cap_room_w(self, nodes: Sequence[int], budget_w: float) -> float:
        """The most watts of GPU caps (sum of tp x cap over the replicas of ``nodes``) that keep
        ``nodes`` within ``budget_w`` with every GPU at its cap and every host drawing what that
        GPU power makes it draw (the host's linear branch; conservative for mixed pools)."""
        lf = max(self.fleet.pool_of_node(k).host.load_factor for k in nodes)
        fixed = 0.0
        for k in nodes:
            pool = self.fleet.pool_of_node(k)
            h = pool.host
            const = h.idle_w - h.load_factor * h.gpus_per_node * h.gpu_idle_w
            fixed += const + (1.0 + h.load_factor) * pool.unused_gpus_per_node * pool.idle_w
        return (budget_w - fixed) / (1.0 + lf)

    def idle_power_w(self, nodes: Sequence[int]) -> float:
        """Power of ``nodes`` with no work at all, W."""
        total = 0.0
        for k in nodes:
            pool = self.fleet.pool_of_node(k)
            gpu_w = pool.gpus_per_node * pool.idle_w
            total += gpu_w + pool.host.node_w(gpu_w)
        return total

    # ------------------------------------------------------------ after the run
    def close(self, end_s: float) -> None:
        """The run ended at ``end_s``: the ledger is final."""
        self.end_s = end_s
        self._host.clear()

    def _end(self) -> float:
        if self.end_s is None:
            raise RuntimeError("the ledger is read after the run (call close first)")
        return self.end_s

    def node_timeline(self, node: int) -> pd.DataFrame:
        """Piecewise-constant power of one node: GPUs (busy at their interval mean, idle at idle
        power, unused GPUs idle) plus host. Columns ``t_start_s, t_end_s, gpu_power_w,
        host_power_w, node_power_w, node_power_w_peak, busy_gpus``."""
        import pandas as pd

        return pd.DataFrame(self.node_arrays(node))

    def node_arrays(self, node: int) -> dict[str, np.ndarray]:
        """:meth:`node_timeline`'s columns as arrays (computed anew)."""
        parts = list(self.node_chunks(node))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def node_chunks(self, node: int, rows: int = 1 << 18):
        """:meth:`node_arrays` in consecutive pieces of at most ``rows`` intervals: a long
        run's timeline is integrated and written piece by piece, never held whole."""
        end = self._end()
        pool = self.fleet.pool_of_node(node)
        idle_w, gpn, tp = pool.idle_w, pool.gpus_per_node, pool.tp
        reps = [r for r in pool.replicas if r.node == node]
        bounds = [np.array([0.0, end])]
        for r in reps:
            bounds += [r.rec.array("t0_s"), r.rec.array("t1_s")]
        links = self._links.get(node)
        if links is not None:
            bounds += [links[0], links[1]]
            # the links' power at a time: what started by then less what ended by then
            on_t, off_t = np.sort(links[0]), np.sort(links[1])
            on_w = np.r_[0.0, np.cumsum(links[2][np.argsort(links[0], kind="stable")])]
            off_w = np.r_[0.0, np.cumsum(links[2][np.argsort(links[1], kind="stable")])]
        edges = np.unique(np.concatenate(bounds))
        del bounds
        edges = edges[(edges >= 0) & (edges <= end)]
        if edges.size < 2:
            edges = np.array([0.0, max(end, 0.0)])
        cols = []
        for r in reps:
            t0 = r.rec.array("t0_s")
            t1 = r.rec.array("t1_s")
            p = np.divide(r.rec.array("energy_j"), t1 - t0, out=np.zeros(t0.size), where=t1 > t0)
            cols.append((t0, t1, p, r.rec.array("peak_w") * tp))
        other_w = idle_w * (gpn - len(reps) * tp)
        for lo in range(0, edges.size - 1, rows):
            e = edges[lo:lo + rows + 1]
            mids = 0.5 * (e[:-1] + e[1:])
            gpu_w = np.full(mids.size, other_w)
            peak_w = gpu_w.copy()
            busy_gpus = np.zeros(mids.size)
            for t0, t1, p, pk in cols:
                idx = np.searchsorted(t0, mids, side="right") - 1
                inside = (idx >= 0) & (mids < t1[np.clip(idx, 0, None)]) if t0.size else np.zeros(mids.size, bool)
                gi = np.clip(idx, 0, None)
                gpu_w += np.where(inside, p[gi] if t0.size else 0.0, idle_w * tp)
                peak_w += np.where(inside, pk[gi] if t0.size else 0.0, idle_w * tp)
                busy_gpus += np.where(inside, tp, 0)
            host_w = pool.host.node_w(gpu_w)
            link_w = 0.0
            if links is not None:
                link_w = np.clip(on_w[np.searchsorted(on_t, mids, side="right")]
                                 - off_w[np.searchsorted(off_t, mids, side="right")], 0.0, None)
                host_w = host_w + link_w
            peak_w = np.maximum(peak_w, gpu_w)
            yield {"t_start_s": e[:-1], "t_end_s": e[1:], "gpu_power_w": gpu_w,
                   "host_power_w": host_w, "node_power_w": gpu_w + host_w,
                   "node_power_w_peak": peak_w + pool.host.node_w(peak_w) + link_w,
                   "busy_gpus": busy_gpus}

    def _node_host(self, node: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(t_start_s, t_end_s, host_j, peak_w)`` of a node's timeline: what the run's
        integrals need of it (host energy per interval, the highest node power), kept once
        per node instead of the whole timeline."""
        hit = self._host.get(node)
        if hit is None:
            t0s, t1s, host, peak = [], [], [], 0.0
            for a in self.node_chunks(node):
                t0, t1 = a["t_start_s"], a["t_end_s"]
                t0s.append(t0)
                t1s.append(t1)
                host.append(a["host_power_w"] * (t1 - t0))
                if t0.size:
                    peak = max(peak, float(a["node_power_w_peak"].max()))
            hit = self._host[node] = (np.concatenate(t0s), np.concatenate(t1s),
                                      np.concatenate(host), peak)
        return hit

    def row_timeline(self, nodes: Sequence[int]) -> pd.DataFrame:
        """Piecewise-constant IT power of a group of nodes (sum of their timelines):
        ``t_start_s, t_end_s, power_w``."""
        import pandas as pd

        tls = [self.node_arrays(n) for n in nodes]
        edges = np.unique(np.concatenate(
            [np.r_[t["t_start_s"], t["t_end_s"][-1:]] for t in tls]))
        if edges.size < 2:
            return pd.DataFrame({"t_start_s": [], "t_end_s": [], "power_w": []})
        mids = 0.5 * (edges[:-1] + edges[1:])
        p = np.zeros(mids.size)
        for t in tls:
            idx = np.clip(np.searchsorted(t["t_start_s"], mids, side="right") - 1, 0, None)
            p += t["node_power_w"][idx]
        return pd.DataFrame({"t_start_s": edges[:-1], "t_end_s": edges[1:], "power_w": p})

    def _host_j(self, node: int, w0: float, w1: float) -> float:
        """Host energy of one node inside [w0, w1], J (its timeline, prorated)."""
        t0, t1, host_j, _ = self._node_host(node)
        return float((host_j * _overlap(t0, t1, w0, w1)).sum())

    def peak_node_power_w(self, pool: Pool | None = None) -> float:
        """Highest instantaneous node power (iteration peaks), W."""
        nodes = pool.node_range if pool is not None else range(self.fleet.nodes)
        return max((self._node_host(i)[3] for i in nodes), default=0.0)

    def window(self, w0: float | None = None, w1: float | None = None,
               pool: Pool | None = None, host: bool = True) -> Window:
        """Exact integrals over ``[w0, w1]`` (default the whole run) of one pool or the fleet
        (``host=False``: without the host energy, which needs every node's timeline; its
        ``host_j`` is then NaN)."""
        end = self._end()
        whole = w0 is None and w1 is None
        w0 = 0.0 if w0 is None else w0
        w1 = end if w1 is None else w1
        win = w1 - w0
        pools = [pool] if pool is not None else self.fleet.pools
        busy_j = prefill_j = idle_j = host_j = busy_gpu_s = busy_s = batch_s = kv_s = tok = 0.0
        nodes = gpus = 0
        for pl in pools:
            nodes += pl.nodes
            gpus += pl.gpus
            cap = pl.kv.capacity_tokens
            pool_busy_gpu_s = 0.0
            for r in pl.replicas:
                rec = r.rec
                if not len(rec):
                    idle_j += pl.idle_w * r.tp * win
                    continue
                t0, t1 = rec.array("t0_s"), rec.array("t1_s")
                dur = t1 - t0
                if whole:  # every interval lies inside the run
                    frac = None
                    e = float(rec.array("energy_j").sum())
                    pre = float(rec.array("prefill_j").sum())
                    d = float(dur.sum())
                else:
                    frac = _overlap(t0, t1, w0, w1)
                    e = float((rec.array("energy_j") * frac).sum())
                    pre = float((rec.array("prefill_j") * frac).sum())
                    d = float((dur * frac).sum())
                busy_j += e
                prefill_j += pre
                busy_s += d
                pool_busy_gpu_s += d * r.tp
                idle_j += pl.idle_w * r.tp * (win - d)
                f = 1.0 if frac is None else frac
                batch_s += float((rec.array("batch") * dur * f).sum())
                kv_s += float((rec.array("kv_tokens") * dur * f).sum()) / cap
                tok += float((rec.array("tokens_out") * f).sum())
            idle_j += pl.idle_w * pl.unused_gpus_per_node * pl.nodes * win
            busy_gpu_s += pool_busy_gpu_s
            if host:
                for node in pl.node_range:
                    host_j += self._host_j(node, w0, w1)
            else:
                host_j = float("nan")
        return Window(w0, w1, nodes, gpus, busy_j, prefill_j, idle_j, host_j, busy_gpu_s,
                      busy_s, batch_s, kv_s, tok)
