"""A replica: one tensor-parallel group of GPUs running continuous batching on SimPy events.

At each iteration boundary the replica asks the batching policy for the next iteration, asks the physics for its
time and energy, and advances the clock. When only decodes run and nothing can join, it jumps
over ``k`` decode iterations in one event (closed form, :class:`DecodeSpan`) up to the next
membership change: the first request to finish or the KV cache filling up. An arrival during a
jump cuts it short: the jump then ends at the first iteration boundary after the arrival, where
the stepped engine (``simulation.engine: stepped``, one event per iteration) would also have
admitted it.

Energy ledger (per replica, all GPUs of the group): every busy interval is recorded with its
exact energy; idle time is filled in later at idle power. Each iteration's energy (GPUs plus
the host share of a busy GPU) is shared by the tokens it processed: prefill chunks by their
tokens, decodes one share each (a per-slot cumulative counter makes this O(1) per request).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import Timeout

from simulator.engine.batching import BatchLimits, plan_iteration
from simulator.engine.request import DECODE, DONE, PREFILL, QUEUED, Request
from simulator.physics.params import PowerParams
from simulator.physics.power import DecodeSpan, iteration_cost
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel


class Recorder:
    """Struct-of-lists of busy intervals and inter-token-latency pieces of one replica.

    Interval i: ``[t0_s[i], t1_s[i])`` with replica GPU energy ``energy_j[i]`` (sum over its
    GPUs), peak per-GPU power ``peak_w[i]``, mean sequences ``batch[i]``, tokens emitted
    ``tokens_out[i]``, prefill energy share ``prefill_j[i]``, mean KV tokens ``kv_tokens[i]``.
    ITL piece p: ``k`` iterations whose durations are ``a + b j`` (j < k), each giving ``w``
    tokens that inter-token latency; starting at ``itl_t_s``.
    """

    FIELDS = ("t0_s", "t1_s", "energy_j", "peak_w", "batch", "tokens_out", "prefill_j",
              "kv_tokens", "itl_t_s", "itl_a", "itl_b", "itl_k", "itl_w")
    __slots__ = FIELDS + ("_arrays",)

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, [])
        self._arrays: dict[str, tuple[int, np.ndarray]] = {}

    def array(self, name: str) -> np.ndarray:
        """Field ``name`` as a float64 array (converted once, again only after it grew)."""
        lst = getattr(self, name)
        hit = self._arrays.get(name)
        if hit is None or hit[0] != len(lst):
            hit = self._arrays[name] = (len(lst), np.array(lst, dtype=np.float64))
        return hit[1]

    def itl(self, t_s: float, a: float, b: float, k: int, w: int) -> None:
        if w > 0 and k > 0:
            self.itl_t_s.append(t_s)
            self.itl_a.append(a)
            self.itl_b.append(b)
            self.itl_k.append(k)
            self.itl_w.append(w)


class Replica:
    """One replica's scheduler state and SimPy process."""

    def __init__(self, env: simpy.Environment, index: int, node: int, tp: int,
                 timing: TimingModel, power: PowerParams, cap_w: float, limits: BatchLimits,
                 host_busy_w_per_gpu: float, on_finish: Callable[[Request], None],
                 stepped: bool = False):
        self.env, self.index, self.node, self.tp = env, index, node, tp
        self.timing, self.power, self.cap_w, self.limits = timing, power, cap_w, limits
        self.host_busy_w = host_busy_w_per_gpu * tp  # host share drawn while this group is busy
        self.on_finish = on_finish
        self.stepped = stepped
        self.rec = Recorder()
        # queues
        self.waiting: deque[Request] = deque()
        self.prefilling: list[Request] = []
        self.heap: list[tuple[int, int, int, Request]] = []  # (finish_it, rid, version, req)
        self.n_dec = 0
        self.ctx_sum = 0          # sum over decoders of the context of their next step
        self.kv_reserved = 0      # KV tokens held by sequences still in prefill
        self.it = 0               # decode steps executed
        self.slot_j = 0.0         # cumulative energy per decode slot
        self.admitted_order: list[Request] = []  # for LIFO preemption (lazy cleanup)
        self.stall_s = 0.0        # prefill-only time since the last decode step (no chunking)
        self.n_stalled = 0
        # router view
        self.outstanding = 0
        self.outstanding_tokens = 0
        # counters
        self.preemptions = 0
        self.busy_s = 0.0
        self.gpu_energy_busy_j = 0.0
        # clock state
        self.busy = False
        self._in_jump = False
        self._timer = None
        self._on_end = None
        self._jump = None
        self._mixed = None
        self._spans: dict[int, DecodeSpan] = {}
        self._fire_cb = self._fire  # one bound method, not one per event

    # ------------------------------------------------------------ arrivals
    def submit(self, r: Request) -> None:
        """Receive a routed request at the current time."""
        r.replica = self.index
        self.waiting.append(r)
        self.outstanding += 1
        self.outstanding_tokens += r.input_tokens + r.output_tokens
        if not self.busy:
            self._next()
        elif self._in_jump:
            self._cut_jump()

    def set_cap(self, cap_w: float) -> None:
        """Change this replica's GPU power cap now (a capping controller's actuation).

        The running iteration finishes under the old cap; a coalesced jump is cut at the next
        iteration boundary so that every later iteration runs under the new cap.
        """
        if cap_w == self.cap_w:
            return
        self.cap_w = cap_w
        self._spans = {}
        if self.busy and self._in_jump:
            self._cut_jump()

    def current_power_w(self) -> float:
        """GPU power of the whole group now, W (read-only; idle groups draw idle power)."""
        if not self.busy:
            return self.power.idle_w * self.tp
        if self._on_end == self._end_decode:
            t_start, span, c0, k, n = self._jump
            kd = span.iterations_within(c0, self.env.now - t_start, k) if k > 1 else 0
            return span.one(c0 + n * min(kd, k - 1)).power_w * self.tp
        return self._mixed[1].power_w * self.tp

    def close(self) -> None:
        """Stop now (end of a run without drain): record the elapsed part of the running
        iteration or jump at its exact energy, so the ledger has no gap. No tokens count."""
        if not self.busy:
            return
        now = self.env.now
        if self._on_end == self._end_decode:
            t_start, span, c0, k, n = self._jump
            elapsed = now - t_start
            kd = span.iterations_within(c0, elapsed, k)
            part = elapsed - span.duration_s(c0, kd)
            e_gpu = span.energy_j(c0, kd) + (span.one(c0 + n * kd).power_w * part if kd < k else 0.0)
            peak, batch = span.one(c0).power_w, n
        else:
            plan, cost, t_start, n, p_tok, done = self._mixed
            e_gpu = cost.power_w * (now - t_start)
            peak, batch = cost.power_w, n + len(plan.chunks)
        if now > t_start:
            self._record(t_start, now, e_gpu * self.tp, peak, batch, 0, 0.0,
                         self.kv_reserved + self.ctx_sum)
        self.busy = False
        self._timer = None

    # ------------------------------------------------------------ helpers
    def _kv_steps_possible(self) -> int:
        """Decode steps that fit the KV cache before someone must be preempted."""
        lim = self.limits
        n_running = self.n_dec + len(self.prefilling)
        free = lim.kv_capacity_tokens - self.kv_reserved - n_running * (lim.block_tokens - 1) - self.ctx_sum
        return math.floor(free / self.n_dec) + 1 if free >= 0 else 0

    def _preempt_one(self) -> None:
        """Evict the most recently admitted running sequence (recompute later), vLLM's LIFO."""
        order = self.admitted_order
        while order:
            r = order.pop()
            if r.state == DECODE:
                g = r.join_gen + (self.it - r.join_it)
                self.ctx_sum -= r.input_tokens + g
                self.n_dec -= 1
                r.energy_j += self.slot_j - r.slot_mark_j
                r.generated_tokens = g
                r.heap_ver += 1  # its heap entry is now stale
            elif r.state == PREFILL:
                self.prefilling.remove(r)
                self.kv_reserved -= r.prompt_tokens + 1
            else:
                continue
            r.state = QUEUED
            r.prompt_tokens = r.input_tokens + r.generated_tokens
            r.prefilled_tokens = 0
            r.preemptions += 1
            self.preemptions += 1
            self.waiting.appendleft(r)
            return
        raise RuntimeError("KV cache cannot hold a single sequence")  # excluded at load time

    def _join_decode(self, r: Request) -> None:
        r.state = DECODE
        r.join_it = self.it
        r.join_gen = r.generated_tokens
        r.slot_mark_j = self.slot_j
        self.ctx_sum += r.input_tokens + r.generated_tokens
        self.n_dec += 1
        r.heap_ver += 1
        heapq.heappush(self.heap, (self.it + r.output_tokens - r.generated_tokens, r.rid, r.heap_ver, r))

    def _finish(self, r: Request, now: float) -> None:
        r.state = DONE
        r.finish_s = now
        r.generated_tokens = r.output_tokens
        self.outstanding -= 1
        self.outstanding_tokens -= r.input_tokens + r.output_tokens
        self.on_finish(r)

    def _pop_finished(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= self.it:
            _, _, ver, r = heapq.heappop(heap)
            if r.state != DECODE or ver != r.heap_ver:
                continue
            self.ctx_sum -= r.input_tokens + r.output_tokens  # context after its last step
            self.n_dec -= 1
            r.energy_j += self.slot_j - r.slot_mark_j
            self._finish(r, now)

    def _next_finish_steps(self) -> int:
        heap = self.heap
        while heap:
            fin, _, ver, r = heap[0]
            if r.state == DECODE and ver == r.heap_ver:
                return fin - self.it
            heapq.heappop(heap)
        return 1 << 40

    # ------------------------------------------------------------ the replica's clock
    # The replica is a small state machine on SimPy events: each iteration (or coalesced
    # jump) is one Timeout whose callback ends it and starts the next. A jump cut short by an
    # arrival gets a new, earlier Timeout; the stale one is ignored when it fires.

    def _arm(self, delay_s: float, on_end) -> None:
        ev = Timeout(self.env, delay_s)
        self._timer = ev
        self._on_end = on_end
        ev.callbacks.append(self._fire_cb)

    def _fire(self, ev) -> None:
        if ev is self._timer:
            self._timer = None
            self._on_end()

    def _cut_jump(self) -> None:
        """An arrival during a coalesced jump: end the jump at the next iteration boundary."""
        t_start, span, c0, k, n = self._jump
        elapsed = self.env.now - t_start
        kd = span.iterations_within(c0, elapsed, k)
        if kd == 0 or span.duration_s(c0, kd) < elapsed:
            kd += 1  # the iteration in progress completes first
        if kd >= k:
            return
        self._jump = (t_start, span, c0, kd, n)
        self._arm(max(0.0, t_start + span.duration_s(c0, kd) - self.env.now), self._end_decode)

    def _next(self) -> None:
        """At an iteration boundary: choose and start the next iteration, or go idle."""
        waiting, prefilling = self.waiting, self.prefilling
        kv_steps = 1 << 40
        while True:
            n_dec = self.n_dec
            if n_dec:
                # decode steps that fit the KV cache before someone must be preempted
                # (_kv_steps_possible, inlined: this runs at every iteration boundary)
                lim = self.limits
                free = (lim.kv_capacity_tokens - self.kv_reserved - self.ctx_sum
                        - (n_dec + len(prefilling)) * (lim.block_tokens - 1))
                if free < 0:
                    self._preempt_one()
                    continue
                kv_steps = math.floor(free / n_dec) + 1
            elif not waiting and not prefilling:
                self.busy = False
                return
            break
        self.busy = True
        t_start = self.env.now
        if waiting or prefilling:
            plan = plan_iteration(self.limits, waiting, prefilling, n_dec, self.kv_reserved + self.ctx_sum)
            chunks = plan.chunks
        else:
            chunks = None  # only decodes can run
        if not chunks:
            # decode-only: one coalesced jump up to the next membership change (or one step)
            if n_dec == 0:
                raise RuntimeError("replica has waiting work it can never schedule")
            span = self._spans.get(n_dec)
            if span is None:
                span = self._spans[n_dec] = DecodeSpan.of(self.timing.decode_line(n_dec), self.power, self.cap_w)
            c0 = self.ctx_sum
            if self.stepped or self.stall_s > 0.0:
                k = 1
            else:
                k = self._next_finish_steps()
                if kv_steps < k:
                    k = kv_steps
                if k > 1 and not span.uncapped(c0, k):
                    k = 1  # the cap binds somewhere in the span: step one iteration at a time
            self._jump = (t_start, span, c0, k, n_dec)
            self._in_jump = k > 1
            self._arm(span.duration_s(c0, k), self._end_decode)
            return
        for r in plan.admitted:
            waiting.popleft()
            r.state = PREFILL
            if r.first_sched_s != r.first_sched_s:  # NaN: first time scheduled
                r.first_sched_s = t_start
            prefilling.append(r)
            self.kv_reserved += r.prompt_tokens + 1
            self.admitted_order.append(r)
        n = n_dec if plan.decode else 0
        p_tok = prefix = done = 0
        pairs = 0.0
        for r, c in chunks:
            p_tok += c
            pre = r.prefilled_tokens
            pairs += c * pre + c * (c + 1) / 2.0
            prefix += pre
            if pre + c == r.prompt_tokens:
                done += 1
        shape = IterationShape(p_tok, pairs, prefix, len(chunks), n + done, n,
                               self.ctx_sum if n else 0)
        cost = iteration_cost(self.power, self.timing.work(shape), self.cap_w)
        self._mixed = (plan, cost, t_start, n, p_tok, done)
        self._in_jump = False
        self._arm(cost.time_s, self._end_mixed)

    def _end_decode(self) -> None:
        t_start, span, c0, k, n = self._jump
        self._in_jump = False
        dur = self.env.now - t_start
        self._account_decode(span, c0, k, n, t_start, dur, span.energy_j(c0, k))
        self._pop_finished(self.env.now)
        self._next()

    def _end_mixed(self) -> None:
        plan, cost, t_start, n, p_tok, done = self._mixed
        rec, tp = self.rec, self.tp
        now = self.env.now
        dur = cost.time_s
        e_gpu = cost.energy_j * tp
        e_total = e_gpu + self.host_busy_w * dur
        share = e_total / (p_tok + n)
        if n:
            self.slot_j += share
            if self.stall_s > 0.0:
                rec.itl(t_start, dur + self.stall_s, 0.0, 1, self.n_stalled)
                rec.itl(t_start, dur, 0.0, 1, n - self.n_stalled)
                self.stall_s, self.n_stalled = 0.0, 0
            else:  # rec.itl(t_start, dur, 0.0, 1, n), inlined
                rec.itl_t_s.append(t_start)
                rec.itl_a.append(dur)
                rec.itl_b.append(0.0)
                rec.itl_k.append(1)
                rec.itl_w.append(n)
            self.it += 1
            self.ctx_sum += n
        elif self.n_dec:
            if self.stall_s == 0.0:
                self.n_stalled = self.n_dec
            self.stall_s += dur
        for r, c in plan.chunks:
            r.energy_j += share * c
            r.prefilled_tokens += c
            if r.prefilled_tokens == r.prompt_tokens:
                self.prefilling.remove(r)
                self.kv_reserved -= r.prompt_tokens + 1
                r.generated_tokens += 1
                if r.first_token_s != r.first_token_s:
                    r.first_token_s = now
                if r.generated_tokens >= r.output_tokens:
                    self._finish(r, now)
                else:
                    self._join_decode(r)
        self._record(t_start, now, e_gpu, cost.power_w, n + len(plan.chunks), n + done,
                     e_gpu * p_tok / (p_tok + n), self.kv_reserved + self.ctx_sum)
        self._pop_finished(now)
        self._next()

    def _account_decode(self, span: DecodeSpan, c0: int, k: int, n: int, t_start: float,
                        dur: float, energy_gpu: float) -> None:
        rec = self.rec
        tp = self.tp
        e_total = energy_gpu * tp + self.host_busy_w * dur
        self.slot_j += e_total / n
        # ITL pieces: per-iteration time is max(a1 + b1 j, a2 + b2 j); split at the crossing
        if self.stall_s > 0.0:  # k == 1 here
            rec.itl(t_start, dur + self.stall_s, 0.0, 1, self.n_stalled)
            rec.itl(t_start, dur, 0.0, 1, n - self.n_stalled)
            self.stall_s, self.n_stalled = 0.0, 0
        elif k == 1:
            rec.itl(t_start, dur, 0.0, 1, n)
        else:  # uncapped span: durations t0 + t1 (c0 + n j)
            rec.itl(t_start, span.t0_s + span.t1_s * c0, span.t1_s * n, k, n)
        if k == 1:
            p_peak = energy_gpu / dur if dur > 0 else 0.0
        else:  # uncapped: power (e0 + e1 c) / (t0 + t1 c) is monotone in c, so check the ends
            c1 = c0 + n * (k - 1)
            p_peak = max((span.e0_j + span.e1_j * c0) / (span.t0_s + span.t1_s * c0),
                         (span.e0_j + span.e1_j * c1) / (span.t0_s + span.t1_s * c1))
        self.it += k
        self.ctx_sum += n * k
        self._record(t_start, t_start + dur, energy_gpu * tp, p_peak, n, n * k,
                     0.0, self.kv_reserved + self.ctx_sum - n * (k + 1) / 2.0)

    def _record(self, t0: float, t1: float, energy_j: float, peak_w: float, batch: float,
                tokens_out: int, prefill_j: float, kv_tokens: float) -> None:
        rec = self.rec
        rec.t0_s.append(t0)
        rec.t1_s.append(t1)
        rec.energy_j.append(energy_j)
        rec.peak_w.append(peak_w)
        rec.batch.append(batch)
        rec.tokens_out.append(tokens_out)
        rec.prefill_j.append(prefill_j)
        rec.kv_tokens.append(kv_tokens)
