"""The scenario file, as typed and validated objects (pydantic, strict).

Every field has a type, a unit in its name or description, a default and a range; unknown
keys are errors. ``docs/scenario-reference.md`` is generated from this module
(``fleetsim reference``), so the reference cannot drift from the code.

A fleet is a list of pools (:class:`PoolSpec`: model, GPU type, parallelism, serving limits).
Without a ``pools:`` section the top-level ``model``, ``hardware``, ``deployment`` and
``serving`` sections are the fleet's one pool; with it, every pool starts from those sections
and overrides what it gives, field by field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from simulator.scenario.cost import CostSpec
from simulator.scenario.power import PowerSpec, check_power
from simulator.catalog import CATALOG, ModelShape
from simulator.devices import DeviceProfile, load_profile, names as device_names
from simulator.errors import did_you_mean
from simulator.physics.host import HostPower
from simulator.scenario.projection import ProjectionSpec, check_projection
from simulator.strict import Strict
from simulator.workload.spec import WorkloadSpec

POOL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
POOL_SECTIONS = ("model", "hardware", "deployment", "serving")


class ModelSpec(Strict):
    """A model shape given inline (instead of a catalog name)."""

    name: str = Field(description="label used in outputs")
    layers: int = Field(gt=0, description="transformer layers")
    hidden_size: int = Field(gt=0, description="model width d")
    heads: int = Field(gt=0, description="attention (query) heads")
    kv_heads: int = Field(gt=0, description="key/value heads (GQA)")
    ffn_size: int = Field(gt=0, description="MLP intermediate size")
    vocab_size: int = Field(gt=0, description="vocabulary size")
    gated_mlp: bool = Field(True, description="SwiGLU-style gated MLP (gate + up projections)")
    head_dim: int = Field(0, ge=0, description="head dimension; 0 means hidden_size / heads")
    tied_embeddings: bool = Field(False, description="the LM head shares the embedding table")
    fp8_bf16_gemms: list[Literal["qkv", "o", "up", "down", "shared", "experts"]] = Field(
        default_factory=list, description="GEMMs the model's quantized (FP8, MXFP4) checkpoint"
        " keeps in BF16 (e.g. qkv and o for Meta's Llama-3.1-405B-Instruct-FP8); embeddings, LM"
        " head and MoE routers are BF16")
    fp8_bf16_edge_layers: int = Field(0, ge=0, description="first and last layers the FP8"
                                      " checkpoint keeps whole in BF16")
    experts: int = Field(0, ge=0, le=4096, description="routed experts per MoE layer (0: a dense"
                         " model)")
    experts_per_token: int = Field(0, ge=0, description="experts each token is routed to")
    expert_ffn_size: int = Field(0, ge=0, description="intermediate size of one expert")
    shared_expert_ffn_size: int = Field(0, ge=0, description="intermediate size of the"
                                        " always-on shared expert(s) of an MoE layer (0: none)")
    dense_layers: int = Field(0, ge=0, description="first layers with a dense MLP of ffn_size"
                              " (DeepSeek-V3: 3)")
    moe_layer_step: int = Field(1, ge=1, description="after the dense layers, every k-th layer is"
                                " MoE, the others dense (Llama-4-Maverick: 2)")
    sliding_window_tokens: int = Field(0, ge=0, description="window of the sliding-window"
                                       " attention layers, tokens")
    sliding_window_layers: int = Field(0, ge=0, description="layers with sliding-window attention"
                                       " (the rest attend to the whole context)")
    kv_lora_rank: int = Field(0, ge=0, description="multi-head latent attention: rank of the"
                              " cached KV latent (0: grouped-query attention)")
    q_lora_rank: int = Field(0, ge=0, description="multi-head latent attention: rank of the"
                             " query down-projection (0: none)")
    qk_rope_head_dim: int = Field(0, ge=0, description="multi-head latent attention: rotary part"
                                  " of head_dim, also cached per token")
    v_head_dim: int = Field(0, ge=0, description="value head dimension (0: head_dim)")

    @model_validator(mode="after")
    def _heads(self) -> "ModelSpec":
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.head_dim == 0 and self.hidden_size % self.heads:
            raise ValueError("hidden_size must be a multiple of heads (or give head_dim)")
        moe = (self.experts_per_token, self.expert_ffn_size, self.shared_expert_ffn_size,
               self.dense_layers, self.moe_layer_step - 1)
        if self.experts == 0 and any(moe):
            raise ValueError("experts_per_token, expert_ffn_size, shared_expert_ffn_size,"
                             " dense_layers and moe_layer_step describe a mixture of experts:"
                             " give experts > 0 too")
        if self.experts:
            if not 1 <= self.experts_per_token <= self.experts:
                raise ValueError(f"experts_per_token must be 1..experts ({self.experts})")
            if self.expert_ffn_size == 0:
                raise ValueError("expert_ffn_size: an MoE model needs its experts' width")
            if self.dense_layers >= self.layers:
                raise ValueError(f"dense_layers ({self.dense_layers}) must be < layers ({self.layers})")
        if self.sliding_window_layers > self.layers:
            raise ValueError("sliding_window_layers must be <= layers")
        if (self.sliding_window_layers > 0) != (self.sliding_window_tokens > 0):
            raise ValueError("sliding_window_tokens and sliding_window_layers go together")
        mla = (self.q_lora_rank, self.qk_rope_head_dim)
        if self.kv_lora_rank == 0 and any(mla):
            raise ValueError("q_lora_rank and qk_rope_head_dim are multi-head latent attention"
                             " fields: give kv_lora_rank > 0 too (a GQA model has none)")
        if self.kv_lora_rank and (self.head_dim == 0 or self.qk_rope_head_dim >= self.head_dim):
            raise ValueError("multi-head latent attention needs head_dim (nope + rope) greater"
                             " than qk_rope_head_dim")
        return self

    def shape(self) -> ModelShape:
        return ModelShape(self.name, self.layers, self.hidden_size, self.heads, self.kv_heads,
                          self.ffn_size, self.vocab_size, self.gated_mlp, self.head_dim,
                          self.tied_embeddings, tuple(self.fp8_bf16_gemms),
                          self.fp8_bf16_edge_layers, experts=self.experts,
                          experts_per_token=self.experts_per_token,
                          expert_ffn_size=self.expert_ffn_size,
                          shared_expert_ffn_size=self.shared_expert_ffn_size,
                          dense_layers=self.dense_layers, moe_layer_step=self.moe_layer_step,
                          sliding_window_tokens=self.sliding_window_tokens,
                          sliding_window_layers=self.sliding_window_layers,
                          kv_lora_rank=self.kv_lora_rank, q_lora_rank=self.q_lora_rank,
                          qk_rope_head_dim=self.qk_rope_head_dim, v_head_dim=self.v_head_dim)


class HardwareSpec(Strict):
    """The GPU type (a device profile: datasheet, node, fitted coefficients) and its node."""

    gpu: str = Field("H100-SXM5-80GB", description="GPU type: the name or an alias of a device"
                     " profile (simulator/devices/; the reference lists them below)")
    gpus_per_node: int | None = Field(
        None, ge=1, le=64, description="GPUs per node; default the profile's node (DGX: 8)")
    calibration: str | None = Field(
        None, description="calibration file (fitted timing and power coefficients) for this"
        " GPU type instead of the profile's; a relative path resolves against the scenario"
        " file's folder")

    @field_validator("gpu")
    @classmethod
    def _known(cls, v: str) -> str:
        known = device_names()
        if v not in known:
            raise ValueError(f"unknown GPU {v!r}{did_you_mean(v, known)}; device profiles:"
                             f" {', '.join(known)}")
        return v

    def profile(self) -> DeviceProfile:
        return load_profile(self.gpu)

    @property
    def node_gpus(self) -> int:
        """GPUs per node: the field, else the profile's."""
        return self.gpus_per_node or self.profile().node.gpus_per_node


class DeploymentSpec(Strict):
    """How many nodes, and how each node is split into tensor-parallel replicas."""

    nodes: int = Field(1, gt=0, description="nodes in the fleet (in this pool)")
    tp: Literal[1, 2, 4, 8] = Field(8, description="tensor-parallel degree (GPUs per replica)")
    replicas_per_node: int | None = Field(
        None, gt=0, description="replicas per node; default gpus_per_node / tp (all GPUs used)")
    precision: Literal["bf16", "fp8", "mxfp4", "fp4"] = Field(
        "bf16", description="checkpoint weight/GEMM precision; the GPU must have a tensor-core"
        " peak for it (H100, H200: bf16, fp8; B200: bf16, fp8, fp4). mxfp4: gpt-oss's 4-bit"
        " experts (0.53 bytes per weight), run weight-only where the GPU has no FP4 tensor cores."
        " fp4 is NVFP4 (0.5625 bytes per weight with its block scales); an FP4 checkpoint keeps in"
        " BF16 what the model's FP8 checkpoint keeps (an assumption)")
    expert_parallel: bool = Field(
        False, description="a mixture of experts' experts are spread whole over the replica's"
        " GPUs (vLLM --enable-expert-parallel: experts / tp per GPU) instead of each sliced"
        " over them like a dense MLP (vLLM's default)")
    attention_data_parallel: bool = Field(
        False, description="each of the replica's tp GPUs is a data-parallel rank (vLLM"
        " --data-parallel-size tp --enable-expert-parallel, tensor parallelism 1 per rank): its"
        " own sequences, KV cache and attention, dense layers and shared experts whole on every"
        " GPU, the routed experts spread whole over all of them (needs expert_parallel);"
        " serving.max_batch_size, max_batched_tokens and the KV cache are per rank, as vLLM's"
        " are per engine; the ranks step together, an iteration as long as the busiest")
    kv_precision: Literal["bf16", "fp8"] = Field("bf16", description="KV-cache element type")
    gpu_cap_w: float | None = Field(
        None, gt=0, description="power cap of every GPU, W; default the GPU's board power"
        " limit (H100, H200: 700; B200: 1,000); must lie in the profile's range (H100, H200:"
        " 200-700; B200: 200-1,000)")

    @field_validator("tp", mode="before")
    @classmethod
    def _tp_not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # a Literal of ints takes True as 1
            raise ValueError("tp must be one of 1, 2, 4, 8, not a boolean")
        return v


class ServingSpec(Strict):
    """The replica scheduler (vLLM-style continuous batching)."""

    scheduler: str = Field("fcfs", description="scheduling policy (fcfs: vLLM-style first come,"
                           " first served continuous batching)")
    stack: str | None = Field(
        None, description="serving stack whose memory budget applies (non-torch memory, profiled"
        " sampler; the device profile lists them, H100: vllm-0.19, vllm-0.11); default the"
        " profile's (vllm-0.19)")
    max_batch_size: int = Field(256, gt=0, description="max sequences per iteration (max_num_seqs)")
    max_batched_tokens: int = Field(
        8192, gt=0, description="max tokens per iteration (prefill chunk tokens + decodes)")
    chunked_prefill: bool = Field(
        True, description="split prompts into chunks that share iterations with decodes"
        " (Sarathi-Serve); off: a prompt is prefilled whole, in an iteration without decodes")
    chunk_size_tokens: int | None = Field(
        None, gt=0, description="max prefill tokens per iteration; default max_batched_tokens")
    block_size_tokens: int = Field(16, gt=0, description="KV-cache block size (tokens per block)")
    gpu_memory_fraction: float = Field(0.9, gt=0.1, le=1.0,
                                       description="fraction of HBM the server may use")
    runtime_overhead_gib: float | None = Field(
        None, ge=0, description="non-torch memory per GPU (CUDA context, NCCL and custom"
        " all-reduce buffers), GiB; default the serving stack's figure for the TP degree (H100,"
        " vLLM 0.19 start-up logs: 0.24 at TP 1, about 2.1 at TP 2-8)")
    max_model_len: int = Field(32768, gt=0, description="longest sequence (prompt + output), tokens;"
                               " longer requests are dropped; the KV cache must hold one")

    @field_validator("scheduler")
    @classmethod
    def _known(cls, v: str) -> str:
        from simulator.engine.scheduler import SCHEDULERS

        return _in_table(v, SCHEDULERS, "scheduler")


class PoolSpec(Strict):
    """One pool of identical nodes: a model on a GPU type, split into replicas, served alike."""

    name: str = Field(description="pool name (an identifier), used in outputs")
    role: Literal["mixed", "prefill", "decode"] = Field(
        "mixed", description="mixed: serves whole requests (the router's choice); prefill:"
        " computes prompts only, then the request's KV cache moves to a decode pool"
        " (kv_transfer); decode: receives requests from a prefill pool and generates their"
        " tokens (the router never sends it a new request). See docs/disaggregation.md")
    model: str | ModelSpec = Field("Llama-3.1-70B", description="catalog name or inline shape")
    hardware: HardwareSpec = HardwareSpec()
    deployment: DeploymentSpec = DeploymentSpec()
    serving: ServingSpec = ServingSpec()

    _path: str = PrivateAttr(default="")  # field-path prefix of errors ("" or "pools.<i>.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not POOL_NAME_RE.match(v):
            raise ValueError(f"pool name {v!r} is not an identifier (letters, digits, '_' or '-',"
                             " not starting with a digit)")
        return v

    @field_validator("model")
    @classmethod
    def _catalog(cls, v: str | ModelSpec) -> str | ModelSpec:
        return _catalog_model(v)

    def model_shape(self) -> ModelShape:
        return CATALOG[self.model] if isinstance(self.model, str) else self.model.shape()

    def profile(self) -> DeviceProfile:
        return self.hardware.profile()

    @property
    def gpus_per_node(self) -> int:
        return self.hardware.node_gpus

    @property
    def replicas_per_node(self) -> int:
        d = self.deployment
        return d.replicas_per_node or self.gpus_per_node // d.tp

    @property
    def data_parallel_ranks(self) -> int:
        """A replica's data-parallel ranks (attention data parallelism: one per GPU), else 1;
        the serving limits and the KV cache are per rank."""
        d = self.deployment
        return d.tp if d.attention_data_parallel else 1

    def replica_limits(self) -> tuple[int, int, int]:
        """One replica's sequences, batched tokens and prefill tokens per iteration: the
        serving limits (vLLM's, per engine) times its data-parallel ranks."""
        s, r = self.serving, self.data_parallel_ranks
        return (r * s.max_batch_size, r * s.max_batched_tokens,
                r * (s.chunk_size_tokens or s.max_batched_tokens))

    def stack(self):
        """The serving stack of this pool (``serving.stack`` or the profile's default)."""
        return self.profile().stack(self.serving.stack)

    def host(self, facility: "FacilitySpec", gpu_idle_w: float) -> HostPower:
        """This pool's node host model: the facility's figures, else the profile node's."""
        node = self.profile().node
        idle = facility.host_idle_w if facility.host_idle_w is not None else node.host_idle_w
        lf = (facility.host_load_factor if facility.host_load_factor is not None
              else node.host_load_factor)
        return HostPower(idle, lf, self.gpus_per_node, gpu_idle_w, node.rated_power_w)

    @property
    def overhead_gib(self) -> float:
        """Non-torch memory per GPU, GiB (the serving field, else the stack's by TP)."""
        o = self.serving.runtime_overhead_gib
        return o if o is not None else self.stack().non_torch_gib(self.deployment.tp)

    @property
    def gpu_cap_w(self) -> float:
        """Every GPU's static cap, W (the deployment's, else the GPU's board limit)."""
        cap = self.deployment.gpu_cap_w
        return float(cap) if cap is not None else self.profile().gpu.tdp_w

    @property
    def path(self) -> str:
        """Prefix of this pool's field paths in error messages ("" or "pools.<i>.")."""
        return self._path

    def check(self) -> None:
        """Cross-field rules of one pool (ValueError naming the field path)."""
        s, d, at = self.serving, self.deployment, self._path
        if s.max_batched_tokens < s.max_batch_size:
            raise ValueError(f"{at}serving.max_batched_tokens ({s.max_batched_tokens}) must be >="
                             f" serving.max_batch_size ({s.max_batch_size})")
        if not s.chunked_prefill and s.max_batched_tokens < s.max_model_len:
            raise ValueError(f"{at}serving.max_batched_tokens must be >= serving.max_model_len when"
                             " chunked_prefill is off (a whole prompt must fit one iteration)")
        gpn = self.gpus_per_node
        if d.tp > gpn:
            raise ValueError(f"{at}deployment.tp: tp={d.tp} exceeds {gpn} GPUs per node")
        if d.replicas_per_node is not None and d.replicas_per_node * d.tp > gpn:
            raise ValueError(f"{at}deployment: replicas_per_node x tp = {d.replicas_per_node * d.tp}"
                             f" exceeds {gpn} GPUs per node")
        prof = self.profile()
        lo, hi = prof.cap_range_w()
        if d.gpu_cap_w is not None and not lo <= d.gpu_cap_w <= hi:
            raise ValueError(f"{at}deployment.gpu_cap_w: {d.gpu_cap_w:g} W is outside the"
                             f" {prof.name} range {lo:g}-{hi:g} W")
        if self.serving.stack is not None and self.serving.stack not in prof.stacks:
            raise ValueError(f"{at}serving.stack: {prof.name} has no stack {self.serving.stack!r}"
                             f"{did_you_mean(self.serving.stack, prof.stacks)} (has"
                             f" {', '.join(prof.stacks)})")
        for name in ("precision", "kv_precision"):
            p = getattr(d, name)
            if p not in prof.precisions:
                raise ValueError(f"{at}deployment.{name}: {prof.name} has no {p} support"
                                 f" (has {', '.join(prof.precisions)})")
        m = self.model_shape()
        if d.expert_parallel:
            if not m.is_moe:
                raise ValueError(f"{at}deployment.expert_parallel: {m.name} is a dense model (no"
                                 " experts to spread)")
            if m.experts % d.tp:
                raise ValueError(f"{at}deployment.expert_parallel: {m.experts} experts do not"
                                 f" divide over tp={d.tp} GPUs")
        if d.attention_data_parallel:
            if not d.expert_parallel:
                raise ValueError(f"{at}deployment.attention_data_parallel: needs"
                                 " deployment.expert_parallel: true (the ranks share the experts;"
                                 " vLLM --data-parallel-size with --enable-expert-parallel)")
            if d.tp == 1:
                raise ValueError(f"{at}deployment.attention_data_parallel: tp=1 is one rank;"
                                 " give tp the number of data-parallel ranks (GPUs)")
        elif m.heads % d.tp:
            raise ValueError(f"{at}deployment.tp: {m.name}'s {m.heads} attention heads do not"
                             f" divide over tp={d.tp} GPUs")


def _in_table(v: str, table: dict, what: str) -> str:
    """A policy name of one of the engine's tables (checked at load, so sweeps fail early)."""
    if v not in table:
        raise ValueError(f"unknown {what} {v!r}{did_you_mean(v, table)};"
                         f" valid: {', '.join(sorted(table))}")
    return v


def _catalog_model(v: str | ModelSpec) -> str | ModelSpec:
    if isinstance(v, str) and v not in CATALOG:
        raise ValueError(f"unknown model {v!r}{did_you_mean(v, CATALOG)};"
                         f" catalog: {', '.join(CATALOG)}")
    return v


class RouterSpec(Strict):
    """The global router: which replica receives each request."""

    policy: str = Field("least_outstanding", description="round_robin | least_outstanding | jsq_tokens")

    @field_validator("policy")
    @classmethod
    def _known(cls, v: str) -> str:
        from simulator.engine.router import ROUTERS

        return _in_table(v, ROUTERS, "router policy")


class KVTransferSpec(Strict):
    """How a request's KV cache moves from a prefill pool to a decode pool (Splitwise)."""

    link: str = Field("infiniband", description="the link between the pools' GPUs: infiniband"
                      " (400 Gb/s per GPU, an assumption) or nvlink (NVLink 4, fitted to the"
                      " measured NCCL send/recv table: 362 GB/s); simulator/physics/transfer.py")
    gpu_bandwidth_gbit_per_s: float | None = Field(
        None, gt=0, le=1e5, description="bandwidth of one GPU's link, one direction, Gb/s;"
        " default the link's")
    latency_s: float | None = Field(None, ge=0, le=1.0, description="fixed time per transfer,"
                                    " s; default the link's (infiniband 10 us, nvlink 8 us)")
    transfer_power_w: float | None = Field(
        None, ge=0, le=1000, description="power each GPU link adds while a transfer moves, W"
        " (NICs' static power is in the host's idle power); default the link's, an assumption"
        " (infiniband 10, nvlink 0)")
    layerwise_overlap: bool = Field(
        False, description="send each layer's KV while the prompt's next layers compute"
        " (Splitwise): only what the request's prefill time cannot hide adds to its TTFT")
    decode_policy: str = Field("least_loaded", description="which decode replica receives a"
                               " prefilled request: least_loaded (fewest requests) |"
                               " most_free_kv (most free KV-cache tokens)")

    @field_validator("link")
    @classmethod
    def _link(cls, v: str) -> str:
        from simulator.physics.transfer import LINKS

        return _in_table(v, LINKS, "kv_transfer link")

    @field_validator("decode_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        from simulator.engine.disagg import DECODE_POLICIES

        return _in_table(v, DECODE_POLICIES, "decode policy")

    def link_model(self):
        """The :class:`~simulator.physics.transfer.Link` with this section's overrides."""
        from dataclasses import replace

        from simulator.physics.transfer import GBIT, LINKS

        link = LINKS[self.link]
        if self.gpu_bandwidth_gbit_per_s is not None:
            link = replace(link, gpu_bandwidth_bytes_per_s=self.gpu_bandwidth_gbit_per_s * GBIT)
        if self.latency_s is not None:
            link = replace(link, latency_s=self.latency_s)
        if self.transfer_power_w is not None:
            link = replace(link, transfer_power_w=self.transfer_power_w)
        return link


def check_disaggregation(sc: "Scenario") -> None:
    """A disaggregated fleet must be able to serve: prefill pools need a decode pool (and the
    reverse), a kv_transfer section goes with them, and the KV cache moved from a prefill pool
    must mean the same on every decode pool (one model, one KV precision)."""
    pools = sc.pool_specs()
    prefill = [p for p in pools if p.role == "prefill"]
    decode = [p for p in pools if p.role == "decode"]
    if prefill and not decode:
        raise ValueError(f"{prefill[0].path}role: pool {prefill[0].name!r} is a prefill pool but"
                         " no pool has role decode (its requests could never be finished)")
    if decode and not prefill:
        raise ValueError(f"{decode[0].path}role: pool {decode[0].name!r} is a decode pool but no"
                         " pool has role prefill (it would never receive a request)")
    if not prefill and sc.kv_transfer is not None:
        raise ValueError("kv_transfer: no pool has role prefill (the section describes the move"
                         " from a prefill pool to a decode pool); remove it or give pools roles")
    if not prefill:
        return
    ref = prefill[0]
    for p in prefill[1:] + decode:
        if p.model_shape() != ref.model_shape():
            raise ValueError(f"{p.path}model: {p.model_shape().name} differs from the prefill pool"
                             f" {ref.name!r}'s {ref.model_shape().name} (the KV cache moves"
                             " between them)")
        if p.deployment.kv_precision != ref.deployment.kv_precision:
            raise ValueError(f"{p.path}deployment.kv_precision: {p.deployment.kv_precision}"
                             f" differs from the prefill pool {ref.name!r}'s"
                             f" {ref.deployment.kv_precision} (the KV cache moves between them)")


class FacilitySpec(Strict):
    """Host and facility overheads beyond the GPUs (uncertain: see README for ranges)."""

    pue: float = Field(1.2, ge=1.0, le=3.0, description="power usage effectiveness (facility/IT)")
    host_idle_w: float | None = Field(
        None, ge=0, le=1e5, description="host power of a node whose GPUs idle, W (CPUs, DRAM, NICs,"
        " switches, fans, conversion losses); default the device profile's node (DGX H100,"
        " H200 and B200: 1,000,"
        " an estimate from component figures)")
    host_load_factor: float | None = Field(
        None, ge=0, le=2, description="extra host power per watt of GPU power above the GPUs'"
        " idle power, W/W (fans, conversion losses and CPUs follow GPU load); default the"
        " profile's (DGX H100 and H200: 0.35, from the ~8.4 kW measured node peak; DGX B200: 0.39,"
        " the same fraction of its 14.3 kW rating at full GPU load, assumed); a node never exceeds"
        " its rating")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "host_active_w" in data:
            raise ValueError("host_active_w was replaced by host_load_factor (host W per W of GPU"
                             " power above idle; DGX H100 default 0.35): remove host_active_w")
        return data


class SimulationSpec(Strict):
    """How long to simulate, what to ignore, which seed."""

    duration_s: float | None = Field(None, gt=0, le=1e9, description="stop arrivals after this"
                                     " time, s")
    requests: int | None = Field(None, gt=0, description="stop after this many arrivals")
    warmup_s: float = Field(0.0, ge=0, le=1e9, description="exclude requests arriving before"
                            " this, s")
    warmup_requests: int = Field(0, ge=0, description="exclude the first N requests")
    drain: bool = Field(True, description="after the last arrival, run until every request ends")
    seed: int = Field(0, ge=0, description="root seed of every random stream")
    calibration: str | None = Field(
        None, description="calibration file for every pool that does not name its own"
        " (hardware.calibration); default the device profile's")
    engine: Literal["coalesced", "stepped"] = Field(
        "coalesced", description="coalesced: jump over decode iterations in closed form;"
        " stepped: one event per iteration (reference, slow)")

    @model_validator(mode="after")
    def _stop(self) -> "SimulationSpec":
        if self.duration_s is None and self.requests is None:
            raise ValueError("give duration_s or requests (or both)")
        return self

    # a warm-up that covers the whole run would leave nothing to measure
    @field_validator("warmup_requests")
    @classmethod
    def _warm_requests(cls, v: int, info: ValidationInfo) -> int:
        n = info.data.get("requests")
        if n is not None and v >= n:
            raise ValueError(f"the warm-up excludes every one of the {n} requests"
                             " (simulation.requests); nothing would be measured")
        return v

    @field_validator("warmup_s")
    @classmethod
    def _warm_time(cls, v: float, info: ValidationInfo) -> float:
        d = info.data.get("duration_s")
        if d is not None and v >= d:
            raise ValueError(f"the warm-up covers the whole run (duration_s = {d:g} s);"
                             " nothing would be measured")
        return v


def check_measured(sim: SimulationSpec) -> None:
    """A run must leave requests to measure after its warm-up (else every figure is n/a)."""
    if sim.requests is not None and sim.warmup_requests >= sim.requests:
        raise ValueError(
            f"simulation.warmup_requests: {sim.warmup_requests} warm-up requests leave none of"
            f" the {sim.requests} requests (simulation.requests) to measure; make"
            " warmup_requests smaller than requests")
    if sim.duration_s is not None and sim.requests is None and sim.warmup_s >= sim.duration_s:
        raise ValueError(
            f"simulation.warmup_s: a {sim.warmup_s:g} s warm-up leaves nothing of the"
            f" {sim.duration_s:g} s run (simulation.duration_s) to measure; make warmup_s"
            " shorter than duration_s")


class Scenario(Strict):
    """A complete simulation: model, fleet, policies, workload, facility, run control."""

    name: str = Field("scenario", description="label used in outputs")
    model: str | ModelSpec = Field("Llama-3.1-70B", description="catalog name or inline shape")
    hardware: HardwareSpec = HardwareSpec()
    deployment: DeploymentSpec = DeploymentSpec()
    serving: ServingSpec = ServingSpec()
    pools: list[PoolSpec] | None = Field(
        None, description="pools of the fleet (e.g. H100 and B200 nodes behind one router);"
        " each starts from the top-level model, hardware, deployment and serving sections and"
        " overrides the fields it gives. Null: those sections are the fleet's one pool")
    router: RouterSpec = RouterSpec()
    kv_transfer: KVTransferSpec | None = Field(
        None, description="prefill/decode disaggregation: how the KV cache moves from a pool"
        " of role prefill to one of role decode (default, when pools have those roles: the"
        " section's defaults)")
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    facility: FacilitySpec = FacilitySpec()
    power: PowerSpec = Field(default_factory=PowerSpec, description="GPU caps, row budgets, capping controller")
    simulation: SimulationSpec = Field(default_factory=lambda: SimulationSpec(requests=1000))
    projection: ProjectionSpec | None = Field(
        None, description="fleet-day projection (`fleetsim project`; see docs/projection.md);"
        " ignored by `fleetsim run`")
    cost: CostSpec | None = Field(
        None, description="prices of hardware and electricity (optional; every price is a"
        " user input): adds $/day, $ per million output tokens and $ per 1,000 queries by"
        " class to summaries")

    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))
    _file: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        """Every pool starts from the top-level sections (field by field)."""
        if not isinstance(data, dict) or not isinstance(data.get("pools"), list):
            return data
        pools = []
        for p in data["pools"]:
            if isinstance(p, dict):
                p = dict(p)
                for sec in POOL_SECTIONS:
                    top = data.get(sec)
                    if sec not in p:
                        if top is not None:
                            p[sec] = top
                    elif isinstance(top, dict) and isinstance(p[sec], dict):
                        p[sec] = {**top, **p[sec]}
            pools.append(p)
        return {**data, "pools": pools}

    @field_validator("model")
    @classmethod
    def _catalog(cls, v: str | ModelSpec) -> str | ModelSpec:
        return _catalog_model(v)

    @field_validator("pools")
    @classmethod
    def _pools(cls, v: list[PoolSpec] | None) -> list[PoolSpec] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("pools is empty; give at least one pool or leave pools out")
        seen: set[str] = set()
        for p in v:
            if p.name in seen:
                raise ValueError(f"two pools are named {p.name!r}")
            seen.add(p.name)
        return v

    @model_validator(mode="after")
    def _check(self) -> "Scenario":
        for pool in self.pool_specs():
            pool.check()
        check_disaggregation(self)
        check_power(self)
        check_projection(self)
        check_measured(self.simulation)
        return self

    # ---------------------------------------------------------------- derived
    def pool_specs(self) -> list[PoolSpec]:
        """The fleet's pools in order (node and replica indexes count through them)."""
        if self.pools is None:
            one = PoolSpec(name="default", model=self.model, hardware=self.hardware,
                           deployment=self.deployment, serving=self.serving)
            return [one]
        for i, p in enumerate(self.pools):
            p._path = f"pools.{i}."
        return list(self.pools)

    def model_shape(self) -> ModelShape:
        """The first pool's model (the model of a one-pool fleet)."""
        return self.pool_specs()[0].model_shape()

    @property
    def disaggregated(self) -> bool:
        """Some pool computes prompts only (role prefill) and hands its requests on."""
        return any(p.role == "prefill" for p in self.pool_specs())

    def transfer_spec(self) -> KVTransferSpec:
        """The kv_transfer section, or its defaults."""
        return self.kv_transfer if self.kv_transfer is not None else KVTransferSpec()

    @property
    def nodes(self) -> int:
        """Nodes of the whole fleet."""
        return sum(p.deployment.nodes for p in self.pool_specs())

    @property
    def replicas(self) -> int:
        """Replicas of the whole fleet."""
        return sum(p.deployment.nodes * p.replicas_per_node for p in self.pool_specs())

    @property
    def base_dir(self) -> Path:
        """Folder against which the scenario's relative paths resolve."""
        return self._base_dir

    @property
    def file(self) -> str | None:
        """The file the scenario came from (for error messages), if any."""
        return self._file

    def with_origin(self, file: str | None, base_dir: str | Path | None = None) -> "Scenario":
        """Set where the scenario came from (file for messages, folder for relative paths)."""
        self._file = file
        if base_dir is not None:
            self._base_dir = Path(base_dir)
        return self

    def resolve(self, path: str | Path) -> Path:
        """A path from the scenario, resolved against its folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    def derive(self, **changes: Any) -> "Scenario":
        """A validated copy with whole sections replaced (typed values: sections or fields),
        keeping the origin. ``sc.derive(deployment=replace(sc.deployment, nodes=4))``."""
        out = type(self).model_validate({**dict(self), **changes})
        return out.with_origin(self._file, self._base_dir)
