"""Regenerate docs/report-screenshot.png: the report of the bundled projection sweep,
rendered by headless Chromium (Debian's `chromium`).

    python scripts/report_screenshot.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from simulator.charts.report import write_report
    from simulator.sweep import build_sweep, run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "proj"
        run_sweep(build_sweep(str(REPO / "scenarios/sweep-projection.yaml")), out, workers=2,
                  progress=False)
        page = write_report(out)
        shot = REPO / "docs" / "report-screenshot.png"
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
                            "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run",
                            f"--user-data-dir={profile}", "--hide-scrollbars",
                            "--window-size=1280,2300", f"--screenshot={shot}", page.as_uri()],
                           check=True, capture_output=True)
        print(f"wrote {shot}")


if __name__ == "__main__":
    main()
