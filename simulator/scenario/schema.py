"""The scenario file, as typed and validated objects (pydantic, strict).

Every field has a type, a unit in its name or description, a default and a range; unknown
keys are errors. ``docs/scenario-reference.md`` is generated from this module
(``fleetsim reference``), so the reference cannot drift from the code.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from simulator.capping.spec import PowerSpec
from simulator.catalog import CATALOG, ModelShape
from simulator.errors import did_you_mean
from simulator.projection.spec import ProjectionSpec
from simulator.workload.spec import WorkloadSpec


class Strict(BaseModel):
    """Base: unknown keys are errors, floats must be finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


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

    @model_validator(mode="after")
    def _heads(self) -> "ModelSpec":
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.head_dim == 0 and self.hidden_size % self.heads:
            raise ValueError("hidden_size must be a multiple of heads (or give head_dim)")
        return self

    def shape(self) -> ModelShape:
        return ModelShape(self.name, self.layers, self.hidden_size, self.heads, self.kv_heads,
                          self.ffn_size, self.vocab_size, self.gated_mlp, self.head_dim)


class HardwareSpec(Strict):
    """The GPU and node type (one type is supported: DGX-class H100 SXM5 80GB nodes)."""

    gpu: Literal["H100-SXM5-80GB"] = Field("H100-SXM5-80GB", description="GPU type")
    gpus_per_node: Literal[8] = Field(8, description="GPUs per node")


class DeploymentSpec(Strict):
    """How many nodes, and how each node is split into tensor-parallel replicas."""

    nodes: int = Field(1, gt=0, description="nodes in the fleet")
    tp: Literal[1, 2, 4, 8] = Field(8, description="tensor-parallel degree (GPUs per replica)")
    replicas_per_node: int | None = Field(
        None, gt=0, description="replicas per node; default gpus_per_node / tp (all GPUs used)")
    precision: Literal["bf16", "fp8"] = Field("bf16", description="weight/GEMM precision")
    kv_precision: Literal["bf16", "fp8"] = Field("bf16", description="KV-cache element type")
    gpu_cap_w: float = Field(700.0, ge=200.0, le=700.0,
                             description="power cap of every GPU, W (H100: 200-700)")


class ServingSpec(Strict):
    """The replica scheduler (vLLM-style continuous batching)."""

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
    runtime_overhead_gib: float = Field(
        2.0, ge=0, description="CUDA context, NCCL buffers, CUDA graphs per GPU, GiB (estimate"
        " read from vLLM start-up logs; not measured here)")
    max_model_len: int = Field(32768, gt=0, description="longest sequence (prompt + output), tokens;"
                               " longer requests are dropped; the KV cache must hold one")


class RouterSpec(Strict):
    """The global router: which replica receives each request."""

    policy: str = Field("least_outstanding", description="round_robin | least_outstanding | jsq_tokens")

    @field_validator("policy")
    @classmethod
    def _known(cls, v: str) -> str:
        from simulator.engine.router import ROUTERS

        if v not in ROUTERS:
            raise ValueError(f"unknown router policy {v!r}{did_you_mean(v, ROUTERS)};"
                             f" valid: {', '.join(sorted(ROUTERS))}")
        return v


class FacilitySpec(Strict):
    """Host and facility overheads beyond the GPUs (uncertain: see README for ranges)."""

    pue: float = Field(1.2, ge=1.0, le=3.0, description="power usage effectiveness (facility/IT)")
    host_idle_w: float = Field(
        1200.0, ge=0, description="node power excluding GPUs when idle, W (CPUs, memory, NICs,"
        " fans, PSU losses); DGX H100 estimate, range 800-2000")
    host_active_w: float = Field(
        1500.0, ge=0, description="extra host power when all GPUs are busy, W (fans and"
        " conversion losses scale with GPU load); range 800-2500")


class SimulationSpec(Strict):
    """How long to simulate, what to ignore, which seed."""

    duration_s: float | None = Field(None, gt=0, description="stop arrivals after this time, s")
    requests: int | None = Field(None, gt=0, description="stop after this many arrivals")
    warmup_s: float = Field(0.0, ge=0, description="exclude requests arriving before this, s")
    warmup_requests: int = Field(0, ge=0, description="exclude the first N requests")
    drain: bool = Field(True, description="after the last arrival, run until every request ends")
    seed: int = Field(0, ge=0, description="root seed of every random stream")
    calibration: str | None = Field(
        None, description="calibration file; default calibration/h100.yaml")
    engine: Literal["coalesced", "stepped"] = Field(
        "coalesced", description="coalesced: jump over decode iterations in closed form;"
        " stepped: one event per iteration (reference, slow)")

    @model_validator(mode="after")
    def _stop(self) -> "SimulationSpec":
        if self.duration_s is None and self.requests is None:
            raise ValueError("give duration_s or requests (or both)")
        return self


class Scenario(Strict):
    """A complete simulation: model, fleet, policies, workload, facility, run control."""

    name: str = Field("scenario", description="label used in outputs")
    model: str | ModelSpec = Field("Llama-3.1-70B", description="catalog name or inline shape")
    hardware: HardwareSpec = HardwareSpec()
    deployment: DeploymentSpec = DeploymentSpec()
    serving: ServingSpec = ServingSpec()
    router: RouterSpec = RouterSpec()
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    facility: FacilitySpec = FacilitySpec()
    power: PowerSpec = Field(default_factory=PowerSpec, description="GPU caps, row budgets, capping controller")
    simulation: SimulationSpec = Field(default_factory=lambda: SimulationSpec(requests=1000))
    projection: ProjectionSpec | None = Field(
        None, description="fleet-day projection (`fleetsim project`; see docs/projection.md);"
        " ignored by `fleetsim run`")

    _base_dir: Path = PrivateAttr(default_factory=lambda: Path("."))
    _file: str | None = PrivateAttr(default=None)

    @field_validator("model")
    @classmethod
    def _catalog(cls, v: str | ModelSpec) -> str | ModelSpec:
        if isinstance(v, str) and v not in CATALOG:
            raise ValueError(f"unknown model {v!r}{did_you_mean(v, CATALOG)};"
                             f" catalog: {', '.join(CATALOG)}")
        return v

    @model_validator(mode="after")
    def _serving(self) -> "Scenario":
        s = self.serving
        if s.max_batched_tokens < s.max_batch_size:
            raise ValueError(f"serving.max_batched_tokens ({s.max_batched_tokens}) must be >="
                             f" serving.max_batch_size ({s.max_batch_size})")
        if not s.chunked_prefill and s.max_batched_tokens < s.max_model_len:
            raise ValueError("serving.max_batched_tokens must be >= serving.max_model_len when"
                             " chunked_prefill is off (a whole prompt must fit one iteration)")
        return self

    @model_validator(mode="after")
    def _fits_node(self) -> "Scenario":
        d = self.deployment
        if d.replicas_per_node is not None and d.replicas_per_node * d.tp > self.hardware.gpus_per_node:
            raise ValueError(f"deployment: replicas_per_node x tp = {d.replicas_per_node * d.tp}"
                             f" exceeds {self.hardware.gpus_per_node} GPUs per node")
        return self

    @model_validator(mode="after")
    def _power(self) -> "Scenario":
        from simulator.capping.spec import check_power

        check_power(self)
        return self

    @model_validator(mode="after")
    def _projection(self) -> "Scenario":
        from simulator.projection.spec import check_projection

        check_projection(self)
        return self

    def model_shape(self) -> ModelShape:
        return CATALOG[self.model] if isinstance(self.model, str) else self.model.shape()

    @property
    def replicas_per_node(self) -> int:
        d = self.deployment
        return d.replicas_per_node or self.hardware.gpus_per_node // d.tp
