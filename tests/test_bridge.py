"""`fleetsim bridge`: the diff, the groups, the steps that sum exactly to B - A, Shapley."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.bridge.core import (DELETE, Item, apply, diff, group_items, group_of,
                                   sequential_points, shapley_values, subsets)
from simulator.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "projection" / "tiny.yaml"


def test_diff_by_hand():
    a = {"name": "a", "x": 1, "s": {"p": 1.0, "q": [1, 2], "gone": 3}, "m": "M"}
    b = {"name": "b", "x": 1, "s": {"p": 2.0, "q": [1, 2], "new": {"k": 1}}, "m": {"inline": 1}}
    items = diff(a, b)
    assert [(it.path, it.value) for it in items] == [
        ("s.p", 2.0), ("s.gone", DELETE), ("s.new", {"k": 1}), ("m", {"inline": 1})]
    assert apply(a, items) == {**b, "name": "a"}  # the label is never bridged


def test_groups_and_the_class_b_adds():
    assert group_of("deployment.kv_precision") == "KV precision"
    assert group_of("workload.classes.chat.slo.ttft_s") == "SLO"
    assert group_of("workload.classes.chat.output_tokens.median") == "workload mix"
    assert group_of("facility.pue") == "PUE" and group_of("router.policy") == "other"
    a = {"workload": {"classes": {"chat": {"slo": {"ttft_s": 1.0}}}}}
    items = [Item("workload.classes.chat.slo.ttft_s", 2.0), Item("workload.classes.long", {"slo": {}}),
             Item("workload.classes.long.slo.ttft_s", 3.0)]
    g = group_items(a, items)
    # the new class's SLO travels with the class (every subset of groups is a scenario)
    assert [it.path for it in g["SLO"]] == ["workload.classes.chat.slo.ttft_s"]
    assert [it.path for it in g["workload mix"]] == ["workload.classes.long",
                                                     "workload.classes.long.slo.ttft_s"]
    assert list(g) == ["SLO", "workload mix"]  # in bridge order
    steps = sequential_points(g)
    assert [s[0] for s in steps] == ["A", "SLO", "workload mix"] and len(steps[-1][1]) == 3


nested = st.recursive(st.one_of(st.integers(-3, 3), st.sampled_from(["u", "v"]), st.floats(0, 2)),
                      lambda c: st.dictionaries(st.sampled_from("abcd"), c, max_size=3), max_leaves=12)


@given(st.dictionaries(st.sampled_from("abcd"), nested, max_size=4),
       st.dictionaries(st.sampled_from("abcd"), nested, max_size=4))
@settings(max_examples=200, deadline=None)
def test_applying_the_whole_diff_gives_b(a, b):
    assert apply(a, diff(a, b)) == b


def test_shapley_by_hand():
    v = {frozenset(): 0.0, frozenset("x"): 1.0, frozenset("y"): 2.0, frozenset("xy"): 5.0}
    phi = shapley_values(v, ["x", "y"])
    assert phi == {"x": pytest.approx(2.0), "y": pytest.approx(3.0)}


@given(st.lists(st.floats(-10, 10), min_size=8, max_size=8))
@settings(max_examples=50, deadline=None)
def test_shapley_values_add_up(vals):
    names = ["a", "b", "c"]
    v = dict(zip(subsets(names), vals))
    phi = shapley_values(v, names)
    assert math.fsum(phi.values()) == pytest.approx(v[frozenset(names)] - v[frozenset()], abs=1e-9)


def _pair(tmp_path):
    a = yaml.safe_load(TINY.read_text())
    b = yaml.safe_load(TINY.read_text())
    b["deployment"]["kv_precision"] = "fp8"
    b["facility"]["pue"] = 1.4
    b["workload"]["classes"]["long"] = {"input_tokens": {"dist": "fixed", "value": 200},
                                        "output_tokens": {"dist": "exponential", "median": 600},
                                        "slo": {"ttft_s": 1.0, "tpot_s": 0.1}}
    b["workload"]["mix"] = {"chat": 0.8, "long": 0.2}
    pa, pb = tmp_path / "a.yaml", tmp_path / "b.yaml"
    pa.write_text(yaml.safe_dump(a))
    pb.write_text(yaml.safe_dump(b))
    return pa, pb


@pytest.mark.parametrize("shapley", [False, True])
def test_bridge_steps_sum_to_b_minus_a(tmp_path, shapley):
    pa, pb = _pair(tmp_path)
    out = tmp_path / "bridge"
    args = ["bridge", str(pa), str(pb), "-o", str(out), "--workers", "1", "--quiet"]
    r = CliRunner().invoke(main, args + (["--shapley"] if shapley else []), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "bridge.json").read_text())
    assert [s["group"] for s in res["steps"]] == ["KV precision", "workload mix", "PUE"]
    assert math.fsum(s["delta"] for s in res["steps"]) == pytest.approx(res["difference"], abs=1e-12)
    # B's value is B's own nominal projection; the PUE step is exactly the PUE ratio
    proj = tmp_path / "b-proj"
    r = CliRunner().invoke(main, ["project", str(pb), "-o", str(proj), "--quiet", "--no-charts",
                                  "--set", "projection.uncertainty.draws=0"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    b_val = json.loads((proj / "summary.json").read_text())["gwh_per_day_facility_nominal"]
    assert res["value_b"] == pytest.approx(b_val, rel=1e-12)
    if not shapley:
        pue = res["steps"][2]
        assert pue["value"] / (pue["value"] - pue["delta"]) == pytest.approx(1.4 / 1.2, rel=1e-9)
    assert (out / "charts" / "bridge_waterfall.png").exists() and (out / "bridge.md").exists()


def test_bridge_bad_input_is_one_line(tmp_path):
    pa, pb = _pair(tmp_path)
    same = CliRunner().invoke(main, ["bridge", str(pa), str(pa), "-o", str(tmp_path / "o1")])
    assert same.exit_code == 2 and "nothing to bridge" in same.output
    bad = CliRunner().invoke(main, ["bridge", str(pa), str(pb), "-o", str(tmp_path / "o2"),
                                    "--metric", "gwh_per_day_facility_nominl", "--quiet"])
    assert bad.exit_code == 2 and "did you mean" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
