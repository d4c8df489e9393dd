"""The memory plan against vLLM's own start-up figures, and by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulator.calibration.checks import KV_TOLERANCE, memory_checks
from simulator.catalog import CATALOG, ModelShape
from simulator.devices import load_profile
from simulator.physics.hardware import GIB
from simulator.physics.layers import weight_bytes_per_gpu
from simulator.physics.memory import kv_bytes_per_token, plan_memory

ROOT = Path(__file__).resolve().parents[1]
TABLE = memory_checks(ROOT / "calibration" / "checks" / "vllm_memory.csv")
H100 = load_profile("H100")


@pytest.mark.parametrize("row", list(TABLE[TABLE["role"] == "check"].itertuples(index=False)),
                         ids=lambda r: f"{r.row}-{r.model}-tp{r.tp}")
def test_kv_capacity_within_5_percent_of_vllm(row):
    assert abs(row.kv_error) <= KV_TOLERANCE, (row.row, row.kv_gib_vllm, row.kv_gib_sim)


def test_at_least_six_configurations_are_checked():
    checks = TABLE[(TABLE["role"] == "check") & TABLE["kv_error"].notna()]
    assert len({(r.model, r.tp, r.precision, r.kv_precision) for r in checks.itertuples()}) >= 6


@pytest.mark.parametrize("row", list(TABLE.itertuples(index=False)), ids=lambda r: r.row)
def test_weights_per_gpu_within_3_percent_of_vllm(row):
    if "multimodal" in row.note:  # the vision encoder's weights are outside the text model
        assert row.weights_gib_sim < row.weights_gib_vllm
        return
    if row.weights_gib_vllm != row.weights_gib_vllm:  # not in the log
        return
    # MXFP4 experts are padded by whichever kernel vLLM picks: a looser bound, stated in the row
    tol = 0.05 if "MXFP4" in row.note else 0.03
    assert abs(row.weights_error) <= tol, (row.row, row.weights_gib_vllm, row.weights_gib_sim)


def test_validation_page_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "validation_page.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, "regenerate with: python scripts/validation_page.py"


def test_weights_by_layer_type_hand_computed():
    """A toy model: every GEMM's bytes in its precision, KV heads replicated beyond kv_heads."""
    m = ModelShape("toy", layers=4, hidden_size=64, heads=8, kv_heads=2, ffn_size=128,
                   vocab_size=1000, fp8_bf16_gemms=("qkv", "o"), fp8_bf16_edge_layers=1)
    # tp 4: q 2 heads, kv max(2/4, 1) = 1 head each (replicated), head_dim 8
    qkv = 64 * (2 + 2 * 1) * 8
    o = 16 * 64
    mlp = 64 * 2 * 32 + 32 * 64
    emb = 1000 / 4 * 64 * 2
    bf16 = 4 * (qkv + o + mlp) * 2 + emb * 2
    assert weight_bytes_per_gpu(m, 4, "bf16") == pytest.approx(bf16)
    # fp8: qkv and o stay BF16 everywhere, the MLP of the first and last layer too
    fp8 = 4 * (qkv + o) * 2 + 2 * mlp * 2 + 2 * mlp * 1 + emb * 2
    assert weight_bytes_per_gpu(m, 4, "fp8") == pytest.approx(fp8)
    assert kv_bytes_per_token(m, 4, "bf16") == 2 * 4 * 1 * 8 * 2


def test_plan_is_what_vllm_subtracts():
    m = CATALOG["Llama-3.1-8B"]
    stack = H100.stack("vllm-0.19")
    plan = plan_memory(m, 1, "bf16", "bf16", 0.95, 8192, 1024, 16, stack.non_torch_gib(1),
                       stack.sampler_bytes_per_logit, H100.gpu)
    assert plan.usable_bytes == pytest.approx(0.95 * 79.22 * GIB, rel=1e-3)
    assert plan.kv_bytes == pytest.approx(plan.usable_bytes - plan.weight_bytes
                                          - plan.activation_bytes - plan.overhead_bytes)
    # the sampler pass dominates at 1,024 sequences: 16 B x 1024 x 128,256
    assert plan.activation_bytes == pytest.approx(16 * 1024 * 128256)
    assert plan.kv_tokens == plan.kv_blocks * 16
    assert plan.kv_blocks == int(plan.kv_bytes // (16 * plan.kv_bytes_per_token))


def test_405b_fp8_keeps_attention_in_bf16():
    m = CATALOG["Llama-3.1-405B"]
    meta = weight_bytes_per_gpu(m, 8, "fp8") / GIB
    dynamic = weight_bytes_per_gpu(CATALOG["Llama-3.1-405B-FP8-dynamic"], 8, "fp8") / GIB
    assert meta == pytest.approx(57.75, rel=0.03)  # vLLM issue 6746
    assert dynamic == pytest.approx(48, rel=0.03)  # every linear layer in FP8
