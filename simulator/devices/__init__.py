"""Device profiles: a GPU's datasheet, its node, and its fitted timing, power and DVFS
coefficients, shipped as package data and loaded by name.

A profile is a folder ``simulator/devices/<key>/`` holding ``profile.yaml`` (datasheet and
node figures, names, and the names of the fitted files) and the fitted files themselves
(``calibration.yaml`` from ``fleetsim calibrate``, ``dvfs.yaml`` from the DVFS fit). A scenario
selects one with ``hardware.gpu`` (its name or an alias). Files are read through
:mod:`importlib.resources` when first asked for, never at import, so an installed wheel works
from any directory. Adding a GPU type is adding a folder (``docs/extending.md``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from simulator import yamlio
from simulator.errors import ScenarioError
from simulator.physics.dvfs import DVFSParams
from simulator.physics.hardware import WEIGHT_ONLY, GPUSpec, NodeSpec
from simulator.physics.params import Calibration
from simulator.strict import Strict

PROFILE_FILE = "profile.yaml"


class _GPUFields(Strict):
    hbm_bytes: float = Field(gt=0)
    memory_bytes: float = Field(gt=0)
    hbm_bw_bytes_per_s: float = Field(gt=0)
    peak_flops_per_s: dict[str, float]
    tdp_w: float = Field(gt=0)
    min_cap_w: float = Field(gt=0)
    max_clock_mhz: float = Field(gt=0)
    nvlink_bw_bytes_per_s: float = Field(gt=0)


class _NodeFields(Strict):
    gpus_per_node: int = Field(ge=1)
    rated_power_w: float = Field(gt=0)
    host_idle_w: float = Field(ge=0)
    host_load_factor: float = Field(ge=0)


class _StackFields(Strict):
    non_torch_gib: dict[int, float]
    sampler_bytes_per_logit: float = Field(gt=0)


class _ProfileFile(Strict):
    name: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    gpu: _GPUFields
    node: _NodeFields
    serving_stacks: dict[str, _StackFields]
    default_stack: str
    calibration: str
    dvfs: str


@dataclass(frozen=True)
class ServingStack:
    """What a serving stack (a vLLM version) takes out of a GPU's memory before the KV cache."""

    name: str
    non_torch_by_tp_gib: tuple[tuple[int, float], ...]
    sampler_bytes_per_logit: float

    def non_torch_gib(self, tp: int) -> float:
        """Non-torch memory per GPU at TP degree ``tp`` (an unlisted degree takes the figure of
        the nearest listed one below it, or the smallest listed)."""
        table = dict(self.non_torch_by_tp_gib)
        below = [k for k in table if k <= tp]
        return table[max(below)] if below else table[min(table)]


@dataclass(frozen=True)
class DeviceProfile:
    """A GPU type and its node, with the fitted coefficients of its physics."""

    key: str
    name: str
    aliases: tuple[str, ...]
    description: str
    gpu: GPUSpec
    node: NodeSpec
    calibration_file: str  # inside the profile folder
    dvfs_file: str
    stacks: dict[str, ServingStack] = field(hash=False)
    default_stack: str

    @property
    def precisions(self) -> tuple[str, ...]:
        """GEMM precisions the GPU has a dense peak for, and the weight-only formats it runs
        by dequantizing."""
        return tuple(self.gpu.peak_flops_per_s) + tuple(
            w for w in WEIGHT_ONLY if w not in self.gpu.peak_flops_per_s and self.gpu.supports(w))

    def calibration(self) -> Calibration:
        """The fitted timing and power coefficients (read once)."""
        return _calibration_resource(self.key, self.calibration_file)

    def dvfs(self) -> DVFSParams:
        """The fitted power-cap clock model (read once)."""
        return _dvfs_resource(self.key, self.dvfs_file)

    def fitted_sha(self) -> str:
        """Fingerprint of the profile's fitted files (calibration and DVFS; read once): what a
        recalibration changes though no scenario does."""
        return _fitted_sha(self.key, self.calibration_file, self.dvfs_file)

    def cap_range_w(self) -> tuple[float, float]:
        return self.gpu.min_cap_w, self.gpu.tdp_w

    def stack(self, name: str | None = None) -> ServingStack:
        """A serving stack of this device (default: the profile's default stack)."""
        return self.stacks[name or self.default_stack]


def _folder(key: str):
    return resources.files(__package__).joinpath(key)


def _read_yaml(path: Any, what: str) -> Any:
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ScenarioError(f"cannot read {what}: it is a folder, not a file",
                            file=str(path)) from None
    except OSError as e:
        raise ScenarioError(f"cannot read {what}: {e.strerror or e}", file=str(path)) from None
    return yamlio.loads(yamlio.decode(data, str(path)), str(path))


def _validation_error(e: ValidationError, file: str) -> ScenarioError:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return ScenarioError(err["msg"], file=file, field=loc or None)


@functools.lru_cache(maxsize=None)
def profile_keys() -> tuple[str, ...]:
    """Folders of the shipped profiles."""
    root = resources.files(__package__)
    return tuple(sorted(p.name for p in root.iterdir()
                        if p.is_dir() and p.joinpath(PROFILE_FILE).is_file()))


@functools.lru_cache(maxsize=None)
def _load(key: str) -> DeviceProfile:
    path = _folder(key).joinpath(PROFILE_FILE)
    try:
        f = _ProfileFile.model_validate(_read_yaml(path, "device profile") or {})
    except ValidationError as e:
        raise _validation_error(e, str(path)) from None
    g = f.gpu
    if "bf16" not in g.peak_flops_per_s:
        raise ScenarioError("peak_flops_per_s needs a bf16 entry", file=str(path), field="gpu")
    if g.memory_bytes > g.hbm_bytes:
        raise ScenarioError("memory_bytes (what the driver reports) exceeds hbm_bytes",
                            file=str(path), field="gpu.memory_bytes")
    gpu = GPUSpec(f.name, g.hbm_bytes, g.memory_bytes, g.hbm_bw_bytes_per_s,
                  dict(g.peak_flops_per_s), g.tdp_w, g.min_cap_w, g.max_clock_mhz,
                  g.nvlink_bw_bytes_per_s)
    if f.default_stack not in f.serving_stacks:
        raise ScenarioError(f"default_stack {f.default_stack!r} is not one of serving_stacks",
                            file=str(path), field="default_stack")
    stacks = {name: ServingStack(name, tuple(sorted(st.non_torch_gib.items())),
                                 st.sampler_bytes_per_logit)
              for name, st in f.serving_stacks.items()}
    return DeviceProfile(key, f.name, tuple(f.aliases), f.description, gpu,
                         NodeSpec(f.node.gpus_per_node, f.node.rated_power_w, f.node.host_idle_w,
                                  f.node.host_load_factor), f.calibration, f.dvfs,
                         stacks, f.default_stack)


@functools.lru_cache(maxsize=None)
def names() -> dict[str, str]:
    """Every accepted GPU name and alias -> profile folder."""
    out: dict[str, str] = {}
    for key in profile_keys():
        p = _load(key)
        for n in (p.name, *p.aliases):
            out[n] = key
    return out


def profiles() -> list[DeviceProfile]:
    """Every shipped profile, in folder order."""
    return [_load(k) for k in profile_keys()]


def load_profile(name: str) -> DeviceProfile:
    """The profile of a GPU by name or alias (``KeyError`` with the valid names otherwise)."""
    key = names().get(name)
    if key is None:
        raise KeyError(name)
    return _load(key)


def load_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration file."""
    p = Path(path)
    raw = _read_yaml(p, "calibration file")
    try:
        return Calibration.model_validate(raw or {})
    except ValidationError as e:
        raise _validation_error(e, str(p)) from None


def load_dvfs(path: str | Path) -> DVFSParams:
    """Read a DVFS parameter file (its ``params:`` mapping; every parameter required)."""
    p = Path(path)
    raw = _read_yaml(p, "DVFS file") or {}
    params = raw.get("params") if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        raise ScenarioError("needs a 'params' mapping", file=str(p), field="params")
    try:
        return DVFSParams(**{k: float(v) for k, v in params.items()})
    except (TypeError, ValueError) as e:
        raise ScenarioError(str(e), file=str(p), field="params") from None


@functools.lru_cache(maxsize=None)
def _calibration_resource(key: str, name: str) -> Calibration:
    with resources.as_file(_folder(key).joinpath(name)) as p:
        return load_calibration(p)


def _sha(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _fitted_sha(key: str, *names: str) -> str:
    return _sha(*(_folder(key).joinpath(name).read_bytes() for name in names))


def file_sha(path: str) -> str:
    """Content fingerprint of a coefficient file outside the profiles (read once per version of
    the file; '' when it cannot be read: the run that needs it reports that, in one line)."""
    try:
        st = Path(path).stat()
        return _file_sha(path, st.st_mtime_ns, st.st_size)
    except OSError:
        return ""


@functools.lru_cache(maxsize=64)
def _file_sha(path: str, mtime_ns: int, size: int) -> str:
    return _sha(Path(path).read_bytes())


@functools.lru_cache(maxsize=None)
def _dvfs_resource(key: str, name: str) -> DVFSParams:
    with resources.as_file(_folder(key).joinpath(name)) as p:
        return load_dvfs(p)


def profile_dir(name: str) -> Path:
    """Filesystem folder of a profile (for tools that rewrite its fitted files in a checkout)."""
    p = load_profile(name)
    return Path(str(_folder(p.key)))
