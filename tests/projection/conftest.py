"""Shared fixtures: the tiny projection scenario (tests/projection/tiny.yaml) and one nominal
projection of it, computed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario.load import load_scenario

HERE = Path(__file__).resolve().parent
TINY = HERE / "tiny.yaml"


def tiny(*overrides: str):
    return load_scenario(TINY, list(overrides))


@pytest.fixture(scope="session")
def tiny_projection():
    from simulator.projection.project import project

    return project(tiny())
