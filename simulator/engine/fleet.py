"""Build a fleet: nodes of 8 GPUs split into tensor-parallel replicas, with their physics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import simpy

from simulator.engine.batching import BatchLimits
from simulator.engine.replica import Replica
from simulator.engine.request import Request
from simulator.errors import ScenarioError
from simulator.hardware import GIB
from simulator.physics.memory import MemoryPlan, plan_memory
from simulator.physics.params import Calibration
from simulator.physics.power import for_precision
from simulator.physics.timing import TimingModel
from simulator.scenario.schema import Scenario


@dataclass
class Fleet:
    replicas: list[Replica]
    memory: MemoryPlan
    limits: BatchLimits
    timing: TimingModel
    nodes: int
    gpus_per_node: int
    replicas_per_node: int
    tp: int


def check_memory(sc: Scenario) -> MemoryPlan:
    """Plan one replica's memory; reject a model that does not fit with a clear message."""
    m, d, s = sc.model_shape(), sc.deployment, sc.serving
    plan = plan_memory(m, d.tp, d.precision, d.kv_precision, s.gpu_memory_fraction,
                       s.max_batched_tokens, s.block_size_tokens, s.runtime_overhead_gib)
    if plan.kv_tokens < s.max_model_len:
        need_gib = (plan.weight_bytes + plan.activation_bytes + plan.overhead_bytes
                    + s.max_model_len * plan.kv_bytes_per_token) / GIB
        raise ScenarioError(
            f"{m.name} in {d.precision} at tp={d.tp} does not fit: needs {need_gib:.1f} GiB per GPU"
            f" (weights {plan.weight_bytes / GIB:.1f} GiB + activations + overhead + KV cache for one"
            f" {s.max_model_len}-token sequence) but only {plan.usable_bytes / GIB:.1f} GiB are usable;"
            " use a larger tp, fp8, or a smaller serving.max_model_len",
            file=sc._file, field="deployment")
    return plan


def build_fleet(env: simpy.Environment, sc: Scenario, cal: Calibration,
                on_finish: Callable[[Request], None]) -> Fleet:
    d, s, f = sc.deployment, sc.serving, sc.facility
    mem = check_memory(sc)
    timing = TimingModel(sc.model_shape(), d.tp, d.precision, cal.timing, d.kv_precision)
    limits = BatchLimits(
        max_batch_size=s.max_batch_size, max_batched_tokens=s.max_batched_tokens,
        chunk_tokens=s.chunk_size_tokens or s.max_batched_tokens, chunked_prefill=s.chunked_prefill,
        kv_capacity_tokens=mem.kv_tokens, block_tokens=s.block_size_tokens)
    power = for_precision(cal.power, d.precision)
    gpn = sc.hardware.gpus_per_node
    host_busy_w_per_gpu = f.host_active_w / gpn
    rpn = sc.replicas_per_node
    replicas = []
    for node in range(d.nodes):
        for _ in range(rpn):
            replicas.append(Replica(env, len(replicas), node, d.tp, timing, power, d.gpu_cap_w,
                                    limits, host_busy_w_per_gpu, on_finish,
                                    stepped=sc.simulation.engine == "stepped"))
    return Fleet(replicas, mem, limits, timing, d.nodes, gpn, rpn, d.tp)
