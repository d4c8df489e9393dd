"""Results identity across a code change: every bundled scenario and a set of variants, run
with the code on ``PYTHONPATH`` (or this checkout), their summaries and per-request digests
written to a JSON file, or compared with one written before.

    PYTHONPATH=/path/to/old/checkout python scripts/results_identity.py --write before.json
    python scripts/results_identity.py --compare before.json        # exit 1 on a difference
    python scripts/results_identity.py --compare before.json --projections  # + small projections

Two numbers agree when ``|a - b| <= rtol * max(|a|, |b|) + atol`` (``--rtol``, default 1e-9;
``--atol`` 1e-12); strings, booleans and integers must be equal, NaN equals NaN. The digest of
a run's request table is the sum, minimum and maximum of every numeric column and the count
of each state, so a reordering or a changed request shows even where the summary's
quantiles do not. Its output is a list of every field that differs (a key the new code adds
is listed as added, not as a difference), then one line: ``identical: N cases`` or
``DIFFERENT: K of N cases``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHAT = {"input_tokens": {"dist": "fixed", "value": 500},
        "output_tokens": {"dist": "exponential", "median": 300},
        "slo": {"ttft_s": 2.0, "tpot_s": 0.1}}
LONG = {"input_tokens": {"dist": "lognormal", "median": 2000, "sigma": 0.8},
        "output_tokens": {"dist": "exponential", "median": 1500},
        "slo": {"ttft_s": 5.0, "tpot_s": 0.2}}


def small(**over) -> dict:
    """Llama-3.1-8B on one node at TP 2 (4 replicas), Poisson chat (as tests/conftest.py)."""
    d = {"name": "identity", "model": "Llama-3.1-8B", "deployment": {"nodes": 1, "tp": 2},
         "workload": {"arrival": "poisson", "rate_per_s": 20.0,
                      "classes": {"chat": copy.deepcopy(CHAT)}},
         "simulation": {"requests": 1500, "warmup_requests": 150, "seed": 3}}
    for path, value in over.items():
        cur = d
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        if value is None:
            cur.pop(keys[-1], None)
        else:
            cur[keys[-1]] = value
    return d


def variants() -> dict[str, dict]:
    """Scenario dicts that exercise every engine path (routers, schedulers, caps, preemption,
    closed loop, duration runs, pools, several classes, mixtures of experts)."""
    two_classes = {"chat": copy.deepcopy(CHAT), "long": copy.deepcopy(LONG)}
    v = {
        "small": small(),
        "small_stepped": small(simulation__engine="stepped"),
        "least_outstanding_4n": small(deployment__nodes=4, workload__rate_per_s=90.0),
        "jsq_tokens_4n": small(deployment__nodes=4, workload__rate_per_s=90.0,
                               router__policy="jsq_tokens"),
        "round_robin_4n": small(deployment__nodes=4, workload__rate_per_s=90.0,
                                router__policy="round_robin"),
        "no_chunking": small(serving__chunked_prefill=False, serving__max_batched_tokens=32768),
        "small_chunks": small(serving__chunk_size_tokens=128),
        "capped": small(deployment__gpu_cap_w=250.0),
        "capped_stepped": small(deployment__gpu_cap_w=250.0, simulation__engine="stepped"),
        "preemption": small(serving__gpu_memory_fraction=0.22, deployment__tp=1,
                            workload__rate_per_s=40.0, serving__max_model_len=4096),
        "preemption_stepped": small(serving__gpu_memory_fraction=0.22, deployment__tp=1,
                                    workload__rate_per_s=40.0, serving__max_model_len=4096,
                                    simulation__engine="stepped"),
        "closed_loop": small(workload__arrival="closed_loop", workload__clients=48,
                             workload__rate_per_s=None),
        "closed_loop_think": small(workload__arrival="closed_loop", workload__clients=48,
                                   workload__think_time_s=0.5, workload__rate_per_s=None),
        "duration_no_drain": small(simulation={"duration_s": 30.0, "warmup_s": 5.0,
                                               "drain": False, "seed": 2}),
        "duration_drain": small(simulation={"duration_s": 30.0, "warmup_s": 5.0, "seed": 2}),
        "two_classes_gamma": small(workload__classes=two_classes, workload__arrival="gamma",
                                   workload__cv=2.0, workload__rate_per_s=6.0,
                                   workload__mix={"chat": 0.8, "long": "rest"}),
        "too_long_dropped": small(serving__max_model_len=700),
        "diurnal": small(workload__hourly_multipliers=[1.0 + (h % 5) / 4 for h in range(24)],
                         simulation={"duration_s": 7200.0, "warmup_s": 60.0, "seed": 1,
                                     "drain": False},
                         workload__rate_per_s=0.3),
        "pools": {**small(), "pools": [{"name": "small", "deployment": {"nodes": 1}},
                                       {"name": "wide", "deployment": {"nodes": 2, "tp": 4}}]},
        "moe_qwen3_30b": small(model="Qwen3-30B-A3B", deployment={"nodes": 1, "tp": 2},
                               workload__rate_per_s=10.0),
        "default_256_replicas_short": {
            "name": "wide", "model": "Llama-3.1-8B", "deployment": {"nodes": 64, "tp": 2},
            "workload": {"arrival": "poisson", "rate_per_s": 1500.0,
                         "classes": {"chat": copy.deepcopy(CHAT)}},
            "simulation": {"requests": 6000, "warmup_requests": 600, "seed": 9}},
    }
    return v


def digest(res) -> dict:
    """Per-request table digest (column sums, minima, maxima; state counts) and the node
    timelines' energy, rows and peak."""
    import numpy as np

    df = res.requests
    out: dict = {"rows": int(len(df))}
    for col in df.columns:
        s = df[col]
        if str(s.dtype) == "category":
            out[f"count[{col}]"] = {str(k): int(v) for k, v in s.value_counts().sort_index().items()}
            continue
        x = s.to_numpy().astype(float)
        x = x[~np.isnan(x)]
        out[f"sum[{col}]"] = float(x.sum()) if x.size else None
        out[f"min[{col}]"] = float(x.min()) if x.size else None
        out[f"max[{col}]"] = float(x.max()) if x.size else None
    gpu = host = peak = 0.0
    for node in range(res.fleet.nodes):
        tl = res.ledger.node_timeline(node)
        dt = (tl["t_end_s"] - tl["t_start_s"]).to_numpy()
        gpu += float((tl["gpu_power_w"].to_numpy() * dt).sum())
        host += float((tl["host_power_w"].to_numpy() * dt).sum())
        peak = max(peak, float(tl["node_power_w_peak"].max()))
    out["timeline_gpu_j"], out["timeline_host_j"], out["timeline_peak_w"] = gpu, host, peak
    return out


def run_cases(projections: bool) -> dict:
    from simulator.api import simulate
    from simulator.scenario.load import load_scenario, scenario_from_dict

    cases: dict = {}
    files = sorted((ROOT / "scenarios").glob("*.yaml")) + [ROOT / "tests/projection/tiny.yaml"]
    for f in files:
        t0 = time.perf_counter()
        res = simulate(load_scenario(str(f)))
        cases[f"file:{f.relative_to(ROOT)}"] = {"summary": res.summary, "requests": digest(res)}
        print(f"  {f.relative_to(ROOT)}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for name, d in variants().items():
        t0 = time.perf_counter()
        res = simulate(scenario_from_dict(d))
        cases[f"variant:{name}"] = {"summary": res.summary, "requests": digest(res)}
        print(f"  {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if projections:
        from simulator.projection.project import project

        for f, over in [(ROOT / "tests/projection/tiny.yaml", []),
                        (ROOT / "scenarios/1b-chat.yaml", ["projection.uncertainty.draws=3"]),
                        (ROOT / "scenarios/1b-efficient.yaml", ["projection.uncertainty.draws=2"]),
                        (ROOT / "scenarios/azure-mix.yaml", ["projection.uncertainty.draws=2"])]:
            t0 = time.perf_counter()
            p = project(load_scenario(str(f), over), workers=1)
            cases[f"project:{f.relative_to(ROOT)}"] = {
                "summary": p.summary, "hourly": p.hourly.to_dict(orient="list"),
                "draws": p.draws.to_dict(orient="list")}
            print(f"  project {f.relative_to(ROOT)}: {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)
    return json.loads(json.dumps(cases, default=float, allow_nan=True))


ADDED: list[str] = []  # keys the new code adds (new figures: reported, not differences)


def differences(a, b, path: str, rtol: float, atol: float) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in b:
                out.append(f"{path}.{k}: missing after the change")
            elif k not in a:
                ADDED.append(f"{path}.{k}")
            else:
                out += differences(a[k], b[k], f"{path}.{k}", rtol, atol)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items before, {len(b)} after"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, f"{path}[{i}]", rtol, atol)
        return out
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
                and not isinstance(a, bool) and not isinstance(b, bool):
            fa, fb = float(a), float(b)
            if math.isnan(fa) and math.isnan(fb):
                return []
            if fa == fb or abs(fa - fb) <= rtol * max(abs(fa), abs(fb)) + atol:
                return []
            rel = abs(fa - fb) / max(abs(fa), abs(fb), 1e-300)
            return [f"{path}: {fa!r} before, {fb!r} after (relative {rel:.3g})"]
    if a != b:
        return [f"{path}: {a!r} before, {b!r} after"]
    return []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="FILE", help="write this code's results to FILE")
    g.add_argument("--compare", metavar="FILE", help="compare this code's results with FILE")
    ap.add_argument("--projections", action="store_true", help="also small projections")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--atol", type=float, default=1e-12)
    a = ap.parse_args()
    import simulator

    print(f"simulator from {Path(simulator.__file__).parent}", file=sys.stderr)
    now = run_cases(a.projections)
    if a.write:
        Path(a.write).write_text(json.dumps(now, indent=1, sort_keys=True))
        print(f"wrote {len(now)} cases to {a.write}")
        return 0
    before = json.loads(Path(a.compare).read_text())
    bad = 0
    n = 0
    for case in sorted(now):
        if case not in before:
            print(f"{case}: not in {a.compare} (skipped)")
            continue
        n += 1
        diffs = differences(before[case], now[case], case, a.rtol, a.atol)
        if diffs:
            bad += 1
            for line in diffs[:20]:
                print(line)
            if len(diffs) > 20:
                print(f"{case}: ... {len(diffs) - 20} more")
    for key in ADDED:
        print(f"added (new, not compared): {key}")
    print(f"identical: {n} cases (rtol {a.rtol:g})" if not bad
          else f"DIFFERENT: {bad} of {n} cases (rtol {a.rtol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
