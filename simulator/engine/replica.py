"""A replica: one tensor-parallel group of GPUs running continuous batching on the engine clock.

At each iteration boundary the replica asks its scheduling policy for the next iteration
(:mod:`simulator.engine.scheduler`), asks its :class:`~simulator.physics.iteration.IterationModel`
for the iteration's time and energy, and schedules its next boundary on the
:class:`~simulator.engine.clock.EngineClock`. When only decodes run and nothing can join, it
jumps over ``k`` decode iterations in one event (closed form,
:class:`~simulator.physics.power.DecodeSpan`) up to the next membership change: the first
request to finish or the KV cache filling up. An arrival during a jump cuts it short: the jump
then ends at the first iteration boundary after the arrival, where the stepped engine
(``simulation.engine: stepped``, one event per iteration) would also have admitted it.

Energy (per replica, all GPUs of the group): every busy interval goes to the
:class:`~simulator.engine.recorder.Recorder` with its exact energy; idle time is filled in by
the ledger. Each iteration's energy (GPUs, plus the host's load-dependent share: the host load
factor times the GPU energy above idle) is shared by the tokens it processed: prefill chunks by
their tokens, decodes one share each (a per-slot cumulative counter makes this O(1) per request).

Disaggregation (:mod:`simulator.engine.disagg`): a prefill replica (``handoff`` set) hands a
request whose prompt is done to the KV mover and keeps its KV (``kv_sending``) until the
transfer ends (:meth:`sent`); a decode replica has blocks reserved for a request before its
KV moves in (:meth:`reserve`) and takes it into its decodes at the next boundary
(:meth:`receive`), exactly where the stepped engine would.

The state is slotted attributes and the hot paths are written out rather than layered (one
iteration allocates its plan and nothing else): this module is where the engine's time goes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator

from simulator.engine.clock import EngineClock
from simulator.engine.kvcache import KVCache
from simulator.engine.recorder import Recorder
from simulator.engine.request import DECODE, DONE, PREFILL, QUEUED, TRANSFER, Request
from simulator.engine.scheduler import SCHEDULERS, BatchLimits, Plan, Scheduler
from simulator.physics.iteration import IterationModel
from simulator.physics.power import DecodeSpan
from simulator.physics.shapes import IterationShape

#: what a replica's running boundary ends
IDLE, MIXED, JUMP = 0, 1, 2
NEVER = 1 << 40  # decode steps "forever"

_heappush, _heappop = heapq.heappush, heapq.heappop


class Replica:
    """One replica's scheduler state and clock.

    Read-only to routers (``outstanding``, ``outstanding_tokens``) and to controllers
    (``index``, ``node``, ``pool``, ``tp``, ``cap_w``, ``busy``, :meth:`power_now_w`,
    :meth:`live_requests`, :meth:`pending_prefill_tokens`); controllers act only through
    :meth:`set_cap`. A router that keeps its own index of the loads registers with
    :meth:`watch_load`.
    """

    __slots__ = (
        "env", "index", "node", "pool", "tp", "model", "cap_w", "limits", "kv", "idle_w",
        "host_load_factor", "on_finish", "schedule", "stepped", "rec",
        "waiting", "prefilling", "_heap", "n_dec", "ctx_sum", "kv_reserved", "it", "slot_j",
        "admitted_order", "stall_s", "n_stalled", "outstanding", "outstanding_tokens",
        "preemptions", "busy", "_in_jump", "_phase", "_timer_eid", "_wake_cb", "_spans",
        "_moved", "_kv_capacity", "_kv_slack", "_busy_buf", "_itl_buf", "_prune_at",
        # the running jump (start, span, context at its first iteration, iterations, batch)
        # or mixed iteration (plan, time, per-GPU energy, start, decodes)
        "_jump", "_mixed",
        # disaggregation: where a prefill replica hands a prefilled request (None: it decodes
        # it itself), KV tokens it still holds for requests whose KV is moving out, requests
        # whose KV has arrived here and join the decodes at the next boundary
        "handoff", "kv_sending", "incoming",
    )

    def __init__(self, env: EngineClock, index: int, node: int, pool: int, tp: int,
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
        self._busy_buf = self.rec.busy_rows.buf  # rows are appended here (Recorder.busy)
        self._itl_buf = self.rec.itl_rows.buf  # (Recorder.itl)
        self._kv_capacity = kv.capacity_tokens
        self._kv_slack = kv.block_tokens - 1  # KVCache.held_tokens's slack per sequence
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
        self._prune_at = 64  # admitted_order drops its finished requests above this length
        self.stall_s = 0.0        # prefill-only time since the last decode step (no chunking)
        self.n_stalled = 0
        # router view
        self.outstanding = 0
        self.outstanding_tokens = 0
        self._moved: Callable[[int, int, int], None] | None = None
        # counters
        self.preemptions = 0
        # clock state
        self.busy = False
        self._in_jump = False
        self._phase = IDLE
        self._timer_eid = -1
        self._wake_cb = self._wake  # one bound method, not one per event
        self._spans: dict[int, DecodeSpan] = {}
        self._jump: tuple[float, DecodeSpan, int, int, int] | None = None
        self._mixed: tuple[Plan, float, float, float, int] | None = None
        self.handoff: Callable[[Request, "Replica", float], None] | None = None
        self.kv_sending = 0
        self.incoming: list[Request] = []

    def watch_load(self, moved: Callable[[int, int, int], None]) -> None:
        """Call ``moved(index, outstanding, outstanding_tokens)`` whenever they change."""
        self._moved = moved

    # ------------------------------------------------------------ arrivals and actuation
    def submit(self, r: Request) -> None:
        """Receive a routed request at the current time."""
        r.replica = self.index
        self.waiting.append(r)
        self.outstanding += 1
        self.outstanding_tokens += r.input_tokens + r.output_tokens
        if self._moved is not None:
            self._moved(self.index, self.outstanding, self.outstanding_tokens)
        if not self.busy:
            self._start()
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

    # ------------------------------------------------------------ disaggregation
    def _send(self, r: Request, now: float) -> None:
        """A prefill replica finished ``r``'s prompt: it leaves this replica's load, its KV
        stays held here (prompt + first token, worst-case block) until :meth:`sent`."""
        r.state = TRANSFER
        r.prefill_done_s = now
        self.kv_sending += r.prompt_tokens + 1 + self._kv_slack
        self.kv_reserved += r.prompt_tokens + 1 + self._kv_slack
        self.outstanding -= 1
        self.outstanding_tokens -= r.input_tokens + r.output_tokens
        if self._moved is not None:
            self._moved(self.index, self.outstanding, self.outstanding_tokens)
        self.handoff(r, self, now)

    def sent(self, r: Request) -> None:
        """``r``'s KV has left this (prefill) replica: free its blocks, resume if they
        blocked admission."""
        held = r.prompt_tokens + 1 + self._kv_slack
        self.kv_sending -= held
        self.kv_reserved -= held
        if not self.busy and self.waiting:
            self._start()

    def kv_need_tokens(self, r: Request) -> int:
        """KV tokens ``r`` holds once it decodes here (context plus a worst-case block)."""
        return r.input_tokens + r.generated_tokens + self._kv_slack

    def kv_room_tokens(self) -> float:
        """KV tokens a new arrival may still take here: the admission limit (capacity less
        vLLM's watermark) less what is held and reserved."""
        ctx = self.ctx_sum
        if self._in_jump:  # in a coalesced jump: the context grown by its steps so far
            t_start, span, c0, k, n = self._jump
            ctx = c0 + n * span.iterations_within(c0, self.env._now - t_start, k)
        return self.kv.admit_limit_tokens - (
            self.kv_reserved + ctx + (self.n_dec + len(self.prefilling)) * self._kv_slack)

    def reserve(self, r: Request) -> None:
        """Hold the blocks ``r`` will need here before its KV moves in (a decode replica);
        it counts in this replica's load from now on."""
        r.replica = self.index
        self.kv_reserved += self.kv_need_tokens(r)
        self.outstanding += 1
        self.outstanding_tokens += r.input_tokens + r.output_tokens
        if self._moved is not None:
            self._moved(self.index, self.outstanding, self.outstanding_tokens)
        if self._in_jump:  # less room: if the jump's steps no longer fit, replan at the next
            t_start, span, c0, k, n = self._jump  # boundary (where stepping would preempt)
            free = self._kv_capacity - (self.kv_reserved + c0
                                        + (n + len(self.prefilling)) * self._kv_slack)
            if free < 0 or free // n + 1 < k:
                self._cut_jump()

    def receive(self, r: Request) -> None:
        """``r``'s KV has arrived: it joins the decodes at the next iteration boundary."""
        self.incoming.append(r)
        if not self.busy:
            self._start()
        elif self._in_jump:
            self._cut_jump()

    def _join_incoming(self) -> None:
        """At a boundary: the requests whose KV has arrived join the decodes."""
        order = self.admitted_order
        for r in self.incoming:
            self.kv_reserved -= self.kv_need_tokens(r)
            r.state = DECODE
            r.join_it = self.it
            r.join_gen = r.generated_tokens
            r.slot_mark_j = self.slot_j
            self.ctx_sum += r.input_tokens + r.generated_tokens
            self.n_dec += 1
            r.heap_ver += 1
            _heappush(self._heap, (self.it + r.output_tokens - r.generated_tokens,
                                   r.rid, r.heap_ver, r))
            order.append(r)
        self.incoming.clear()

    # ------------------------------------------------------------ read-only views
    def power_now_w(self) -> float:
        """GPU power of the whole group now, W (idle groups draw idle power)."""
        if not self.busy:
            return self.idle_w
        if self._phase == JUMP:
            t_start, span, c0, k, n = self._jump
            kd = span.iterations_within(c0, self.env.now - t_start, k) if k > 1 else 0
            return span.one(c0 + n * min(kd, k - 1)).power_w * self.tp
        _, time_s, energy_j, _, _ = self._mixed
        return energy_j / time_s * self.tp

    def live_requests(self) -> Iterator[Request]:
        """Requests waiting, in prefill or decoding here (a decoding one may repeat)."""
        yield from self.waiting
        yield from self.prefilling
        yield from self.incoming
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
        if self._phase == JUMP:
            t_start, span, c0, k, n = self._jump
            elapsed = now - t_start
            kd = span.iterations_within(c0, elapsed, k)
            part = elapsed - span.duration_s(c0, kd)
            e_gpu = span.energy_j(c0, kd) + (span.one(c0 + n * kd).power_w * part if kd < k else 0.0)
            peak, batch = span.one(c0).power_w, n
        else:
            plan, time_s, energy_j, t_start, n = self._mixed
            power = energy_j / time_s
            e_gpu = power * (now - t_start)
            peak, batch = power, n + len(plan.chunks)
        if now > t_start:
            self.rec.busy(t_start, now, e_gpu * self.tp, peak, batch, 0, 0.0,
                          self.kv_reserved + self.ctx_sum)
        self.busy = False
        self._phase = IDLE
        self._timer_eid = -1

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

    def _finish(self, r: Request, now: float) -> None:
        r.state = DONE
        r.finish_s = now
        r.generated_tokens = r.output_tokens
        self.outstanding -= 1
        self.outstanding_tokens -= r.input_tokens + r.output_tokens
        if self._moved is not None:
            self._moved(self.index, self.outstanding, self.outstanding_tokens)
        self.on_finish(r)

    def _pop_finished(self, now: float) -> None:
        """End every decoding sequence whose last token came at this boundary."""
        heap = self._heap
        it = self.it
        while heap and heap[0][0] <= it:
            _, _, ver, r = _heappop(heap)
            if r.state != DECODE or ver != r.heap_ver:
                continue
            tokens = r.input_tokens + r.output_tokens
            self.ctx_sum -= tokens  # context after its last step
            self.n_dec -= 1
            r.energy_j += self.slot_j - r.slot_mark_j
            # _finish, written out
            r.state = DONE
            r.finish_s = now
            r.generated_tokens = r.output_tokens
            self.outstanding -= 1
            self.outstanding_tokens -= tokens
            if self._moved is not None:
                self._moved(self.index, self.outstanding, self.outstanding_tokens)
            self.on_finish(r)

    # ------------------------------------------------------------ the replica's clock
    # Each iteration (or coalesced jump) ends at a boundary on the engine clock whose wake-up
    # ends it and plans the next. A boundary that falls strictly before every other pending
    # event (the clock's heap and its next arrival) cannot be affected by anything else, so
    # the wake-up ends it at once, in the same loop, without scheduling it: the same order of
    # events, fewer of them. A jump cut short by an arrival gets a new, earlier boundary; the
    # superseded entry is recognised by its id and dropped here.

    def _start(self) -> None:
        """Start working now (an arrival at an idle replica)."""
        t_end = self._next(self.env._now)
        if t_end >= 0.0:
            self._timer_eid = self.env.boundary_at(t_end, self._wake_cb)

    def _wake(self, eid: int) -> None:
        if eid != self._timer_eid:  # superseded by a cut
            return
        env = self.env
        feed = env.feed
        now = env._now
        while True:
            if self._phase == JUMP:
                self._end_decode(now)
            else:
                self._end_mixed(now)
            t_end = self._next(now)
            if t_end < 0.0:  # idle
                self._timer_eid = -1
                return
            q = env._queue
            if t_end < feed.t_s and (not q or t_end < q[0][0]):
                env._now = now = t_end  # nothing else can happen before it: end it here
                continue
            self._timer_eid = env.boundary_at(t_end, self._wake_cb)
            return

    def _cut_jump(self) -> None:
        """An arrival during a coalesced jump: end the jump at the next iteration boundary."""
        t0, span, c0, k, n = self._jump
        now = self.env._now
        kd, d = span.cut(c0, now - t0, k)  # boundary_at_or_after and its duration_s
        if kd >= k:
            return
        self._jump = (t0, span, c0, kd, n)
        delay = t0 + d - now
        self._timer_eid = self.env.boundary(delay if delay > 0.0 else 0.0, self._wake_cb)

    def _span(self, n: int) -> DecodeSpan:
        span = self._spans[n] = self.model.decode_span(n, self.cap_w)
        return span

    def _next(self, t_start: float) -> float:
        """At an iteration boundary: choose and start the next iteration and return the time
        it ends (not scheduled: :meth:`_wake` and :meth:`_start` do that), or go idle and
        return -1."""
        waiting, prefilling = self.waiting, self.prefilling
        if self.incoming:
            self._join_incoming()
        kv_steps = NEVER
        while True:
            n_dec = self.n_dec
            if n_dec:
                # KVCache.decode_steps, written out: steps that fit before someone must go
                free = self._kv_capacity - (self.kv_reserved + self.ctx_sum
                                            + (n_dec + len(prefilling)) * self._kv_slack)
                if free < 0:  # the KV cache is over-committed: someone must go
                    kv_steps = 0
                    self._preempt_one()
                    continue
                kv_steps = free // n_dec + 1
            elif not waiting and not prefilling:
                self.busy = False
                self._phase = IDLE
                return -1.0
            break
        self.busy = True
        if waiting or prefilling:
            plan = self.schedule(self.limits, self.kv, waiting, prefilling, n_dec,
                                 self.kv_reserved + self.ctx_sum)
            chunks = plan.chunks
        else:
            chunks = None  # only decodes can run
        if not chunks:
            # decode-only: one coalesced jump up to the next membership change (or one step)
            if n_dec == 0:
                if self.kv_sending:  # KV held for transfers blocks admission: wait for them
                    self.busy = False
                    self._phase = IDLE
                    return -1.0
                raise RuntimeError("replica has waiting work it can never schedule")
            span = self._spans.get(n_dec)
            if span is None:
                span = self._span(n_dec)
            c0 = self.ctx_sum
            if self.stepped or self.stall_s > 0.0:
                k = 1
            else:
                heap = self._heap
                k = NEVER
                while heap:  # the next finish (stale entries dropped)
                    fin, _, ver, r = heap[0]
                    if r.state == DECODE and ver == r.heap_ver:
                        k = fin - self.it
                        break
                    _heappop(heap)
                if kv_steps < k:
                    k = kv_steps
                if k > 1 and not span.free and not span.uncapped(c0, k):
                    k = 1  # the cap binds somewhere in the span: step one iteration at a time
            self._jump = (t_start, span, c0, k, n_dec)
            self._in_jump = k > 1
            self._phase = JUMP
            if span.free:  # DecodeSpan.duration_s(c0, k), written out
                if k == 1:
                    return t_start + (span.t0_s + span.t1_s * c0)
                if k > 1:
                    return t_start + (k * (span.t0_s + span.t1_s * c0)
                                      + span.t1_s * span.n_seqs * (k * (k - 1) / 2.0))
            return t_start + span.duration_s(c0, k)
        order = self.admitted_order
        for r in plan.admitted:
            waiting.popleft()
            r.state = PREFILL
            if r.first_sched_s != r.first_sched_s:  # NaN: first time scheduled
                r.first_sched_s = t_start
            prefilling.append(r)
            self.kv_reserved += r.prompt_tokens + 1
            order.append(r)
        if len(order) > self._prune_at:
            # finished requests are skipped by preemption anyway: drop them (in order), so
            # that the list holds what runs, not every request the replica ever served
            order[:] = [r for r in order if r.state != DONE]
            self._prune_at = 2 * len(order) + 64
        n = n_dec if plan.decode else 0
        p_tok, done = plan.tokens, plan.finishing
        time_s, energy_j = self.model.mixed_base(p_tok, plan.pairs, plan.prefix, len(chunks),
                                                 n + done, n)
        ctx = 0
        if n:
            ctx = self.ctx_sum
            span = self._spans.get(n)
            if span is None:
                span = self._span(n)
            time_s += span.t1_s * ctx
            energy_j += span.e1_j * ctx
        if energy_j / time_s > self.cap_w:  # the cap binds: the DVFS model, on the full shape
            cost = self.model.cost(IterationShape(p_tok, plan.pairs, plan.prefix, len(chunks),
                                                  n + done, n, ctx), self.cap_w)
            time_s, energy_j = cost.time_s, cost.energy_j
        self._mixed = (plan, time_s, energy_j, t_start, n)
        self._in_jump = False
        self._phase = MIXED
        return t_start + time_s

    def _end_decode(self, now: float) -> None:
        self._in_jump = False
        t_start, span, c0, k, n = self._jump
        rec = self.rec
        dur = now - t_start
        energy_gpu, peak, a, b = span.totals(c0, k, dur)
        e_gpu = energy_gpu * self.tp
        self.slot_j += (e_gpu + self.host_load_factor * (e_gpu - self.idle_w * dur)) / n
        if self.stall_s > 0.0:  # k == 1 here: the first decode after prefill-only iterations
            rec.itl(t_start, dur + self.stall_s, 0.0, 1, self.n_stalled)
            rec.itl(t_start, dur, 0.0, 1, n - self.n_stalled)
            self.stall_s, self.n_stalled = 0.0, 0
        else:  # durations a + b j (one iteration: its duration)
            self._itl_buf.extend((t_start, a, b, k, n))
        it = self.it = self.it + k
        self.ctx_sum += n * k
        self._busy_buf.extend((t_start, t_start + dur, e_gpu, peak, n, n * k, 0.0,
                              self.kv_reserved + self.ctx_sum - n * (k + 1) / 2.0))
        heap = self._heap
        if heap and heap[0][0] <= it:
            self._pop_finished(now)

    def _end_mixed(self, now: float) -> None:
        plan, dur, energy_j, t_start, n = self._mixed
        p_tok, done = plan.tokens, plan.finishing
        rec, tp = self.rec, self.tp
        e_gpu = energy_j * tp
        e_total = e_gpu + self.host_load_factor * (e_gpu - self.idle_w * dur)
        share = e_total / (p_tok + n)
        if n:
            self.slot_j += share
            if self.stall_s > 0.0:
                rec.itl(t_start, dur + self.stall_s, 0.0, 1, self.n_stalled)
                rec.itl(t_start, dur, 0.0, 1, n - self.n_stalled)
                self.stall_s, self.n_stalled = 0.0, 0
            else:
                self._itl_buf.extend((t_start, dur, 0.0, 1, n))
            self.it += 1
            self.ctx_sum += n
        elif self.n_dec:
            if self.stall_s == 0.0:
                self.n_stalled = self.n_dec
            self.stall_s += dur
        prefilling = self.prefilling
        for r, c in plan.chunks:
            r.energy_j += share * c
            r.prefilled_tokens += c
            if r.prefilled_tokens == r.prompt_tokens:
                prefilling.remove(r)
                self.kv_reserved -= r.prompt_tokens + 1
                r.generated_tokens += 1
                if r.generated_tokens >= r.output_tokens:
                    if r.first_token_s != r.first_token_s:
                        r.first_token_s = now
                    self._finish(r, now)
                elif self.handoff is not None:  # a prefill replica: its KV moves out
                    self._send(r, now)
                else:  # joins the decodes
                    if r.first_token_s != r.first_token_s:
                        r.first_token_s = now
                    r.state = DECODE
                    r.join_it = self.it
                    r.join_gen = r.generated_tokens
                    r.slot_mark_j = self.slot_j
                    self.ctx_sum += r.input_tokens + r.generated_tokens
                    self.n_dec += 1
                    r.heap_ver += 1
                    _heappush(self._heap, (self.it + r.output_tokens - r.generated_tokens,
                                           r.rid, r.heap_ver, r))
        self._busy_buf.extend((t_start, now, e_gpu, energy_j / dur,
                              n + len(plan.chunks), n + done, e_gpu * p_tok / (p_tok + n),
                              self.kv_reserved + self.ctx_sum))
        heap = self._heap
        if heap and heap[0][0] <= self.it:
            self._pop_finished(now)
