"""The error tables in the READMEs are the ones the shipped calibration file records."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.calibration.report import BEGIN, END, summary_table
from simulator.devices import load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("readme", [ROOT / "README.md", ROOT / "calibration" / "README.md"])
def test_readme_error_table_matches_h100_yaml(readme: Path):
    text = readme.read_text()
    assert BEGIN in text and END in text, f"{readme} lost its generated-table markers"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == summary_table(load_profile("H100").calibration().errors).strip(), (
        f"{readme}: error table drifted from the H100 profile's calibration.yaml; run fleetsim"
        " calibrate")
