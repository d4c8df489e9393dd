"""Projection outputs of issue 17: `fleetsim plot` keeps the projection's 24-hour chart (hour
23-24, MW, P5-P95 band), the one-screen summary shows peak power and the worst draw's SLO
attainment honestly, the progress bar gets a total."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.collections import PolyCollection

from simulator.charts import plots
from simulator.cli import main
from simulator.projection.cli import format_projection, slo_line
from simulator.projection.output import write_projection
from tests.projection.conftest import tiny, tiny_projection  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def proj_dir(tiny_projection, tmp_path_factory):
    out = tmp_path_factory.mktemp("proj") / "day"
    write_projection(tiny_projection, out)
    return out


def test_plot_on_a_projection_keeps_its_24h_chart(proj_dir):
    before = {p.name: p.read_bytes() for p in (proj_dir / "charts").iterdir()}
    r = CliRunner().invoke(main, ["plot", str(proj_dir)], catch_exceptions=False)
    assert r.exit_code == 0 and "drew facility_power_24h" in r.output, r.output
    after = {p.name: p.read_bytes() for p in (proj_dir / "charts").iterdir()}
    assert after["facility_power_24h.png"] == before["facility_power_24h.png"]
    assert after["facility_power_24h.svg"] == before["facility_power_24h.svg"]


def test_24h_chart_keeps_hour_23_in_mw_with_band():
    ts = pd.DataFrame({"t_s": [h * 3600.0 for h in range(24)],
                       "facility_power_w": [25e6] * 23 + [30e6],
                       "facility_power_w_p5": [20e6] * 24, "facility_power_w_p95": [32e6] * 24,
                       "nodes_on": [3000] * 24})
    fig = plots.facility_power_24h(ts, scenario="s")
    ax = fig.axes[0]
    assert "(MW)" in ax.get_ylabel()
    x, y = ax.lines[0].get_data()
    assert x[-1] == 24 and y[-1] == pytest.approx(30)  # hour 23-24 drawn, at 30 MW
    assert ax.get_xlim() == (0, 24)
    assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the P5-P95 band


def test_projection_band_per_hour(tiny_projection):
    h = tiny_projection.hourly
    assert (h["facility_power_w_p5"] <= h["facility_power_w_p95"]).all()
    s = tiny_projection.summary
    assert s["facility_power_w_peak_p95"] == pytest.approx(h["facility_power_w_p95"].max())


def test_summary_shows_peak_power_and_the_worst_draw(tiny_projection):
    s = dict(tiny_projection.summary)
    text = format_projection(s, "out")
    assert "peak " in text and ("kW" in text or "MW" in text)
    assert "e+0" not in text  # engineering units, never 6.75e+03
    s["slo_attainment"] = {"chat": 1.0}
    s["uncertainty"] = {**s["uncertainty"], "draws": 100, "slo_attainment_min_worst": 0.66,
                        "slo_attainment_min_p5": 0.8, "draws_below_slo_target": 7}
    line = slo_line(s)
    assert "chat 100.0 %" in line and "worst draw 66.0 %" in line
    assert "MISSED in 7 of 100 draws" in line


def test_progress_gets_a_total_equal_to_the_simulations():
    from simulator.projection.project import project

    totals, done = [], []
    proj = project(tiny("projection.uncertainty.draws=2"), progress=done.append,
                   on_total=totals.append)
    assert len(totals) == 1 and totals[0] == sum(done) == proj.summary["sampling"]["simulations"]
