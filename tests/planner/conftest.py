"""The bundled sweep examples, run once per session (they are what a planner tries first),
and a headless Chromium to render reports in."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ["sweep-mix-uncertainty", "sweep-power-cap", "sweep-tp-rate", "sweep-projection",
            "sweep-moe-layout"]
#: set to 1 to make a missing browser an error instead of a skip (.ci/run installs it where it
#: can; a machine without it still runs every other test)
REQUIRE_BROWSER_ENV = "FLEETSIM_REQUIRE_BROWSER"


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> dict[str, Path]:
    from simulator.sweep import build_sweep, run_sweep

    root = tmp_path_factory.mktemp("examples")
    out = {}
    for name in EXAMPLES:
        run_sweep(build_sweep(str(REPO / "scenarios" / f"{name}.yaml")), root / name,
                  workers=2, progress=False)
        out[name] = root / name
    return out


def chromium() -> str:
    """The Chromium binary; skips (visibly) when it is missing, fails instead with
    FLEETSIM_REQUIRE_BROWSER=1."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "headless Chromium is needed to test the report: apt-get install -y chromium"
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def browser(args: list[str], url: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``url`` (no network, no profile, no GPU)."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
               *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
