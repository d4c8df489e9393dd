"""Speed and scale (issue 18): the replacements of slower algorithms give the old answers, the
records are compact, per-node outputs are one file, and a run neither keeps every request
alive nor imports the charting stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.api import build, simulate
from simulator.engine.recorder import Rows
from simulator.engine.request import LOG_COLUMNS, Request, RequestLog
from simulator.metrics.summary import _select_itl, _sorted_itl
from simulator.scenario.load import scenario_from_dict
from tests.conftest import small

REPO = Path(__file__).resolve().parents[1]


@given(n=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       qs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
@settings(max_examples=150, deadline=None)
def test_itl_selection_equals_sorting_every_iteration(n, seed, qs):
    """The exact selection on closed-form counts (long runs) returns the very latency the sort
    of every iteration returns (short runs), ties and repeated values included."""
    rng = np.random.default_rng(seed)
    a = np.round(rng.uniform(0.005, 0.05, n), int(rng.integers(3, 12)))  # ties at coarse rounding
    b = np.where(rng.random(n) < 0.4, 0.0, rng.uniform(0.0, 1e-4, n))
    k = rng.integers(1, 30, n).astype(float)
    w = rng.integers(1, 9, n).astype(float)
    assert _select_itl(a, b, k, w, qs) == _sorted_itl(a, b, k, w, qs)


def test_rows_keep_floats_exactly_and_survive_views():
    rows = Rows(3)
    rows.buf.extend((1.5, 2, 3.25))
    view = rows.column(0)  # a view of the typed array
    rows.buf.extend((4.0, 5.0, 6.0))
    rows.flush()  # grows although a view is held: the view keeps the old rows
    assert list(view) == [1.5]
    assert list(rows.column(1)) == [2.0, 5.0] and len(rows) == 2
    assert rows.nbytes() == 6 * 8


def test_request_log_gives_columns_in_request_order():
    log = RequestLog()
    for rid in (2, 0, 1):
        r = Request(rid, 0, 0.5 * rid, 100 + rid, 10)
        r.finish_s = 10.0 + rid
        log.add(r)
    cols = log.columns()
    assert list(cols["request_id"]) == [0, 1, 2] and list(cols["input_tokens"]) == [100, 101, 102]
    assert cols["finish_s"].tolist() == [10.0, 11.0, 12.0]
    assert set(cols) == set(LOG_COLUMNS) and cols["input_tokens"].dtype == np.int64
    assert log.nbytes() == 3 * len(LOG_COLUMNS) * 8 or log.rows.buf  # flushed or buffered


def test_a_run_does_not_keep_its_finished_requests():
    """Requests live while in flight; once they end, only their row in the log remains (the
    replicas' preemption order drops them too)."""
    import gc

    sim = build(scenario_from_dict(small(deployment__tp=8, simulation__requests=2000)))
    before = sum(isinstance(o, Request) for o in gc.get_objects())
    run = sim.run()
    gc.collect()
    alive = sum(isinstance(o, Request) for o in gc.get_objects()) - before
    assert len(run.requests) == 2000 and alive < 200


def test_per_node_timelines_are_one_file(tmp_path):
    from simulator.output import write_run

    res = simulate(scenario_from_dict(small(deployment__nodes=3, deployment__tp=8)))
    write_run(res, tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out" / "power").iterdir())
    assert files == ["nodes.parquet"]
    tl = pd.read_parquet(tmp_path / "out" / "power" / "nodes.parquet")
    assert sorted(tl["node"].unique()) == [0, 1, 2]
    for node in range(3):
        mine = tl[tl["node"] == node].drop(columns="node").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, res.ledger.node_timeline(node))
    req = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    pd.testing.assert_frame_equal(req, res.requests)


def test_run_without_requests_writes_no_request_table(tmp_path):
    from simulator.output import write_run

    res = simulate(scenario_from_dict(small()))
    write_run(res, tmp_path / "out", requests=False)
    assert not (tmp_path / "out" / "requests.parquet").exists()
    assert (tmp_path / "out" / "summary.json").exists()


def test_fleetsim_run_imports_neither_pandas_nor_the_charts(tmp_path):
    """`fleetsim run` starts fast: the charting stack, pandas and scipy stay unimported."""
    sc = tmp_path / "s.yaml"
    sc.write_text("model: Llama-3.1-8B\ndeployment: {tp: 2}\nworkload: {rate_per_s: 5.0}\n"
                  "simulation: {requests: 50}\n")
    code = ("import sys\nfrom simulator.cli import main\n"
            f"sys.argv = ['fleetsim', 'run', {str(sc)!r}, '-o', {str(tmp_path / 'o')!r},"
            " '--quiet']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "bad = [m for m in ('pandas', 'matplotlib', 'scipy', 'jinja2') if m in sys.modules]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("model", ["Llama-3.1-70B", "Llama-3.1-8B", "Qwen3-30B-A3B",
                                   "DeepSeek-V2-Lite", "gpt-oss-20b", "Mixtral-8x7B",
                                   "Qwen3-30B-A3B dp", "DeepSeek-V2-Lite dp", "gpt-oss-20b dp"])
@given(p_tok=st.integers(0, 4096), chunks=st.integers(1, 4), prefix=st.integers(0, 8000),
       n=st.integers(0, 256), ctx_per=st.integers(1, 16000))
@settings(max_examples=60, deadline=None)
def test_mixed_iteration_base_plus_decode_line_is_the_iteration_cost(model, p_tok, chunks,
                                                                     prefix, n, ctx_per):
    """The engine prices a mixed iteration as its cost at zero decode context plus the decode
    line times the context (IterationModel.mixed_base): the same as IterationModel.cost on the
    whole shape, for dense, mixture-of-experts, latent and sliding-window attention models
    (" dp": under attention data parallelism over 8 ranks)."""
    from simulator.catalog import CATALOG
    from simulator.devices import load_profile
    from simulator.physics.iteration import IterationModel
    from simulator.physics.shapes import IterationShape

    prof = load_profile("H100")
    name, _, dp = model.partition(" ")
    shape_m = CATALOG[name]
    im = IterationModel.build(shape_m, 8, "bf16", "bf16", prof.calibration(), prof.gpu,
                              prof.dvfs(), expert_parallel=bool(dp), attention_data_parallel=bool(dp))
    seqs = min(chunks, p_tok) if p_tok else 0
    c = p_tok / max(seqs, 1)
    pairs = float(seqs * (c * (prefix / max(seqs, 1)) + c * (c + 1) / 2.0)) if seqs else 0.0
    if n == 0 and p_tok == 0:
        n = 1
    ctx = n * ctx_per
    full = im.cost(IterationShape(p_tok, pairs, prefix if seqs else 0, seqs, n + seqs, n, ctx),
                   1e9)  # no cap
    t0, e0 = im.mixed_base(p_tok, pairs, prefix if seqs else 0, seqs, n + seqs, n)
    if n:
        span = im.decode_span(n, 1e9)
        t0, e0 = t0 + span.t1_s * ctx, e0 + span.e1_j * ctx
    assert t0 == pytest.approx(full.time_s, rel=1e-12)
    assert e0 == pytest.approx(full.energy_j, rel=1e-12)
