"""Scale by sampling, proved: the sampled projection against the same day with every node of a
64-node fleet simulated (``simulator.projection.validate.full_fleet_day``). Daily facility
energy must agree within 1 %, always on (64 nodes every hour) and autoscaled (auto-sized to
about 64 nodes at the peak)."""

from __future__ import annotations

from simulator.projection.project import project
from simulator.projection.validate import full_fleet_day
from tests.projection.conftest import tiny


def test_sampled_day_matches_every_node_simulated_always_on():
    p = project(tiny("projection.fleet.nodes=64", "projection.queries_per_day=3.0e7",
                     "projection.uncertainty.draws=0", "projection.sample.requests=2000",
                     "projection.sample.nodes=2"))
    assert p.summary["nodes_peak"] == 64 and p.summary["sampling"]["levels"] == 3
    c = full_fleet_day(p, requests_per_node=150)
    print(f"\nsampling error {c.relative_error:+.3%} ({c})")
    assert abs(c.relative_error) < 0.01, c


def test_sampled_day_matches_every_node_simulated_autoscaled():
    # the sampled day's bias falls with the sample: with the calibration refitted on the
    # ML.ENERGY protocol (December 2026; 74 nodes at the peak, 65 before) 2,000 sampled
    # requests give +1.08 %, 4,000 give +0.83 % (+0.60 % and +0.47 % before)
    p = project(tiny("projection.fleet.nodes=auto", "projection.queries_per_day=1.9e8",
                     "projection.idle.policy=autoscale", "projection.idle.min_nodes=4",
                     "projection.uncertainty.draws=0", "projection.sample.requests=4000",
                     "projection.fleet.capacity_tolerance=0.1"))
    s = p.summary
    assert 50 <= s["nodes_peak"] <= 80 and s["nodes_min"] < s["nodes_peak"]
    c = full_fleet_day(p, requests_per_node=60)
    assert c.simulations > s["sampling"]["levels"]  # the full day shares nothing
    print(f"\nsampling error {c.relative_error:+.3%} ({c})")
    assert abs(c.relative_error) < 0.01, c
