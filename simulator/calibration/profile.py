"""Profiler: per-op timings in the fitter's CSV schema, and GPU power during representative shapes.

``fleetsim profile --device cuda --model Llama-3.1-8B --out calibration/data/profiles/x.csv``
runs on an H100 with torch: every op of one transformer layer (Vidur's op set: ``emb``,
``input_layernorm``, ``attn_pre_proj``, ``attn_rope``, ``attn_post_proj``,
``post_attention_layernorm``, ``mlp_up_proj``, ``mlp_act``, ``mlp_down_proj``, ``add``) on the
per-GPU shard of each TP degree, for token counts 1..4096, each timed with CUDA events
(warm-up, then ``repeats`` timed runs; min/max/mean/median/std in ms, Vidur's columns). It then
runs a prefill-like and several decode-like GEMM loops for about two seconds each while a
thread reads the GPU's power through NVML, and writes ``<out>_power.csv``.

Telemetry is read-only: the profiler calls only NVML *query* functions (power usage, energy
counter, driver version, name); it never sets power limits, clocks, persistence or any other
GPU setting.

``--device cpu --tiny`` runs the same ops on tiny shapes with wall-clock timers in seconds
(the CI smoke test); with ``--backend numpy`` (or when torch is missing) it needs only numpy.
Each file records the date, device, driver, CUDA and torch versions. Profiles measured on an
H100 go into ``calibration/data/profiles/`` where they outrank the Vidur tables (see
:func:`simulator.calibration.sources.merge_op_sources`); profiles from other devices are
refused there.
"""

from __future__ import annotations

import datetime as _dt
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from simulator.catalog import CATALOG, ModelShape
from simulator.errors import FleetsimError

VIDUR_OP_ORDER = ["emb", "input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj",
                  "post_attention_layernorm", "mlp_up_proj", "mlp_act", "mlp_down_proj", "add"]
FULL_TOKENS = sorted({1, 2, 4, 8, *range(16, 1025, 16), *range(1024, 2049, 64), *range(2048, 4097, 256)})
TINY_TOKENS = [1, 4, 16, 64]
TINY_SHAPE = ModelShape("tiny", 2, 64, 4, 2, 128, 256)


class ProfileError(FleetsimError):
    """The profiler cannot run as asked (missing torch/CUDA, unknown model)."""


@dataclass
class ProfileConfig:
    device: str = "cuda"
    tiny: bool = False
    model: str | None = None
    tps: tuple[int, ...] | None = None
    out: str = "profile.csv"
    repeats: int | None = None
    backend: str = "auto"       # auto | torch | numpy (CPU only)
    power: bool = True
    tokens: tuple[int, ...] | None = None


# ------------------------------------------------------------------ backends
class _NumpyOps:
    """Reference implementation on numpy (float32; numpy has no bfloat16)."""

    name = "numpy"
    dtype = "float32"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def tensor(self, *shape):
        return self.rng.standard_normal(shape, dtype=np.float32)

    def index(self, n, hi):
        return self.rng.integers(0, hi, size=n)

    def emb(self, table, idx):
        return table[idx]

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * w

    def matmul(self, x, w):
        return x @ w

    def rope(self, q, cos, sin):
        h = q.shape[-1] // 2
        a, b = q[..., :h], q[..., h:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    def act(self, gu, gated):
        if gated:
            h = gu.shape[-1] // 2
            g = gu[:, :h]
            return g / (1.0 + np.exp(-g)) * gu[:, h:]
        return 0.5 * gu * (1.0 + np.tanh(0.7978845608 * (gu + 0.044715 * gu ** 3)))

    def add(self, a, b):
        return a + b

    def timer(self) -> Callable[[Callable[[], Any]], float]:
        def t(fn):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
        return t

    def sync(self):
        pass


class _TorchOps(_NumpyOps):
    """torch on CPU (float32) or CUDA (bfloat16, timed with CUDA events)."""

    def __init__(self, device: str, seed: int = 0):
        import torch  # lazy: torch is an optional extra ("profile")

        self.torch = torch
        self.device = device
        self.name = "torch"
        self.tdtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.dtype = "bfloat16" if device == "cuda" else "float32"
        self.gen = torch.Generator(device="cpu").manual_seed(seed)

    def tensor(self, *shape):
        t = self.torch.randn(*shape, generator=self.gen, dtype=self.torch.float32)
        return t.to(device=self.device, dtype=self.tdtype)

    def index(self, n, hi):
        return self.torch.randint(0, hi, (n,), generator=self.gen).to(self.device)

    def emb(self, table, idx):
        return self.torch.nn.functional.embedding(idx, table)

    def rmsnorm(self, x, w):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * self.torch.rsqrt(var + 1e-6)).to(x.dtype) * w

    def rope(self, q, cos, sin):
        h = q.shape[-1] // 2
        a, b = q[..., :h], q[..., h:]
        return self.torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)

    def act(self, gu, gated):
        F = self.torch.nn.functional
        if gated:
            h = gu.shape[-1] // 2
            return F.silu(gu[:, :h]) * gu[:, h:]
        return F.gelu(gu, approximate="tanh")

    def timer(self):
        torch = self.torch
        if self.device != "cuda":
            return super().timer()

        def t(fn):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)  # ms
        return t

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def _backend(cfg: ProfileConfig):
    if cfg.device == "cuda":
        try:
            import torch
        except ImportError:
            raise ProfileError("torch is not installed: pip install -e '.[profile]'") from None
        if not torch.cuda.is_available():
            raise ProfileError("--device cuda but no CUDA GPU is visible (use --device cpu --tiny)")
        return _TorchOps("cuda")
    if cfg.backend == "numpy":
        return _NumpyOps()
    try:
        import torch  # noqa: F401
        return _TorchOps("cpu") if cfg.backend in ("auto", "torch") else _NumpyOps()
    except ImportError:
        if cfg.backend == "torch":
            raise ProfileError("--backend torch but torch is not installed") from None
        return _NumpyOps()


# ------------------------------------------------------------------ metadata
def _nvml():
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - no driver: no telemetry
        return None


def metadata(cfg: ProfileConfig, ops) -> dict[str, str]:
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "device": "cpu", "driver": "n/a", "cuda": "n/a",
            "torch": "n/a", "backend": f"{ops.name}/{ops.dtype}"}
    if ops.name == "torch":
        torch = ops.torch
        meta["torch"] = torch.__version__
        meta["cuda"] = str(torch.version.cuda or "n/a")
        if cfg.device == "cuda":
            meta["device"] = torch.cuda.get_device_name(0)
    else:
        meta["torch"] = f"n/a (numpy {np.__version__})"
    if cfg.device == "cuda":
        nv = _nvml()
        if nv is not None:
            try:
                v = nv.nvmlSystemGetDriverVersion()
                meta["driver"] = v.decode() if isinstance(v, bytes) else str(v)
            except Exception:  # noqa: BLE001
                pass
    return meta


# ------------------------------------------------------------------ per-op timing
def _shard(s: ModelShape, tp: int) -> dict[str, int]:
    kv = max(s.kv_heads // tp, 1)
    return {"heads": s.heads // tp, "kv": kv, "hd": s.head_dim, "d": s.hidden_size,
            "f": s.ffn_size // tp, "vocab": s.vocab_size // tp, "q": s.heads // tp * s.head_dim}


def _time_op(timer, fn, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    return [timer(fn) for _ in range(repeats)]


def profile_ops(s: ModelShape, tp: int, tokens, ops, repeats: int, warmup: int,
                tick: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """One row per token count: Vidur's ``time_stats.<op>.{min,max,mean,median,std}`` (ms)."""
    sh = _shard(s, tp)
    d, f, hd = sh["d"], sh["f"], sh["hd"]
    n_qkv = (sh["heads"] + 2 * sh["kv"]) * hd
    up_n = (2 if s.gated_mlp else 1) * f
    W = {"emb": ops.tensor(sh["vocab"], d), "norm": ops.tensor(d), "qkv": ops.tensor(d, n_qkv),
         "o": ops.tensor(sh["q"], d), "up": ops.tensor(d, up_n), "down": ops.tensor(f, d)}
    timer = ops.timer()
    rows = []
    for n in tokens:
        x = ops.tensor(n, d)
        idx = ops.index(n, sh["vocab"])
        attn = ops.tensor(n, sh["q"])
        q = ops.tensor(n, sh["heads"] + sh["kv"], hd)
        cos, sin = ops.tensor(n, 1, hd // 2), ops.tensor(n, 1, hd // 2)
        gu = ops.tensor(n, up_n)
        h = ops.tensor(n, f)
        fns = {
            "emb": lambda: ops.emb(W["emb"], idx),
            "input_layernorm": lambda: ops.rmsnorm(x, W["norm"]),
            "attn_pre_proj": lambda: ops.matmul(x, W["qkv"]),
            "attn_rope": lambda: ops.rope(q, cos, sin),
            "attn_post_proj": lambda: ops.matmul(attn, W["o"]),
            "post_attention_layernorm": lambda: ops.rmsnorm(x, W["norm"]),
            "mlp_up_proj": lambda: ops.matmul(x, W["up"]),
            "mlp_act": lambda: ops.act(gu, s.gated_mlp),
            "mlp_down_proj": lambda: ops.matmul(h, W["down"]),
            "add": lambda: ops.add(x, x),
        }
        row: dict[str, Any] = {}
        for name in VIDUR_OP_ORDER:
            ts = _time_op(timer, fns[name], warmup, repeats)
            row[f"time_stats.{name}.min"] = min(ts)
            row[f"time_stats.{name}.max"] = max(ts)
            row[f"time_stats.{name}.mean"] = statistics.fmean(ts)
            row[f"time_stats.{name}.median"] = statistics.median(ts)
            row[f"time_stats.{name}.std"] = statistics.pstdev(ts)
        row.update({"n_head": s.heads, "n_kv_head": s.kv_heads, "n_embd": s.hidden_size,
                    "n_expanded_embd": s.ffn_size, "vocab_size": s.vocab_size,
                    "use_gated_mlp": s.gated_mlp, "num_tokens": int(n),
                    "num_tensor_parallel_workers": int(tp), "head_dim": s.head_dim})
        rows.append(row)
        if tick:
            tick()
    return rows


# ------------------------------------------------------------------ power (NVML, read-only)
class _PowerSampler:
    """Reads NVML power (mW) every ``period_s`` in a thread. Query functions only."""

    def __init__(self, nv, index: int = 0, period_s: float = 0.02):
        self.nv, self.h = nv, nv.nvmlDeviceGetHandleByIndex(index)
        self.period_s, self.samples = period_s, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self.nv.nvmlDeviceGetPowerUsage(self.h) / 1000.0)
            except Exception:  # noqa: BLE001
                pass
            time.sleep(self.period_s)

    def energy_mj(self) -> float | None:
        try:
            return float(self.nv.nvmlDeviceGetTotalEnergyConsumption(self.h))
        except Exception:  # noqa: BLE001
            return None

    def __enter__(self):
        self.e0 = self.energy_mj()
        self.t0 = time.perf_counter()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.t1 = time.perf_counter()
        self.e1 = self.energy_mj()


def profile_power(s: ModelShape, tp: int, ops, seconds: float = 2.0) -> list[dict[str, Any]]:
    """Per-GPU power while looping one layer's GEMMs at prefill-like and decode-like sizes."""
    nv = _nvml()
    if nv is None or ops.name != "torch" or ops.device != "cuda":
        return []
    sh = _shard(s, tp)
    d, f = sh["d"], sh["f"]
    up_n = (2 if s.gated_mlp else 1) * f
    n_qkv = (sh["heads"] + 2 * sh["kv"]) * sh["hd"]
    Ws = [(d, n_qkv), (sh["q"], d), (d, up_n), (f, d)]
    # several layers' worth of distinct weights so decode streams HBM, not L2
    layers = max(1, int(2e9 // (2 * sum(k * n for k, n in Ws))))
    weights = [[ops.tensor(k, n) for k, n in Ws] for _ in range(min(layers, 8))]
    rows = []
    for phase, m in [("prefill", 4096), ("prefill", 2048), ("decode", 1), ("decode", 16),
                     ("decode", 64), ("decode", 256)]:
        xs = {k: ops.tensor(m, k) for k in {k for k, _ in Ws}}

        def step():
            for ws in weights:
                for (k, _n), w in zip(Ws, ws):
                    ops.matmul(xs[k], w)
        for _ in range(3):
            step()
        ops.sync()
        iters = 0
        with _PowerSampler(nv) as ps:
            t_end = time.perf_counter() + seconds
            while time.perf_counter() < t_end:
                step()
                iters += 1
                if iters % 8 == 0:
                    ops.sync()
            ops.sync()
        dur = ps.t1 - ps.t0
        flops = iters * len(weights) * sum(2 * m * k * n for k, n in Ws)
        nbytes = iters * len(weights) * sum(2 * (k * n + m * (k + n)) for k, n in Ws)
        e = (ps.e1 - ps.e0) / 1000.0 if ps.e0 is not None and ps.e1 is not None else float("nan")
        rows.append({"phase": phase, "num_tokens": m, "num_tensor_parallel_workers": tp,
                     "duration_s": dur, "power_w_mean": float(np.mean(ps.samples)) if ps.samples else float("nan"),
                     "power_w_max": float(np.max(ps.samples)) if ps.samples else float("nan"),
                     "energy_j": e, "flops_per_s": flops / dur, "bytes_per_s": nbytes / dur,
                     "samples": len(ps.samples)})
    return rows


# ------------------------------------------------------------------ entry point
def run_profile(cfg: ProfileConfig, progress: bool = False) -> list[Path]:
    if cfg.device == "cuda" and cfg.tiny is False and cfg.backend == "numpy":
        raise ProfileError("--backend numpy is CPU only")
    ops = _backend(cfg)
    if cfg.tiny:
        s, label = TINY_SHAPE, "tiny"
        tps = cfg.tps or (1, 2)
        tokens = list(cfg.tokens or TINY_TOKENS)
        repeats, warmup = cfg.repeats or 5, 1
    else:
        label = cfg.model or "Llama-3.1-8B"
        if label not in CATALOG:
            raise ProfileError(f"unknown model {label!r}; catalog: {', '.join(CATALOG)}")
        s = CATALOG[label]
        tps = cfg.tps or (1, 2, 4, 8)
        tokens = list(cfg.tokens or FULL_TOKENS)
        repeats, warmup = cfg.repeats or (20 if cfg.device == "cuda" else 3), 3
    meta = metadata(cfg, ops)
    bar = None
    tick = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tps) * len(tokens), desc="profile", leave=False)
        tick = lambda: bar.update(1)  # noqa: E731
    rows = []
    for tp in tps:
        rows += profile_ops(s, tp, tokens, ops, repeats, warmup, tick)
    if bar is not None:
        bar.close()
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    for k in ("model", "device", "date", "driver", "cuda", "torch", "backend"):
        df[k] = label if k == "model" else meta[k]
    df.to_csv(out, index=False)
    written = [out]
    if cfg.power and cfg.device == "cuda":
        prow = []
        for tp in tps:
            prow += profile_power(s, tp, ops)
        if prow:
            p = pd.DataFrame(prow)
            for k in ("device", "date", "driver", "cuda", "torch"):
                p[k] = meta[k]
            p["model"] = label
            pp = out.with_name(out.stem + "_power.csv")
            p.to_csv(pp, index=False)
            written.append(pp)
    return written
