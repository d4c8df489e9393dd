"""`fleetsim size` and `fleetsim compare`."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from click.testing import CliRunner

from simulator.cli import main
from simulator.projection.size import size
from simulator.sweep.commands import run_command
from tests.projection.conftest import TINY, tiny


def test_size_is_the_smallest_fleet_at_the_searched_capacity():
    s = size(tiny(), rate_per_s=200.0, replications=2)
    cap = s["capacity_queries_per_s_per_node"]
    assert s["nodes"] == math.ceil(200.0 / cap - 1e-9)
    assert s["capacity_ci_low"] <= cap <= s["capacity_ci_high"]
    assert s["nodes_ci_low"] <= s["nodes"] <= s["nodes_ci_high"]
    assert s["slo_attainment_at_size"] >= 0.99  # checked on a stream of its own
    assert s["pools"] == {"default": {"nodes": s["nodes"], "nodes_ci_low": s["nodes_ci_low"],
                                      "nodes_ci_high": s["nodes_ci_high"]}}
    # a daily volume sizes its peak hour (the scenario's projection curve)
    sc = tiny()
    m = sc.projection.hourly_multipliers
    d = size(sc, queries_per_day=2.0e7, replications=1)
    assert d["rate_per_s"] == pytest.approx(2.0e7 * max(m) / sum(m) / 3600)


def test_size_keeps_the_pools_proportions(tmp_path):
    sc = yaml.safe_load(TINY.read_text())
    sc.pop("projection")
    sc["pools"] = [{"name": "big", "deployment": {"nodes": 2}},
                   {"name": "small", "deployment": {"nodes": 1, "tp": 4}}]
    f = tmp_path / "pools.yaml"
    f.write_text(yaml.safe_dump(sc))
    out = tmp_path / "size.json"
    r = CliRunner().invoke(main, ["size", str(f), "--rate", "300", "--replications", "1",
                                  "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert len(r.output.strip().splitlines()) == 1 and "big:" in r.output and "small:" in r.output
    s = json.loads(out.read_text())
    big, small = s["pools"]["big"]["nodes"], s["pools"]["small"]["nodes"]
    assert big == 2 * small and s["nodes"] == big + small


def test_size_needs_one_load(tmp_path):
    r = CliRunner().invoke(main, ["size", str(TINY), "-o", str(tmp_path / "s.json")])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "--rate" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "s.json").exists()


CHAT = {"input_tokens": {"dist": "fixed", "value": 400},
        "output_tokens": {"dist": "exponential", "median": 200},
        "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}


def _run(tmp_path, name, **dep):
    from simulator.api import scenario_from_dict

    sc = scenario_from_dict({"name": name, "model": "Llama-3.1-8B",
                             "deployment": {"nodes": 1, "tp": 2, **dep},
                             "workload": {"arrival": "poisson", "rate_per_s": 10.0,
                                          "classes": {"chat": CHAT}},
                             "simulation": {"requests": 200, "warmup_requests": 20, "seed": 1}})
    run_command(sc, tmp_path / name)
    return tmp_path / name


def test_compare_two_runs(tmp_path):
    a, b = _run(tmp_path, "cap700"), _run(tmp_path, "cap400", gpu_cap_w=400)
    out = tmp_path / "cmp"
    r = CliRunner().invoke(main, ["compare", str(a), str(b), "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "cap400 vs cap700" in r.output and "energy per query" in r.output
    import pandas as pd

    t = pd.read_csv(out / "compare.csv").set_index("key")
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    k = "energy_per_query_wh_mean"
    assert t.loc[k, "cap400 - cap700"] == pytest.approx(sb[k] - sa[k])
    assert t.loc[k, "cap400 vs cap700 %"] == pytest.approx((sb[k] / sa[k] - 1) * 100)
    assert {p.name for p in (out / "charts").iterdir()} >= {
        "energy_per_query_by_class.png", "relative_to_first.svg"}


def test_compare_rejects_mixed_kinds(tmp_path, tiny_projection_dir=None):
    a = _run(tmp_path, "run")
    from simulator.projection.output import write_projection
    from simulator.projection.project import project

    write_projection(project(tiny("projection.uncertainty.draws=0")), tmp_path / "proj", charts=False)
    r = CliRunner().invoke(main, ["compare", str(a), str(tmp_path / "proj")])
    assert r.exit_code == 2 and "cannot compare runs with projections" in r.output
    assert "Traceback" not in r.output
