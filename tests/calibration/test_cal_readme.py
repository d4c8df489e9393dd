"""The error tables in the READMEs are the ones the shipped calibration files record (the H100's,
and the B200's beside it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.calibration.report import BEGIN, END, shipped_table, summary_table
from simulator.devices import load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("readme", [ROOT / "README.md", ROOT / "calibration" / "README.md"])
def test_readme_error_table_matches_the_shipped_yaml(readme: Path):
    text = readme.read_text()
    assert BEGIN in text and END in text, f"{readme} lost its generated-table markers"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == shipped_table().strip(), (
        f"{readme}: error table drifted from the shipped calibration.yaml files; run fleetsim"
        " calibrate (and fleetsim calibrate --gpu B200)")


def test_readme_table_shows_h100_and_b200_side_by_side():
    h = load_profile("H100").calibration().errors
    b = load_profile("B200").calibration().errors
    table = summary_table(h, b)
    assert "| quantity | H100 MAPE | B200 MAPE | target |" in table
    # every B200 model group appears with its own row, and the excluded runs are listed apart
    for group in b["mlenergy"]["by_group"]:
        assert f"| B200 | {group} |" in table
    for name in b["mlenergy"]["excluded"]:
        assert f"| B200 {name} |" in table
    # the H100-only table is unchanged by the B200's presence
    assert summary_table(h).startswith("Method: leave-one-model-out.")
