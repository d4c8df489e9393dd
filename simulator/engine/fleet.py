"""Build a fleet: pools of nodes, each node split into tensor-parallel replicas with their physics.

A :class:`Pool` is one model on one GPU type (its device profile and calibration), one
parallelism and one set of serving limits; nodes and replicas are numbered through the pools in
order, so ``power.node_caps_w``, ``power.rows`` and the outputs use one index space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import simpy

from simulator.devices import DeviceProfile, load_calibration
from simulator.engine.kvcache import KVCache
from simulator.engine.replica import Replica
from simulator.engine.request import Request
from simulator.engine.scheduler import SCHEDULERS, BatchLimits
from simulator.errors import ScenarioError
from simulator.physics.hardware import GIB
from simulator.physics.host import HostPower
from simulator.physics.iteration import IterationModel
from simulator.physics.memory import MemoryPlan, plan_memory
from simulator.physics.params import Calibration
from simulator.scenario.schema import PoolSpec, Scenario


@dataclass
class Pool:
    """One pool of identical nodes and its replicas."""

    index: int
    spec: PoolSpec
    profile: DeviceProfile
    calibration: Calibration
    model: IterationModel
    memory: MemoryPlan
    limits: BatchLimits
    kv: KVCache
    host: HostPower
    first_node: int
    nodes: int
    replicas: list[Replica] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tp(self) -> int:
        return self.spec.deployment.tp

    @property
    def role(self) -> str:
        """mixed | prefill | decode (disaggregation, :mod:`simulator.engine.disagg`)."""
        return self.spec.role

    @property
    def gpus_per_node(self) -> int:
        return self.host.gpus_per_node

    @property
    def replicas_per_node(self) -> int:
        return self.spec.replicas_per_node

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def idle_w(self) -> float:
        """Power of one idle GPU, W."""
        return self.calibration.power.idle_w

    @property
    def unused_gpus_per_node(self) -> int:
        """GPUs of a node that belong to no replica (they idle all run)."""
        return self.gpus_per_node - self.replicas_per_node * self.tp

    @property
    def node_range(self) -> range:
        return range(self.first_node, self.first_node + self.nodes)


@dataclass
class Fleet:
    """Pools in order; ``replicas`` is every replica by its global index."""

    pools: list[Pool]
    replicas: list[Replica]
    node_pool: list[int]  # pool index of every node

    @property
    def nodes(self) -> int:
        return len(self.node_pool)

    @property
    def gpus(self) -> int:
        return sum(p.gpus for p in self.pools)

    def pool_of_node(self, node: int) -> Pool:
        return self.pools[self.node_pool[node]]


def pool_calibration(sc: Scenario, pool: PoolSpec) -> Calibration:
    """The pool's fitted coefficients: its own file, the scenario's, or its profile's."""
    path = pool.hardware.calibration or sc.simulation.calibration
    if path is None:
        return pool.profile().calibration()
    where = (f"{pool.path}hardware.calibration" if pool.hardware.calibration
             else "simulation.calibration")
    try:
        return load_calibration(sc.resolve(path))
    except ScenarioError as e:
        raise ScenarioError(f"{e}", file=sc.file, field=where) from None


def plan_pool_memory(pool: PoolSpec) -> MemoryPlan:
    """One replica's per-GPU memory plan (``kv_blocks`` <= 0 when the model does not fit)."""
    d, s = pool.deployment, pool.serving
    return plan_memory(pool.model_shape(), d.tp, d.precision, d.kv_precision,
                       s.gpu_memory_fraction, s.max_batched_tokens, s.max_batch_size,
                       s.block_size_tokens, pool.overhead_gib,
                       pool.stack().sampler_bytes_per_logit, pool.profile().gpu,
                       d.attention_data_parallel)


#: serving fields that change the memory plan, in the order they are blamed, with the advice
_MEMORY_FIELDS = {
    "max_model_len": "lower serving.max_model_len",
    "gpu_memory_fraction": "raise serving.gpu_memory_fraction",
    "runtime_overhead_gib": "lower serving.runtime_overhead_gib",
    "max_batched_tokens": "lower serving.max_batched_tokens (activation workspace)",
    "block_size_tokens": "lower serving.block_size_tokens",
}


def _fits(pool: PoolSpec) -> bool:
    return plan_pool_memory(pool).kv_tokens >= pool.serving.max_model_len


def _memory_culprit(pool: PoolSpec) -> tuple[str, str]:
    """(field path, advice) of what makes ``pool`` not fit: a serving field the user changed
    whose default would make it fit, else the deployment (tp, precision)."""
    defaults = type(pool.serving).model_fields
    for name, advice in _MEMORY_FIELDS.items():
        default = defaults[name].default
        if getattr(pool.serving, name) == default:
            continue
        trial = pool.model_copy(update={"serving": pool.serving.model_copy(update={name: default})})
        if _fits(trial):
            return f"{pool.path}serving.{name}", advice
    return f"{pool.path}deployment", ("use a larger tp, fp8, or a smaller"
                                      " serving.max_model_len")


def check_memory(sc: Scenario) -> list[MemoryPlan]:
    """Plan every pool's memory; reject a model that does not fit with a clear message naming
    the field that makes it not fit (a serving limit the user changed, else the deployment)."""
    plans = []
    for pool in sc.pool_specs():
        m, d, s = pool.model_shape(), pool.deployment, pool.serving
        plan = plan_pool_memory(pool)
        if plan.kv_tokens < s.max_model_len:
            need_gib = (plan.weight_bytes + plan.activation_bytes + plan.overhead_bytes
                        + s.max_model_len * plan.kv_bytes_per_token) / GIB
            field, advice = _memory_culprit(pool)
            raise ScenarioError(
                f"{m.name} in {d.precision} at tp={d.tp} does not fit {pool.profile().name}:"
                f" needs {need_gib:.1f} GiB per GPU (weights {plan.weight_bytes / GIB:.1f} GiB +"
                f" activations + overhead + KV cache for one {s.max_model_len}-token sequence) but"
                f" only {plan.usable_bytes / GIB:.1f} GiB are usable; {advice}",
                file=sc.file, field=field)
        plans.append(plan)
    _check_decode_room(sc, plans)
    return plans


def _check_decode_room(sc: Scenario, plans: list[MemoryPlan]) -> None:
    """A decode replica must hold one max-length request moved in from a prefill pool (its
    context, up to the fleet's serving.max_model_len, plus a worst-case last block)."""
    if not sc.disaggregated:
        return
    specs = sc.pool_specs()
    limit = min(p.serving.max_model_len for p in specs)
    for pool, plan in zip(specs, plans):
        need = limit + pool.serving.block_size_tokens - 2  # prompt + first token + slack
        if pool.role == "decode" and plan.kv_tokens < need:
            raise ScenarioError(
                f"a decode replica of pool {pool.name!r} holds {plan.kv_tokens} KV tokens, less"
                f" than one max-length request moved to it ({limit} tokens and a"
                f" {pool.serving.block_size_tokens}-token block: {need}); lower"
                " serving.max_model_len or give the decode pool more memory per replica",
                file=sc.file, field=f"{pool.path}serving.max_model_len")


class ModelCache:
    """Iteration models kept across simulations whose pools share their physics (model shape,
    parallelism, precisions, GPU, DVFS and the calibration's timing and power), so that a
    projection's many short simulations do not each rebuild the models and refill their
    caches. A model is pure (its caches only remember what it computed), so results are the
    same with or without it; the least recently used of more than ``entries`` go."""

    def __init__(self, entries: int = 8):
        self.entries = entries
        self._models: dict[bytes, IterationModel] = {}

    def get(self, spec: PoolSpec, cal: Calibration, prof: DeviceProfile) -> IterationModel:
        import pickle

        d = spec.deployment
        key = pickle.dumps((spec.model_shape(), d.tp, d.precision, d.kv_precision,
                            d.expert_parallel, d.attention_data_parallel, cal.timing, cal.power,
                            prof.gpu, prof.dvfs()))
        model = self._models.pop(key, None)
        if model is None:
            model = _iteration_model(spec, cal, prof)
            while len(self._models) >= self.entries:
                self._models.pop(next(iter(self._models)))
        self._models[key] = model  # most recent last
        return model


def _iteration_model(spec: PoolSpec, cal: Calibration, prof: DeviceProfile) -> IterationModel:
    d = spec.deployment
    return IterationModel.build(spec.model_shape(), d.tp, d.precision, d.kv_precision, cal,
                                prof.gpu, prof.dvfs(), expert_parallel=d.expert_parallel,
                                attention_data_parallel=d.attention_data_parallel)


def build_fleet(env: simpy.Environment, sc: Scenario, on_finish: Callable[[Request], None],
                calibration: Calibration | Mapping[str, Calibration] | None = None,
                models: ModelCache | None = None) -> Fleet:
    """The fleet of ``sc``. ``calibration`` overrides the pools' coefficients: one for every
    pool, or one per pool name (pools not named keep theirs); ``models`` keeps iteration
    models across simulations (:class:`ModelCache`)."""
    plans = check_memory(sc)
    pools: list[Pool] = []
    replicas: list[Replica] = []
    node_pool: list[int] = []
    stepped = sc.simulation.engine == "stepped"
    for i, (spec, mem) in enumerate(zip(sc.pool_specs(), plans)):
        if isinstance(calibration, Calibration):
            cal = calibration
        elif calibration is not None and spec.name in calibration:
            cal = calibration[spec.name]
        else:
            cal = pool_calibration(sc, spec)
        d, s = spec.deployment, spec.serving
        prof = spec.profile()
        model = models.get(spec, cal, prof) if models is not None else \
            _iteration_model(spec, cal, prof)
        max_batch, max_tokens, chunk = spec.replica_limits()  # data-parallel ranks as one
        limits = BatchLimits(max_batch_size=max_batch, max_batched_tokens=max_tokens,
                             chunk_tokens=chunk, chunked_prefill=s.chunked_prefill)
        kv = KVCache(mem.replica_kv_tokens, s.block_size_tokens)
        host = spec.host(sc.facility, cal.power.idle_w)
        pool = Pool(i, spec, prof, cal, model, mem, limits, kv, host, len(node_pool), d.nodes)
        cap_w = spec.gpu_cap_w
        for node in pool.node_range:
            node_pool.append(i)
            for _ in range(spec.replicas_per_node):
                r = Replica(env, len(replicas), node, i, d.tp, model, cap_w, limits, kv,
                            host.load_factor, on_finish, SCHEDULERS[s.scheduler], stepped)
                replicas.append(r)
                pool.replicas.append(r)
        pools.append(pool)
    return Fleet(pools, replicas, node_pool)
