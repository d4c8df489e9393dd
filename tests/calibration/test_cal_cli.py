"""`fleetsim calibrate` is deterministic; bad data gives one line and exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from simulator.calibration.cli import calibrate_cmd
from simulator.errors import DataError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "calibration" / "data"


def test_calibrate_is_deterministic(tmp_path):
    """Two runs (fast mode: subsampled data, no leave-one-out refits) give identical files.
    The real command fits the full data; its result is the H100 profile's calibration.yaml."""
    texts = []
    for i in range(2):
        out = tmp_path / f"run{i}" / "calibration.yaml"
        res = CliRunner().invoke(calibrate_cmd, ["--data", str(DATA), "--out", str(out), "--report",
                                                 str(tmp_path / f"rep{i}"), "--fast", "--quiet"])
        assert res.exit_code == 0, res.output + repr(res.exception)
        texts.append(out.read_text())
        assert (out.parent / "calibration-splitwise2023.yaml").exists()
        assert (tmp_path / f"rep{i}" / "README.md").exists()
        assert (tmp_path / f"rep{i}" / "mlenergy.png").exists()
    assert texts[0] == texts[1]


def test_calibrate_bad_data_one_line(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("profiles"))
    p = data / "sources" / "mlenergy-v3" / "runs.csv"
    lines = p.read_text().splitlines()
    head = lines[0].split(",")
    row = lines[3].split(",")
    row[head.index("med_itl_ms")] = ""
    lines[3] = ",".join(row)
    p.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(calibrate_cmd, ["--data", str(data), "--out", str(tmp_path / "o.yaml"),
                                             "--report", str(tmp_path / "r"), "--fast", "--quiet"])
    assert isinstance(res.exception, DataError)
    msg = str(res.exception)
    assert "\n" not in msg and "row 4" in msg and "med_itl_ms" in msg and str(p) in msg
    assert not (tmp_path / "o.yaml").exists()


def test_main_cli_exit_code_2(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    (data / "sources").mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "simulator", "calibrate", "--data", str(data), "--out",
                        str(tmp_path / "o.yaml"), "--report", str(tmp_path / "r"), "--quiet"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
