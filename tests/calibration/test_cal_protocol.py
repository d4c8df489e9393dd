"""The ML.ENERGY measurement protocol in the calibration: N requests submitted at once, power in
the benchmark's steady-state window, and the protocol factors that scale the fits' closed form
(simulator/calibration/mlenergy.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simulator.calibration import mlenergy
from simulator.calibration.pipeline import load_all

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "calibration" / "data"


@pytest.fixture(scope="module")
def data():
    d = load_all(DATA)
    return d["mlenergy"], d["conditions"]


def test_benchmark_window_by_hand():
    # 10 requests, 4 at a time: the window opens at the 4th first token (2.0) and closes at
    # the 10 - 4 - 1 = 5th finish (7.0)
    first = np.array([9.0, 0.5, 1.0, 11.0, 1.5, 2.0, 10.0, 12.0, 13.0, 14.0])
    finish = np.array([20.0, 3.0, 4.0, 21.0, 5.0, 6.0, 7.0, 22.0, 23.0, 24.0])
    assert mlenergy.benchmark_window(first, finish, 4) == (2.0, 7.0)
    # too few requests beyond the batch: no window
    assert all(math.isnan(x) for x in mlenergy.benchmark_window(first[:5], finish[:5], 4))
    # the drain would begin before the burst ends: no window
    late = first.copy()
    late[[1, 2, 4, 5]] = 30.0
    assert all(math.isnan(x) for x in mlenergy.benchmark_window(late, finish, 4))


def test_the_request_count_is_the_measured_responses(data):
    ml, _ = data
    for _, r in ml.iloc[::25].iterrows():
        assert mlenergy.responses(r) == int(r.lengths[:, 2].sum())
    assert mlenergy.scenario_dict(ml.iloc[0], data[1])["simulation"]["requests"] == \
        mlenergy.responses(ml.iloc[0])


def test_the_simulated_window_holds_the_measured_batch(data):
    """The benchmark's window opens after the prefill burst, before contexts grow: gpt-oss-20b
    at max_num_seqs 2,048 ran 2,047 sequences on average (measured, never fitted). A renewal
    steady state of the same run holds ~1,600 (its KV cache fills with grown contexts), the
    protocol ~2,000."""
    ml, cond = data
    from simulator.devices import load_profile

    cal = load_profile("H100").calibration()
    run = ml[(ml["model"] == "gpt-oss-20b") & (ml["max_num_seqs"] == 2048)].iloc[0]
    sim = mlenergy.simulate_run(run, cond, cal)
    assert sim["batch"] == pytest.approx(float(run.avg_batch), rel=0.05)
    small = ml[(ml["model"] == "Qwen3-8B") & (ml["task"] == "lm-arena-chat")
               & (ml["max_num_seqs"] == 8)].iloc[0]
    assert mlenergy.simulate_run(small, cond, cal)["batch"] == pytest.approx(8.0, rel=0.02)


def test_a_protocol_factor_divides_the_measurement_it_scales(data):
    """Runs whose ITL is 1.3 x with a protocol factor of 1.3 fit the same constants as the
    runs themselves; without the factor they do not."""
    ml, cond = data
    from simulator.devices import load_profile

    base = load_profile("H100").calibration().timing
    runs = ml[~ml["moe"] & (ml["gpu"] == "H100")].iloc[::6].reset_index(drop=True)
    a = mlenergy.fit_timing(runs, cond, base, max_nfev=15)
    scaled = runs.assign(itl_s=runs["itl_s"] * 1.3, protocol_itl=1.3)
    b = mlenergy.fit_timing(scaled, cond, base, max_nfev=15)
    c = mlenergy.fit_timing(scaled.drop(columns="protocol_itl"), cond, base, max_nfev=15)
    assert b.iteration_fixed_s == pytest.approx(a.iteration_fixed_s, rel=1e-6)
    assert b.per_seq_s == pytest.approx(a.per_seq_s, rel=1e-6)
    assert c.iteration_fixed_s != pytest.approx(a.iteration_fixed_s, rel=0.05)
