"""GPU generations (issue 13): the H200 and B200 profiles, what is derived and what is fitted,
the physics they share with the H100, FP4, and bad input naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.catalog import CATALOG
from simulator.devices import load_profile
from simulator.errors import ScenarioError
from simulator.physics.hardware import BYTES_PER_ELEMENT, GIB
from simulator.physics.layers import weight_bytes_per_gpu
from simulator.physics.memory import plan_memory
from simulator.physics.shapes import IterationShape
from simulator.physics.timing import TimingModel
from simulator.scenario.load import scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
H100, H200, B200 = (load_profile(g) for g in ("H100", "H200", "B200"))


# ------------------------------------------------------------------ datasheets and nodes
def test_datasheet_figures_of_the_new_profiles():
    assert (H200.gpu.hbm_bw_bytes_per_s, H200.gpu.tdp_w) == (4.8e12, 700.0)
    assert H200.gpu.peak_flops_per_s == H100.gpu.peak_flops_per_s  # same compute die
    assert (B200.gpu.hbm_bw_bytes_per_s, B200.gpu.tdp_w) == (8.0e12, 1000.0)
    assert B200.gpu.peak_flops_per_s == {"bf16": 2.25e15, "fp8": 4.5e15, "fp4": 9.0e15,
                                         "mxfp4": 9.0e15}
    assert B200.gpu.nvlink_bw_bytes_per_s == 2 * H100.gpu.nvlink_bw_bytes_per_s
    # memory as the CUDA driver reports it (what vLLM budgets against), below the datasheet's
    assert H200.gpu.memory_bytes / GIB == pytest.approx(139.81, abs=0.01)
    assert B200.gpu.memory_bytes / GIB == pytest.approx(178.35, abs=0.01)
    for p in (H100, H200, B200):
        assert p.gpu.memory_bytes < p.gpu.hbm_bytes
        assert p.node.gpus_per_node == 8
    assert (H200.node.rated_power_w, B200.node.rated_power_w) == (10200.0, 14300.0)
    # MXFP4 is weight-only (dequantized to BF16) on Hopper, native on Blackwell
    assert H200.precisions == ("bf16", "fp8", "mxfp4")
    assert B200.precisions == ("bf16", "fp8", "fp4", "mxfp4")
    assert B200.cap_range_w() == (200.0, 1000.0) and H200.cap_range_w() == (200.0, 700.0)


def test_b200_node_at_full_gpu_load_draws_the_measured_dgx_fraction_of_its_rating():
    """Host load factor chosen so 8 x 1,000 W GPUs make the node draw what a DGX H100 was
    measured to draw at full load, 82 % of its rating (hand-computed in profile.yaml)."""
    from simulator.physics.host import HostPower

    idle = B200.calibration().power.idle_w
    h = HostPower(B200.node.host_idle_w, B200.node.host_load_factor, 8, idle, B200.node.rated_power_w)
    node = 8000.0 + h.node_w(8000.0)
    assert node == pytest.approx(1000 + 0.39 * (8000 - 8 * 114) + 8000)
    assert node / 14300 == pytest.approx(8.4 / 10.2, abs=0.01)
    hh = HostPower(H100.node.host_idle_w, H100.node.host_load_factor, 8, 70.0, 10200.0)
    assert (5600 + hh.node_w(5600.0)) / 10200 == pytest.approx(8.4 / 10.2, abs=0.01)


# ------------------------------------------------------------------ derived and fitted
def test_derived_files_are_current():
    out = subprocess.run([sys.executable, "-m", "simulator.calibration.derive", "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_h200_is_the_h100_calibration_and_says_so():
    h, h2 = H100.calibration(), H200.calibration()
    assert h2.timing == h.timing and h2.power == h.power and h2.residuals == h.residuals
    assert "DERIVED" in h2.description and "derived_from" in h2.provenance
    assert H200.dvfs() == H100.dvfs()
    assert "Derived from the H100" in H200.description


def test_b200_per_op_efficiencies_transfer_and_its_stack_and_power_are_fitted():
    h, b = H100.calibration(), B200.calibration()
    assert b.timing.gemm == h.timing.gemm and b.timing.elementwise == h.timing.elementwise
    for tp, f in h.timing.all_reduce.items():  # NCCL per-byte cost halves on NVLink 5
        assert b.timing.all_reduce[tp].alpha_s == f.alpha_s
        assert b.timing.all_reduce[tp].beta_s_per_byte == pytest.approx(f.beta_s_per_byte / 2)
    assert b.timing.iteration_fixed_s != h.timing.iteration_fixed_s  # fitted on B200 runs
    assert b.power.idle_w == 114.0 and b.power.p_busy_w >= b.power.idle_w
    assert b.provenance["generated_by"] == "fleetsim calibrate --gpu B200"
    ml = b.errors["mlenergy"]
    assert ml["runs"] == 40 and ml["saturated_gemm_w"] <= 1000.0 + 1e-6
    assert set(ml["excluded"]) == {"Qwen3-8B gpqa", "Qwen3-14B gpqa"}
    # the B200 DVFS model is the H100's shape at the B200's peak
    d, dh = B200.dvfs(), H100.dvfs()
    assert (d.static_fraction, d.k_dyn, d.mem_clock_sensitivity) == (dh.static_fraction, dh.k_dyn,
                                                                     dh.mem_clock_sensitivity)
    assert d.sustained_flops_per_s / 2.25e15 == pytest.approx(dh.sustained_flops_per_s / 989e12)


# ------------------------------------------------------------------ physics
SHAPES = st.builds(
    lambda pre, dec, ctx, sampled: IterationShape(
        prefill_tokens=pre, prefill_attn_pairs=IterationShape.causal_pairs(pre, 0) if pre else 0,
        prefill_prefix_tokens=0, prefill_seqs=1 if pre else 0, sampled_seqs=sampled + dec,
        decode_seqs=dec, decode_ctx_tokens=dec * ctx),
    st.integers(0, 4096), st.integers(0, 256), st.integers(1, 8000), st.integers(0, 1))


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, tp=st.sampled_from([1, 2, 4, 8]))
def test_h200_is_never_slower_than_h100(shape, tp):
    """Same die, same coefficients, more bandwidth: no iteration takes longer on an H200, and a
    memory-bound one is faster by at most the bandwidth ratio."""
    if shape.prefill_tokens + shape.decode_seqs == 0:
        return
    m = CATALOG["Llama-3.1-70B"]
    cal = H100.calibration().timing
    t1 = TimingModel(m, tp, "fp8", cal, "bf16", H100.gpu).iteration_s(shape)
    t2 = TimingModel(m, tp, "fp8", cal, "bf16", H200.gpu).iteration_s(shape)
    assert t2 <= t1 * (1 + 1e-12)
    assert t2 >= t1 * 3.35 / 4.8 * (1 - 1e-12)


def test_memory_plan_grows_by_exactly_the_extra_usable_memory():
    m = CATALOG["Llama-3.1-405B"]
    args = (m, 8, "fp8", "bf16", 0.9, 8192, 256, 16, 2.2, 16.0)
    plans = {g.name: plan_memory(*args, g.gpu) for g in (H100, H200, B200)}
    a, b = plans[H100.name], plans[H200.name]
    assert b.kv_bytes - a.kv_bytes == pytest.approx(0.9 * (H200.gpu.memory_bytes - H100.gpu.memory_bytes))
    assert plans[B200.name].kv_tokens > b.kv_tokens > a.kv_tokens


def test_fp4_weights_and_flops():
    m = CATALOG["Llama-3.1-70B"]
    assert BYTES_PER_ELEMENT["fp4"] == 0.5625  # NVFP4: 4 bits + an FP8 scale per 16
    w8, w4 = weight_bytes_per_gpu(m, 1, "fp8"), weight_bytes_per_gpu(m, 1, "fp4")
    emb = m.vocab_size * m.hidden_size * 2 * 2.0
    assert (w4 - emb) == pytest.approx(0.5625 * (w8 - emb))
    tm = TimingModel(m, 1, "fp4", B200.calibration().timing, "bf16", B200.gpu)
    k, n = m.hidden_size, m.ffn_size
    w = tm.gemm("up", 4096, k, n, "fp4")
    assert w.flops == pytest.approx(2 * 4096 * k * n * 2.25e15 / 9e15)  # BF16 equivalents
    assert w.hbm_bytes == pytest.approx(k * n * 0.5625 + 4096 * (k + n) * 2)


# ------------------------------------------------------------------ scenarios end to end
def small(gpu: str, **deployment) -> dict:
    return {"model": "Llama-3.1-8B", "hardware": {"gpu": gpu},
            "deployment": {"tp": 1, "replicas_per_node": 1, **deployment},
            "workload": {"rate_per_s": 4.0}, "simulation": {"requests": 60, "seed": 1}}


@pytest.mark.parametrize("gpu", ["H200", "B200"])
def test_scenarios_run_on_the_new_gpus(gpu):
    from simulator.api import simulate

    s = simulate(scenario_from_dict(small(gpu))).summary
    assert s["requests_completed"] == 60
    assert s["memory"]["total_gib"] == pytest.approx(load_profile(gpu).gpu.memory_bytes / GIB)
    assert 0 < s["gpu_power_w_mean"] <= load_profile(gpu).gpu.tdp_w


def test_fp4_runs_on_a_b200_and_a_cap_up_to_1000_w_is_accepted():
    from simulator.api import simulate

    s = simulate(scenario_from_dict(small("B200", precision="fp4", gpu_cap_w=900.0))).summary
    assert s["requests_completed"] == 60


@pytest.mark.parametrize("gpu, deployment, field, words", [
    ("H100", {"precision": "fp4"}, "deployment.precision", "has no fp4 support (has bf16, fp8, mxfp4)"),
    ("H200", {"precision": "fp4"}, "deployment.precision", "H200-SXM-141GB has no fp4"),
    ("B200", {"gpu_cap_w": 1200.0}, "deployment.gpu_cap_w", "outside the B200-SXM-180GB range 200-1000 W"),
    ("H200", {"gpu_cap_w": 800.0}, "deployment.gpu_cap_w", "outside the H200-SXM-141GB range 200-700 W"),
    ("B200", {"gpu_cap_w": 150.0}, "deployment.gpu_cap_w", "range 200-1000 W"),
])
def test_bad_input_names_the_field(gpu, deployment, field, words):
    with pytest.raises(ScenarioError) as e:
        scenario_from_dict(small(gpu, **deployment), file="s.yaml")
    msg = str(e.value)
    assert field in msg and words in msg and "s.yaml" in msg and "\n" not in msg


def test_pool_of_another_gpu_is_checked_against_its_own_range():
    d = small("H100")
    d["pools"] = [{"name": "old"}, {"name": "new", "hardware": {"gpu": "B200"},
                                    "deployment": {"gpu_cap_w": 950.0}}]
    scenario_from_dict(d)  # 950 W is fine on the B200 pool
    d["pools"][0]["deployment"] = {"gpu_cap_w": 950.0}
    with pytest.raises(ScenarioError, match=r"pools\.0\.deployment\.gpu_cap_w: 950 W is outside"
                                            r" the H100-SXM5-80GB range 200-700 W"):
        scenario_from_dict(d)


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_cli_model_that_does_not_fit_the_gpu_exits_2_with_one_line(tmp_path):
    # 405B in BF16 at TP 4 needs ~200 GB per GPU: more than a B200's 178 GiB
    f = tmp_path / "big.yaml"
    f.write_text("model: Llama-3.1-405B\nhardware: {gpu: B200}\ndeployment: {tp: 4}\n"
                 "workload: {rate_per_s: 1.0}\nsimulation: {requests: 10}\n")
    r = _cli("run", str(f), "-o", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in r.stderr
    assert str(f) in line and "deployment" in line and "does not fit B200-SXM-180GB" in line
    assert not (tmp_path / "out").exists()
    # the same model in BF16 at TP 8 fits a B200 (it never fits an H100)
    assert _cli("validate", str(f), "--set", "deployment.tp=8").returncode == 0
    assert _cli("validate", str(f), "--set", "deployment.tp=8", "--set",
                "hardware.gpu=H100").returncode == 2


def test_cli_precision_the_gpu_lacks_exits_2(tmp_path):
    r = _cli("validate", "scenarios/default.yaml", "--set", "deployment.precision=fp4")
    assert r.returncode == 2
    assert "deployment.precision" in r.stderr and "no fp4 support" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert _cli("validate", "scenarios/default.yaml", "--set", "deployment.precision=fp4",
                "--set", "hardware.gpu=B200").returncode == 0
