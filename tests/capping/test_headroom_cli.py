"""``fleetsim headroom``: the planner's headline from the command line, and its bad input."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from simulator.cli import main
from tests.conftest import small


def _write(tmp_path, **over):
    p = tmp_path / "sc.yaml"
    p.write_text(yaml.safe_dump(small(**over)))
    return p


def test_headroom_reports_nodes_within_impact(tmp_path):
    # one node's budget at nameplate (10.2 kW): the node runs far below it, so adding nodes is
    # limited by the budget, and every size the command accepts has latency within the impact
    sc = _write(tmp_path, workload__rate_per_s=10.0, power__row_budget_w=10200.0,
                simulation__requests=150, simulation__warmup_requests=15)
    out = tmp_path / "h.json"
    r = CliRunner().invoke(main, ["headroom", str(sc), "--max-impact", "0.2", "--max-extra", "2",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["nodes_at_nameplate"] == 1
    assert res["points"][0]["nodes"] == 1
    for p in res["points"]:
        assert p["ok"] == (p["worst_p99_ratio"] <= 1.2)
    best = res["max_nodes_within_impact"]
    assert best is None or best == max(p["nodes"] for p in res["points"] if p["ok"])
    assert "covers 1 nodes at nameplate" in r.output


def test_headroom_without_budget_is_one_line_error(tmp_path):
    sc = _write(tmp_path)
    r = CliRunner().invoke(main, ["headroom", str(sc)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "power.row_budget_w" in lines[0] and "Traceback" not in r.output
