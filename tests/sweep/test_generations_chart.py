"""The generations chart: a projection sweep over hardware.gpu (small and fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "projection" / "tiny.yaml"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    from simulator.sweep import build_sweep, run_sweep
    from simulator.sweep.spec import parse_sweep_section

    out = tmp_path_factory.mktemp("gen")
    spec = parse_sweep_section({"command": "project", "grid": {"hardware.gpu": ["H100", "H200", "B200"]}},
                               str(TINY))
    sw = build_sweep(str(TINY), ["projection.uncertainty.draws=2", "projection.fleet.nodes=auto"], spec)
    run_sweep(sw, out, workers=1, progress=False)
    return out


def test_generations_chart_is_drawn_from_a_gpu_sweep(sweep_dir, tmp_path):
    from simulator.charts.draw import generations_frame, load_results, plot_all

    r = load_results(sweep_dir)
    made, skipped = plot_all(r, tmp_path, formats=("png",))
    assert "generations" in {c.name for c in made}, skipped
    df = generations_frame(r)
    assert list(df["gpu"]) == ["H100", "H200", "B200"]
    assert (df["nodes"] > 0).all() and (df["gwh_p5"] <= df["gwh"]).all() and (df["gwh"] <= df["gwh_p95"]).all()
    # the same load: the B200 fleet needs fewer nodes, and less GPU energy per output token
    g = df.set_index("gpu")
    h, h2, b = g.loc["H100"], g.loc["H200"], g.loc["B200"]
    assert b["nodes"] < h["nodes"] and b["j_per_token"] < h["j_per_token"]
    assert h2["nodes"] <= h["nodes"]  # the H100's die with more bandwidth and memory


def test_generations_chart_skips_other_sweeps(sweep_dir, tmp_path):
    from simulator.charts.draw import load_results, plot_all

    r = load_results(sweep_dir)
    r.table["hardware.gpu"] = "H100"  # nothing varies: no comparison to draw
    _, skipped = plot_all(r, tmp_path, formats=("png",))
    assert dict(skipped)["generations"].startswith("needs a projection sweep over hardware.gpu")
