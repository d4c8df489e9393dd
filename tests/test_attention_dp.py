"""Attention data parallelism for mixtures of experts (vLLM ``--data-parallel-size`` with
``--enable-expert-parallel``): memory per rank, the busiest rank's iteration, the replica's
limits and caches, and the layouts a scenario may not ask for."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from simulator.catalog import CATALOG
from simulator.cli import main
from simulator.devices import load_profile
from simulator.physics.iteration import IterationModel
from simulator.physics.layers import expert_params, weight_bytes_per_gpu
from simulator.physics.memory import kv_bytes_per_token, plan_memory
from simulator.physics.shapes import IterationShape, decode_shape
from simulator.physics.timing import TimingModel

H100 = load_profile("H100")
CAL = H100.calibration()


def _tm(name: str, tp: int, dp: bool, precision: str = "bf16") -> TimingModel:
    return TimingModel(CATALOG[name], tp, precision, CAL.timing, "bf16", H100.gpu,
                       expert_parallel=tp > 1, attention_data_parallel=dp)


def test_weights_per_gpu_are_one_whole_rank_plus_its_share_of_the_experts():
    """Under attention data parallelism a GPU holds everything but the routed experts whole (a
    TP-1 copy) and 1/D of the experts: the TP-1 weights less (D - 1)/D of the experts."""
    m = CATALOG["Qwen3-30B-A3B"]
    experts_b = m.moe_layers * m.experts * expert_params(m, "bf16") * 2  # BF16
    for D in (2, 4, 8):
        dp = weight_bytes_per_gpu(m, D, "bf16", attn_tp=1)
        assert dp == pytest.approx(weight_bytes_per_gpu(m, 1, "bf16") - experts_b * (D - 1) / D,
                                   rel=1e-12)
        assert dp > weight_bytes_per_gpu(m, D, "bf16")  # attention not split: more per GPU


def test_kv_cache_is_per_rank_with_every_head():
    m = CATALOG["Qwen3-235B-A22B"]  # 4 K/V heads: replicated 2x under TP 8, whole per DP rank
    stack = H100.stack(None)
    args = ("fp8", "bf16", 0.9, 8192, 64, 16, stack.non_torch_gib(8), stack.sampler_bytes_per_logit,
            H100.gpu)
    dp = plan_memory(m, 8, *args, attention_data_parallel=True)
    tp = plan_memory(m, 8, *args)
    assert dp.kv_bytes_per_token == kv_bytes_per_token(m, 1, "bf16") == 94 * 2 * 4 * 128 * 2
    assert tp.kv_bytes_per_token == 94 * 2 * 1 * 128 * 2  # one head per GPU
    assert dp.ranks == 8 and tp.ranks == 1
    assert dp.replica_kv_tokens == 8 * dp.kv_tokens and tp.replica_kv_tokens == tp.kv_tokens
    assert dp.kv_blocks == int(dp.kv_bytes // (16 * dp.kv_bytes_per_token))
    g = dp.as_gib()
    assert g["data_parallel_ranks"] == 8 and g["replica_kv_capacity_tokens"] == 8 * g["kv_capacity_tokens"]
    assert "data_parallel_ranks" not in tp.as_gib()


def test_decode_iteration_is_a_tp1_rank_plus_the_shared_experts_and_their_dispatch():
    """A decode-only iteration of n sequences over D ranks costs, per GPU: a TP-1 replica's
    iteration of n / D sequences and 1 / D of the context without its experts, plus the
    experts of all n tokens spread over D GPUs (as under TP + EP), plus one NCCL all-reduce's
    time of the n tokens' activations per MoE layer (all-gather + reduce-scatter)."""
    name, D, n, ctx = "Qwen3-235B-A22B", 8, 64, 64 * 1500
    m = CATALOG[name]
    dp, tp1, ep = _tm(name, D, True), _tm(name, 1, False), _tm(name, D, False)
    w = dp.work(decode_shape(n, ctx))
    rank = tp1.work(IterationShape(sampled_seqs=n / D, decode_seqs=n / D, decode_ctx_tokens=ctx / D))
    fit = CAL.timing.all_reduce[D]
    dispatch = fit.alpha_s + fit.beta_s_per_byte * n * m.hidden_size * 2
    expect = rank.time_s - tp1.experts(n / D).time_s + ep.experts(n).time_s + m.moe_layers * dispatch
    assert w.time_s == pytest.approx(expect, rel=1e-12)
    assert dp.dispatch_combine_s(n) == pytest.approx(dispatch, rel=1e-15)
    # bytes: a rank's dense weights whole, the experts' bytes of the whole batch on one GPU
    assert w.hbm_bytes == pytest.approx(rank.hbm_bytes - tp1.experts(n / D).hbm_bytes
                                        + ep.experts(n).hbm_bytes, rel=1e-12)


def test_decode_line_is_the_iteration():
    """The engine's closed form of decode spans (linear in the replica's total context) is
    the iteration itself, at any context."""
    for name in ("Qwen3-30B-A3B", "DeepSeek-V3", "gpt-oss-120b"):
        prec = "mxfp4" if name.startswith("gpt-oss") else "bf16"
        tm = _tm(name, 4 if name != "DeepSeek-V3" else 8, True, prec)
        for n in (1, 7, 64, 300):
            line = tm.decode_line(n)
            for ctx in (n, n * 900, n * 20000):
                w, lw = tm.work(decode_shape(n, ctx)), line.work(ctx)
                assert lw.time_s == pytest.approx(w.time_s, rel=1e-12)
                assert lw.hbm_bytes == pytest.approx(w.hbm_bytes, rel=1e-12)


def test_each_prefill_chunk_runs_on_a_rank_of_its_own():
    tm = _tm("Qwen3-30B-A3B", 4, True)
    one = tm.rank_share(IterationShape(2000, 2000 * 2001 / 2, 0, 1, 1 + 40, 40, 40 * 500))
    assert (one.prefill_tokens, one.prefill_seqs, one.decode_seqs) == (2000, 1, 10)
    assert one.sampled_seqs == 1 + 10 and one.decode_ctx_tokens == 40 * 500 / 4
    six = tm.rank_share(IterationShape(6000, 6.0, 600, 6, 40, 40, 400))
    # six chunks on four ranks: a rank takes a quarter of them (the busiest, on average)
    assert (six.prefill_tokens, six.prefill_attn_pairs, six.prefill_prefix_tokens) == (1500, 1.5, 150)
    assert six.sampled_seqs == 10  # no chunk finishes its prompt: decodes only
    # a long prompt on one rank takes longer than the same tokens spread over four
    solo = tm.work(IterationShape(8000, 8000 * 8001 / 2, 0, 1, 0, 0, 0))
    spread = tm.work(IterationShape(8000, 4 * 2000 * 2001 / 2, 0, 4, 0, 0, 0))
    assert solo.time_s > 2 * spread.time_s


def test_more_ranks_never_cost_a_gpu_more_at_the_same_per_rank_batch():
    """Work per GPU at a fixed batch per rank: the dense part is the same, the experts' part
    spreads over more GPUs (never more per GPU, for experts that divide)."""
    name = "Qwen3-30B-A3B"
    per_rank = 32
    t = {D: _tm(name, D, True).work(decode_shape(per_rank * D, per_rank * D * 800)) for D in (2, 4, 8)}
    assert t[8].hbm_bytes < t[4].hbm_bytes < t[2].hbm_bytes


def test_only_moe_under_expert_parallelism():
    with pytest.raises(ValueError, match="expert parallelism"):
        TimingModel(CATALOG["Qwen3-30B-A3B"], 2, "bf16", CAL.timing, "bf16", H100.gpu, False, True)
    with pytest.raises(ValueError, match="mixture of experts"):
        TimingModel(CATALOG["Llama-3.1-8B"], 2, "bf16", CAL.timing, "bf16", H100.gpu, True, True)


def _scenario(tmp_path, deployment: dict, model: str = "Qwen3-30B-A3B", name: str = "s.yaml"):
    import yaml

    d = {"name": "dp", "model": model, "deployment": deployment,
         "serving": {"max_batch_size": 32, "max_batched_tokens": 4096, "max_model_len": 8192},
         "workload": {"arrival": "poisson", "rate_per_s": 6.0, "classes": {"chat": {
             "input_tokens": {"dist": "fixed", "value": 400},
             "output_tokens": {"dist": "exponential", "median": 150}}}},
         "simulation": {"requests": 300, "warmup_requests": 30, "seed": 1}}
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


SIX_EXPERTS = {"name": "six-experts", "layers": 8, "hidden_size": 1024, "heads": 16, "kv_heads": 4,
               "ffn_size": 2048, "vocab_size": 32000, "experts": 6, "experts_per_token": 2,
               "expert_ffn_size": 512}


@pytest.mark.parametrize("model, deployment, field, words", [
    ("Qwen3-30B-A3B", {"tp": 2, "attention_data_parallel": True},
     "deployment.attention_data_parallel", "needs deployment.expert_parallel"),
    ("Qwen3-30B-A3B", {"tp": 1, "expert_parallel": True, "attention_data_parallel": True},
     "deployment.attention_data_parallel", "tp=1 is one rank"),
    ("Llama-3.1-8B", {"tp": 2, "expert_parallel": True, "attention_data_parallel": True},
     "deployment.expert_parallel", "dense model"),
    (SIX_EXPERTS, {"tp": 4, "expert_parallel": True, "attention_data_parallel": True},
     "deployment.expert_parallel", "6 experts do not divide over tp=4"),
])
def test_layouts_a_scenario_may_not_ask_for(tmp_path, model, deployment, field, words):
    """One line naming the file, the field and what is wrong; exit 2; nothing written."""
    p = _scenario(tmp_path, deployment, model)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(p), "-o", str(out)])
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in r.stderr
    assert str(p) in line and field in line and words in line, line
    assert not out.exists()


def test_attention_heads_need_not_divide_over_data_parallel_ranks(tmp_path):
    """Under tensor parallelism the heads split over the GPUs; each data-parallel rank holds
    them all, so a head count that does not divide is no obstacle."""
    odd = dict(SIX_EXPERTS, name="twelve-heads", hidden_size=1536, heads=12, kv_heads=4, experts=8)
    ok = _scenario(tmp_path, {"tp": 8, "expert_parallel": True, "attention_data_parallel": True}, odd)
    r = CliRunner().invoke(main, ["validate", str(ok)])
    assert r.exit_code == 0, r.stderr
    no = _scenario(tmp_path, {"tp": 8, "expert_parallel": True}, odd, "no.yaml")
    r = CliRunner().invoke(main, ["validate", str(no)])
    assert r.exit_code == 2 and "12 attention heads do not divide over tp=8" in r.stderr


def test_run_serves_per_rank_limits_and_reports_the_ranks(tmp_path):
    """End to end: the replica admits D x max_batch_size sequences into D per-rank caches,
    and summary.json reports the ranks and both capacities."""
    p = _scenario(tmp_path, {"tp": 4, "expert_parallel": True, "attention_data_parallel": True})
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(p), "-o", str(out), "--quiet"])
    assert r.exit_code == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    mem = s["memory"]
    assert mem["data_parallel_ranks"] == 4 and s["pools"]["default"]["memory"] == mem
    assert s["kv_capacity_tokens_per_replica"] == mem["replica_kv_capacity_tokens"] == 4 * mem["kv_capacity_tokens"]
    assert s["requests_completed"] == 300


def test_engine_limits_are_per_rank(tmp_path):
    from simulator.engine.fleet import build_fleet
    from simulator.scenario.load import load_scenario
    import simpy

    sc = load_scenario(_scenario(tmp_path, {"tp": 4, "expert_parallel": True,
                                            "attention_data_parallel": True}))
    fleet = build_fleet(simpy.Environment(), sc, lambda r: None)
    rep = fleet.replicas[0]
    assert rep.limits.max_batch_size == 4 * 32 and rep.limits.max_batched_tokens == 4 * 4096
    pool = fleet.pools[0]
    assert pool.kv.capacity_tokens == 4 * pool.memory.kv_tokens


def test_iteration_model_built_from_a_scenario_matches_the_timing_model():
    im = IterationModel.build(CATALOG["Qwen3-30B-A3B"], 4, "bf16", "bf16", CAL, H100.gpu,
                              H100.dvfs(), expert_parallel=True, attention_data_parallel=True)
    assert im.timing.ranks == 4
    c = im.cost(decode_shape(64, 64 * 700), 1e9)
    assert c.time_s == pytest.approx(_tm("Qwen3-30B-A3B", 4, True).work(decode_shape(64, 64 * 700)).time_s)


def test_readme_kv_capacities_of_the_layout_example_are_the_memory_plans():
    """The README's DeepSeek-V3 / DGX H200 figures (the sweep-moe-layout example): KV tokens
    per node as eight data-parallel ranks and tensor-parallel, from the memory plan."""
    from pathlib import Path

    from simulator.engine.fleet import plan_pool_memory
    from simulator.scenario.load import load_scenario

    repo = Path(__file__).resolve().parents[1]
    sc = load_scenario(repo / "scenarios" / "sweep-moe-layout.yaml")
    tp = plan_pool_memory(sc.pool_specs()[0])
    dp_sc = load_scenario(repo / "scenarios" / "sweep-moe-layout.yaml",
                          overrides=["deployment.attention_data_parallel=true"])
    dp = plan_pool_memory(dp_sc.pool_specs()[0])
    assert dp.replica_kv_tokens > 4 * tp.replica_kv_tokens  # the latent, once per rank
    readme = " ".join((repo / "README.md").read_text().split())
    assert (f"holds {dp.replica_kv_tokens / 1e6:.1f} million KV tokens per node as eight ranks"
            f" against {tp.replica_kv_tokens / 1e6:.2f} million tensor-parallel") in readme
