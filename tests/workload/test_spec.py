"""Validation of the workload section (pydantic models in simulator.workload.spec)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from simulator.workload.spec import WorkloadSpec

TWO = {"chat": {}, "code": {}}


def _err(data: dict) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as ei:
        WorkloadSpec.model_validate(data)
    e = ei.value.errors()[0]
    return e["loc"], e["msg"]


def test_defaults_one_chat_class():
    w = WorkloadSpec(rate_per_s=1.0)
    assert list(w.classes) == ["chat"]
    chat = w.classes["chat"]
    assert chat.input_tokens.dist == "fixed" and chat.input_tokens.value == 500
    assert chat.output_tokens.dist == "exponential" and chat.output_tokens.median == 300
    assert (chat.slo.ttft_s, chat.slo.tpot_s) == (2.0, 0.2)
    assert w.class_shares() == {"chat": 1.0}


def test_every_field_has_a_description():
    from simulator.workload import spec as m

    models = [m.WorkloadSpec, m.QueryClass, m.SLO, m.FixedLength, m.UniformLength,
              m.ExponentialLength, m.LognormalLength, m.EmpiricalLength]
    for model in models:
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    "data, loc, words",
    [
        ({"rate_per_s": -1}, ("rate_per_s",), "greater than 0"),
        ({"rate_per_s": math.nan}, ("rate_per_s",), "finite"),
        ({"rate_per_s": math.inf}, ("rate_per_s",), "finite"),
        ({}, ("rate_per_s",), "needs rate_per_s"),
        ({"arrival": "gamma"}, ("rate_per_s",), "needs rate_per_s"),
        ({"rate_per_s": 1, "cv": 0}, ("cv",), "greater than or equal to 0.01"),
        ({"rate_per_s": 1, "colour": 1}, ("colour",), "Extra inputs"),
        ({"rate_per_s": 1, "hourly_multipliers": [1.0] * 23}, ("hourly_multipliers",), "exactly 24"),
        ({"rate_per_s": 1, "hourly_multipliers": [1.0] * 23 + [-1]}, ("hourly_multipliers",), "must be in [0,"),
        ({"rate_per_s": 1, "hourly_multipliers": [0.0] * 24}, ("hourly_multipliers",), "all 0"),
        ({"rate_per_s": 1, "hourly_multipliers": [1.0] * 23 + [math.nan]}, ("hourly_multipliers", 23), "finite"),
        ({"rate_per_s": 1, "start_hour": 24}, ("start_hour",), "less than 24"),
        ({"arrival": "closed_loop", "clients": 3, "hourly_multipliers": [1.0] * 24},
         ("hourly_multipliers",), "only to poisson and gamma"),
        ({"arrival": "closed_loop"}, ("clients",), "needs clients"),
        ({"arrival": "closed_loop", "clients": 0}, ("clients",), "greater than 0"),
        ({"arrival": "closed_loop", "clients": 2, "think_time_s": -1}, ("think_time_s",), "greater than or equal"),
        ({"arrival": "replay"}, ("traces",), "needs traces"),
        ({"arrival": "replay", "traces": {"caht": "x.csv"}}, ("traces",), "did you mean 'chat'"),
        ({"arrival": "replay", "traces": {"chat": "x.csv"}, "time_scale": 0}, ("time_scale",), "greater than or equal to 0.000001"),
        ({"arrival": "bursty", "rate_per_s": 1}, ("arrival",), "poisson"),
        ({"rate_per_s": 1, "classes": {}}, ("classes",), "at least one"),
        ({"rate_per_s": 1, "classes": {"9lives": {}}}, ("classes",), "not an identifier"),
    ],
)
def test_rejected(data, loc, words):
    got_loc, msg = _err(data)
    assert got_loc == loc
    assert words in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "length, loc_tail, words",
    [
        ({"dist": "gaussian", "value": 3}, (), "does not match any of the expected tags"),
        ({"dist": "fixed", "value": 0}, ("fixed", "value"), "greater than or equal to 1"),
        ({"dist": "fixed", "value": 5, "max_tokens": 0}, ("fixed", "max_tokens"), "greater than or equal to 1"),
        ({"dist": "fixed", "value": 5, "scale": 2}, ("fixed", "scale"), "Extra inputs"),
        ({"dist": "uniform", "low": 9, "high": 3}, ("uniform",), "low <= high"),
        ({"dist": "exponential"}, ("exponential",), "exactly one of 'median' or 'mean'"),
        ({"dist": "exponential", "median": 3, "mean": 4}, ("exponential",), "exactly one"),
        ({"dist": "exponential", "median": -3}, ("exponential", "median"), "greater than 0"),
        ({"dist": "exponential", "mean": math.nan}, ("exponential", "mean"), "finite"),
        ({"dist": "lognormal", "median": 100, "sigma": -1}, ("lognormal", "sigma"), "greater than or equal to 0"),
        ({"dist": "lognormal", "median": 100}, ("lognormal", "sigma"), "required"),
        ({"dist": "empirical", "trace": "t.csv"}, ("empirical", "column"), "required"),
    ],
)
def test_length_spec_rejected(length, loc_tail, words):
    loc, msg = _err({"rate_per_s": 1, "classes": {"chat": {"output_tokens": length}}})
    assert loc == ("classes", "chat", "output_tokens", *loc_tail)
    assert words in msg


def test_slo_must_be_positive():
    loc, msg = _err({"rate_per_s": 1, "classes": {"chat": {"slo": {"ttft_s": 0}}}})
    assert loc == ("classes", "chat", "slo", "ttft_s") and "greater than 0" in msg


def test_exponential_mean_or_median():
    from simulator.workload.spec import ExponentialLength

    assert ExponentialLength(dist="exponential", mean=100).mean_tokens == 100
    assert ExponentialLength(dist="exponential", median=100).mean_tokens == pytest.approx(100 / math.log(2))


# ---------------------------------------------------------------- mix
def test_mix_required_with_several_classes():
    loc, msg = _err({"rate_per_s": 1, "classes": TWO})
    assert loc == ("mix",) and "need a mix" in msg


def test_mix_rest_and_absent_classes():
    w = WorkloadSpec(rate_per_s=1, classes={**TWO, "rag": {}}, mix={"chat": 0.25, "code": "rest"})
    assert w.class_shares() == {"chat": 0.25, "code": 0.75, "rag": 0.0}
    w = WorkloadSpec(rate_per_s=1, classes=TWO, mix={"chat": 1})
    assert w.class_shares() == {"chat": 1.0, "code": 0.0}


def test_mix_sum_must_be_one():
    loc, msg = _err({"rate_per_s": 1, "classes": TWO, "mix": {"chat": 0.5, "code": 0.4}})
    assert loc == ("mix",)
    assert "mix" in msg and "sum to 0.9" in msg and "must sum to 1" in msg
    # within tolerance is fine
    WorkloadSpec(rate_per_s=1, classes=TWO, mix={"chat": 0.5, "code": 0.5 + 1e-9})


def test_mix_rest_overfull():
    loc, msg = _err({"rate_per_s": 1, "classes": {**TWO, "rag": {}},
                     "mix": {"chat": 0.7, "code": 0.7, "rag": "rest"}})
    assert loc == ("mix",) and "nothing is left" in msg


def test_mix_two_rests():
    loc, msg = _err({"rate_per_s": 1, "classes": TWO, "mix": {"chat": "rest", "code": "rest"}})
    assert "at most one" in msg


def test_mix_unknown_class_did_you_mean():
    loc, msg = _err({"rate_per_s": 1, "classes": TWO, "mix": {"chat": 0.5, "cdoe": 0.5}})
    assert loc == ("mix",)
    assert "'cdoe'" in msg and "did you mean 'code'" in msg


@pytest.mark.parametrize("share", [1.5, -0.1, math.nan, "half", True])
def test_mix_bad_share(share):
    loc, msg = _err({"rate_per_s": 1, "classes": TWO, "mix": {"chat": share, "code": "rest"}})
    assert loc == ("mix", "chat") and "[0, 1]" in msg


def test_replay_does_not_need_mix():
    w = WorkloadSpec(arrival="replay", classes=TWO, traces={"chat": "a.csv", "code": "b.csv"})
    assert w.mix is None
