"""The documented Python API (docs/api.md runs), `fleetsim schema`, Latin-hypercube samples,
engineering units."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from simulator import units
from simulator.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_api_doc_example_runs(tmp_path, monkeypatch):
    text = (REPO / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    ns = {"REPO": REPO}
    for code in blocks:
        exec(compile(code.replace("scenarios/", f"{REPO}/scenarios/"), "docs/api.md", "exec"), ns)


def test_package_exports_the_api():
    import simulator

    for name in ("simulate", "project", "sweep", "size", "load_scenario"):
        assert callable(getattr(simulator, name)), name


@pytest.fixture(scope="module")
def schema():
    r = CliRunner().invoke(main, ["schema"])
    assert r.exit_code == 0
    return json.loads(r.output)


class Yaml12(yaml.SafeLoader):
    """YAML 1.2 floats, as editors read them ('1.0e9' is a number; PyYAML's 1.1 reads a
    string, which the scenario loader then converts)."""


Yaml12.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)$"), list("-+0123456789"))


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_schema_validates_every_bundled_scenario(schema, path):
    jsonschema.validate(yaml.load(path.read_text(), Loader=Yaml12), schema)


def test_schema_rejects_what_the_loader_rejects(schema):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"deployment": {"nodez": 2}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"deployment": {"tp": 3}}, schema)
    assert "cost" in schema["properties"] and "sweep" in schema["properties"]


def test_sample_is_a_latin_hypercube():
    from simulator.sweep.spec import SweepSpec, expand

    n = 10
    pts = expand(SweepSpec.model_validate(
        {"sample": {"n": n, "seed": 3, "ranges": {"f.pue": [1.0, 2.0], "d.nodes": [1, 10]}}}))
    strata = sorted(int((p["f.pue"] - 1.0) * n) for p in pts)
    assert strata == list(range(n))  # one point in each tenth of the range
    assert sorted(p["d.nodes"] for p in pts) == list(range(1, 11))


def test_engineering_units():
    assert units.power(6750) == "6.75 kW" and units.power(25e6) == "25 MW"
    assert units.tokens_per_s(3550) == "3.55 k tok/s"
    assert units.gwh(0.697) == "0.697 GWh" and units.gwh(1.63e-4) == "163 kWh"
    assert units.money(1.2345e6) == "$1.23M" and units.count(1e9) == "1 billion"
    assert units.pct(0.6612) == "66.1 %" and units.power(None) == "n/a"
    assert units.axis_scale([25e6, 1e6], "W") == (1e-6, "MW")


def test_run_summary_prints_engineering_units(tmp_path):
    r = CliRunner().invoke(main, ["run", str(REPO / "scenarios/default.yaml"), "-o",
                                  str(tmp_path / "o"), "--set", "simulation.requests=600"])
    assert r.exit_code == 0, r.output
    assert not re.search(r"\de[+-]\d", r.output), r.output  # no 6.75e+03
    assert " kW" in r.output and "tok/s" in r.output
