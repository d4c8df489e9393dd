"""A replica: one tensor-parallel group of GPUs running continuous batching on SimPy events.

At each iteration boundary the replica asks its scheduling policy for the next iteration
(:mod:`simulator.engine.scheduler`), asks its :class:`~simulator.physics.iteration.IterationModel`
for the iteration's time and energy, and advances the clock. When only decodes run and nothing
can join, it jumps over ``k`` decode iterations in one event (closed form,
:class:`~simulator.physics.power.DecodeSpan`) up to the next membership change: the first
request to finish or the KV cache filling up. An arrival during a jump cuts it short: the jump
then ends at the first iteration boundary after the arrival, where the stepped engine
(``simulation.engine: stepped``, one event per iteration) would also have admitted it.

Energy (per replica, all GPUs of the group): every busy interval goes to the
:class:`~simulator.engine.recorder.Recorder` with its exact energy; idle time is filled in by
the ledger. Each iteration's energy (GPUs, plus the host's load-dependent share: the host load
factor times the GPU energy above idle) is shared by the tokens it processed: prefill chunks by
their tokens, decodes one share each (a per-slot cumulative counter makes this O(1) per request).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator

import simpy
from simpy.events import Timeout

from simulator.engine.kvcache import KVCache
from simulator.engine.recorder import Recorder
from simulator.engine.request import DECODE, DONE, PREFILL, QUEUED, Request
from simulator.engine.scheduler import SCHEDULERS, BatchLimits, Plan, Scheduler
from simulator.physics.iteration import IterationModel
from simulator.physics.power import Cost, DecodeSpan
from simulator.physics.shapes import IterationShape


class DecodeJump:
    """A running coalesced decode span: ``k`` iterations of ``n`` sequences from ``t_start_s``,
    total context ``c0`` at the first."""

    __slots__ = ("t_start_s", "span", "c0", "k", "n")

    def __init__(self, t_start_s: float, span: DecodeSpan, c0: int, k: int, n: int):
        self.t_start_s, self.span, self.c0, self.k, self.n = t_start_s, span, c0, k, n


class MixedStep:
    """A running iteration with prefill chunks: its plan and cost, ``n_decode`` decodes taking
    part, ``prefill_tokens`` prompt tokens and ``finishing`` prompts it completes."""

    __slots__ = ("plan", "cost", "t_start_s", "n_decode", "prefill_tokens", "finishing")

    def __init__(self, plan: Plan, cost: Cost, t_start_s: float, n_decode: int,
                 prefill_tokens: int, finishing: int):
        self.plan, self.cost, self.t_start_s = plan, cost, t_start_s
        self.n_decode, self.prefill_tokens, self.finishing = n_decode, prefill_tokens, finishing


class Replica:
    """One replica's scheduler state and SimPy process.

    Read-only to routers (``outstanding``, ``outstanding_tokens``) and to controllers
    (``index``, ``node``, ``pool``, ``tp``, ``cap_w``, ``busy``, :meth:`power_now_w`,
    :meth:`live_requests`, :meth:`pending_prefill_tokens`); controllers act only through
    :meth:`set_cap`.
    """

    def __init__(self, env: simpy.Environment, index: int, node: int, pool: int, tp: int,
                 model: IterationModel, cap_w: float, limits: BatchLimits, kv: KVCache,
                 host_load_factor: float, on_finish: Callable[[Request], None],
                 scheduler: Scheduler = SCHEDULERS["fcfs"], stepped: bool = False):
        self.env, self.index, self.node, self.pool, self.tp = env, index, node, pool, tp
        self.model, self.cap_w, self.limits, self.kv = model, cap_w, limits, kv
        self.idle_w = model.idle_w * tp  # GPU power of the idle group, W
        self.host_load_factor = host_load_factor  # host W per GPU W above idle
        self.on_finish = on_finish
        self.schedule = scheduler
        self.stepped = stepped
        self.rec = Recorder()
        # queues
        self.waiting: deque[Request] = deque()
        self.prefilling: list[Request] = []
        self._heap: list[tuple[int, int, int, Request]] = []  # (finish_it, rid, version, req)
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
        # clock state
        self.busy = False
        self._in_jump = False
        self._timer: Timeout | None = None
        self._on_end: Callable[[], None] | None = None
        self._jump: DecodeJump | None = None
        self._mixed: MixedStep | None = None
        self._spans: dict[int, DecodeSpan] = {}
        self._fire_cb = self._fire  # one bound method, not one per event

    # ------------------------------------------------------------ arrivals and actuation
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
        """Change this replica's GPU power cap now (a controller's actuation).

        The running iteration finishes under the old cap; a coalesced jump is cut at the next
        iteration boundary so that every later iteration runs under the new cap.
        """
        if cap_w == self.cap_w:
            return
        self.cap_w = cap_w
        self._spans = {}
        if self.busy and self._in_jump:
            self._cut_jump()

    # ------------------------------------------------------------ read-only views
    def power_now_w(self) -> float:
        """GPU power of the whole group now, W (idle groups draw idle power)."""
        if not self.busy:
            return self.idle_w
        if self._on_end == self._end_decode:
            j = self._jump
            kd = j.span.iterations_within(j.c0, self.env.now - j.t_start_s, j.k) if j.k > 1 else 0
            return j.span.one(j.c0 + j.n * min(kd, j.k - 1)).power_w * self.tp
        return self._mixed.cost.power_w * self.tp

    def live_requests(self) -> Iterator[Request]:
        """Requests waiting, in prefill or decoding here (a decoding one may repeat)."""
        yield from self.waiting
        yield from self.prefilling
        for e in self._heap:
            if e[3].state == DECODE:
                yield e[3]

    def pending_prefill_tokens(self) -> int:
        """Prompt tokens still to prefill here (waiting and in-flight prompts)."""
        return sum(q.prompt_tokens - q.prefilled_tokens for q in (*self.waiting, *self.prefilling))

    def close(self) -> None:
        """Stop now (end of a run without drain): record the elapsed part of the running
        iteration or jump at its exact energy, so the ledger has no gap. No tokens count."""
        if not self.busy:
            return
        now = self.env.now
        if self._on_end == self._end_decode:
            j = self._jump
            t_start, span, c0, k, n = j.t_start_s, j.span, j.c0, j.k, j.n
            elapsed = now - t_start
            kd = span.iterations_within(c0, elapsed, k)
            part = elapsed - span.duration_s(c0, kd)
            e_gpu = span.energy_j(c0, kd) + (span.one(c0 + n * kd).power_w * part if kd < k else 0.0)
            peak, batch = span.one(c0).power_w, n
        else:
            m = self._mixed
            t_start = m.t_start_s
            e_gpu = m.cost.power_w * (now - t_start)
            peak, batch = m.cost.power_w, m.n_decode + len(m.plan.chunks)
        if now > t_start:
            self.rec.busy(t_start, now, e_gpu * self.tp, peak, batch, 0, 0.0,
                          self.kv_reserved + self.ctx_sum)
        self.busy = False
        self._timer = None

    # ------------------------------------------------------------ sequences
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
        heapq.heappush(self._heap, (self.it + r.output_tokens - r.generated_tokens, r.rid, r.heap_ver, r))

    def _finish(self, r: Request, now: float) -> None:
        r.state = DONE
        r.finish_s = now
        r.generated_tokens = r.output_tokens
        self.outstanding -= 1
        self.outstanding_tokens -= r.input_tokens + r.output_tokens
        self.on_finish(r)

    def _pop_finished(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self.it:
            _, _, ver, r = heapq.heappop(heap)
            if r.state != DECODE or ver != r.heap_ver:
                continue
            self.ctx_sum -= r.input_tokens + r.output_tokens  # context after its last step
            self.n_dec -= 1
            r.energy_j += self.slot_j - r.slot_mark_j
            self._finish(r, now)

    def _next_finish_steps(self) -> int:
        heap = self._heap
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

    def _arm(self, delay_s: float, on_end: Callable[[], None]) -> None:
        ev = Timeout(self.env, delay_s)
        self._timer = ev
        self._on_end = on_end
        ev.callbacks.append(self._fire_cb)

    def _fire(self, ev: Timeout) -> None:
        if ev is self._timer:
            self._timer = None
            self._on_end()

    def _cut_jump(self) -> None:
        """An arrival during a coalesced jump: end the jump at the next iteration boundary."""
        j = self._jump
        span, c0, k = j.span, j.c0, j.k
        elapsed = self.env.now - j.t_start_s
        kd = span.iterations_within(c0, elapsed, k)
        if kd == 0 or span.duration_s(c0, kd) < elapsed:
            kd += 1  # the iteration in progress completes first
        if kd >= k:
            return
        j.k = kd
        self._arm(max(0.0, j.t_start_s + span.duration_s(c0, kd) - self.env.now), self._end_decode)

    def _next(self) -> None:
        """At an iteration boundary: choose and start the next iteration, or go idle."""
        waiting, prefilling = self.waiting, self.prefilling
        kv_steps = 1 << 40
        while True:
            n_dec = self.n_dec
            if n_dec:
                kv_steps = self.kv.decode_steps(self.kv_reserved + self.ctx_sum,
                                                n_dec + len(prefilling), n_dec)
                if kv_steps == 0:  # the KV cache is over-committed: someone must go
                    self._preempt_one()
                    continue
            elif not waiting and not prefilling:
                self.busy = False
                return
            break
        self.busy = True
        t_start = self.env.now
        if waiting or prefilling:
            plan = self.schedule(self.limits, self.kv, waiting, prefilling, n_dec,
                                 self.kv_reserved + self.ctx_sum)
            chunks = plan.chunks
        else:
            chunks = None  # only decodes can run
        if not chunks:
            # decode-only: one coalesced jump up to the next membership change (or one step)
            if n_dec == 0:
                raise RuntimeError("replica has waiting work it can never schedule")
            span = self._spans.get(n_dec)
            if span is None:
                span = self._spans[n_dec] = self.model.decode_span(n_dec, self.cap_w)
            c0 = self.ctx_sum
            if self.stepped or self.stall_s > 0.0:
                k = 1
            else:
                k = self._next_finish_steps()
                if kv_steps < k:
                    k = kv_steps
                if k > 1 and not span.uncapped(c0, k):
                    k = 1  # the cap binds somewhere in the span: step one iteration at a time
            self._jump = DecodeJump(t_start, span, c0, k, n_dec)
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
        cost = self.model.cost(shape, self.cap_w)
        self._mixed = MixedStep(plan, cost, t_start, n, p_tok, done)
        self._in_jump = False
        self._arm(cost.time_s, self._end_mixed)

    def _end_decode(self) -> None:
        j = self._jump
        self._in_jump = False
        dur = self.env.now - j.t_start_s
        self._account_decode(j, dur, j.span.energy_j(j.c0, j.k))
        self._pop_finished(self.env.now)
        self._next()

    def _end_mixed(self) -> None:
        m = self._mixed
        plan, cost, t_start, n, p_tok, done = m.plan, m.cost, m.t_start_s, m.n_decode, m.prefill_tokens, m.finishing
        rec, tp = self.rec, self.tp
        now = self.env.now
        dur = cost.time_s
        e_gpu = cost.energy_j * tp
        e_total = e_gpu + self.host_load_factor * (e_gpu - self.idle_w * dur)
        share = e_total / (p_tok + n)
        if n:
            self.slot_j += share
            if self.stall_s > 0.0:
                rec.itl(t_start, dur + self.stall_s, 0.0, 1, self.n_stalled)
                rec.itl(t_start, dur, 0.0, 1, n - self.n_stalled)
                self.stall_s, self.n_stalled = 0.0, 0
            else:
                rec.itl(t_start, dur, 0.0, 1, n)
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
        rec.busy(t_start, now, e_gpu, cost.power_w, n + len(plan.chunks), n + done,
                 e_gpu * p_tok / (p_tok + n), self.kv_reserved + self.ctx_sum)
        self._pop_finished(now)
        self._next()

    def _account_decode(self, j: DecodeJump, dur: float, energy_gpu: float) -> None:
        rec, tp = self.rec, self.tp
        span, c0, k, n, t_start = j.span, j.c0, j.k, j.n, j.t_start_s
        e_gpu = energy_gpu * tp
        self.slot_j += (e_gpu + self.host_load_factor * (e_gpu - self.idle_w * dur)) / n
        if self.stall_s > 0.0:  # k == 1 here: the first decode after prefill-only iterations
            rec.itl(t_start, dur + self.stall_s, 0.0, 1, self.n_stalled)
            rec.itl(t_start, dur, 0.0, 1, n - self.n_stalled)
            self.stall_s, self.n_stalled = 0.0, 0
        elif k == 1:
            rec.itl(t_start, dur, 0.0, 1, n)
        else:  # uncapped span: durations a + b j
            a, b = span.itl_line(c0)
            rec.itl(t_start, a, b, k, n)
        peak = span.peak_power_w(c0, k, energy_gpu, dur)
        self.it += k
        self.ctx_sum += n * k
        rec.busy(t_start, t_start + dur, energy_gpu * tp, peak, n, n * k,
                 0.0, self.kv_reserved + self.ctx_sum - n * (k + 1) / 2.0)
