"""End-to-end tests of the command line, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import small

REPO = Path(__file__).resolve().parents[1]

SUMMARY_KEYS = [
    "requests_completed", "requests_dropped", "throughput_requests_per_s",
    "throughput_output_tokens_per_s", "ttft_s_p50", "ttft_s_p99", "tpot_s_p50", "tpot_s_p99",
    "itl_s_p50", "e2e_s_p50", "e2e_s_p99", "slo_attainment", "gpu_power_w_mean",
    "node_power_w_mean", "node_power_w_peak", "energy_gpu_j", "energy_host_j", "energy_it_j",
    "energy_facility_j", "energy_per_query_wh_mean", "energy_per_query_wh_p50",
    "energy_per_output_token_j", "mean_batch_size", "simulated_time_s",
]


def fleetsim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, cwd=cwd or REPO)


def write(tmp_path: Path, data, name="s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def test_run_default_scenario_with_overrides(tmp_path):
    out = tmp_path / "out"
    r = fleetsim("run", "scenarios/default.yaml", "-o", str(out), "--csv",
                 "--set", "simulation.requests=300", "--set", "simulation.warmup_requests=30",
                 "--set", "workload.rate_per_s=4")
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    for k in SUMMARY_KEYS:
        assert k in s, k
    assert s["requests_completed"] == 300
    assert set(s["slo_attainment"]) == {"chat"}
    req = pd.read_parquet(out / "requests.parquet")
    assert len(req) == 300 and (out / "requests.csv").exists()
    tl = pd.read_parquet(out / "power" / "nodes.parquet")
    assert {"node", "t_start_s", "t_end_s", "gpu_power_w", "node_power_w"} <= set(tl.columns)
    assert set(tl["node"]) == {0}
    resolved = yaml.safe_load((out / "scenario.resolved.yaml").read_text())
    assert resolved["workload"]["rate_per_s"] == 4
    assert resolved["serving"]["block_size_tokens"] == 16  # defaults are filled in
    assert "TTFT" in r.stdout


def test_validate_ok():
    r = fleetsim("validate", "scenarios/default.yaml")
    assert r.returncode == 0 and "ok" in r.stdout


def test_reference_lists_every_section():
    r = fleetsim("reference")
    assert r.returncode == 0
    for section in ("deployment", "serving", "workload", "facility", "simulation"):
        assert f"`{section}`" in r.stdout


def _bad(tmp_path, data, *expect, extra=()):
    p = write(tmp_path, data)
    out = tmp_path / "out"
    r = fleetsim("run", str(p), "-o", str(out), *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for e in expect:
        assert e in err, err
    assert not out.exists()
    assert not any(x.name.startswith(".out") for x in tmp_path.iterdir())
    return err


def test_malformed_yaml(tmp_path):
    _bad(tmp_path, "model: [unclosed\n", "s.yaml", "malformed YAML")


def test_unknown_field_did_you_mean(tmp_path):
    d = small()
    d["deployment"]["nodez"] = 2
    _bad(tmp_path, d, "deployment.nodez", "did you mean 'nodes'")


def test_wrong_type(tmp_path):
    d = small()
    d["deployment"]["nodes"] = "many"
    _bad(tmp_path, d, "deployment.nodes")


def test_negative_rate(tmp_path):
    d = small()
    d["workload"]["rate_per_s"] = -3
    _bad(tmp_path, d, "workload.rate_per_s")


def test_model_that_does_not_fit(tmp_path):
    d = small(model="Llama-3.1-405B", deployment__tp=8)
    _bad(tmp_path, d, "deployment", "does not fit")


def test_unknown_model_did_you_mean(tmp_path):
    _bad(tmp_path, small(model="Llama-3.1-70b"), "model", "did you mean 'Llama-3.1-70B'")


def test_bad_override_path(tmp_path):
    p = write(tmp_path, small())
    r = fleetsim("run", str(p), "-o", str(tmp_path / "out"), "--set", "serving.max_batch=3")
    assert r.returncode == 2 and "serving.max_batch" in r.stderr and "max_batch_size" in r.stderr


def test_malformed_trace_row(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.6805900,374,44\n"
                     "2023-11-16 18:15:50.9951690,-5,109\n")
    d = small()
    d["workload"] = {"arrival": "replay", "traces": {"chat": "t.csv"},
                     "classes": d["workload"]["classes"]}
    err = _bad(tmp_path, d, "t.csv", "row 3")
    assert "ContextTokens" in err


def test_missing_scenario_file(tmp_path):
    r = fleetsim("run", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "nope.yaml" in r.stderr and "Traceback" not in r.stderr


def test_scenario_reference_doc_is_current():
    from simulator.scenario.reference import render_reference

    assert (REPO / "docs" / "scenario-reference.md").read_text() == render_reference(), \
        "regenerate with: fleetsim reference -o docs/scenario-reference.md"
