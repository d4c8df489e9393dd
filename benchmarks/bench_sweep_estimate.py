"""A thousand-point screening sweep (issue 18): ``fleetsim sweep --estimate`` over a 10 x 10 x 10
grid of the ``1b-chat`` scenario (offered rate x GPU power cap x median output length), run
as a user runs it (one ``fleetsim`` process, its default workers), wall time of the whole
process, best of ``--repeat``. Last line: ``sweep_estimate_points=<n> wall_s=<seconds>``.

    python benchmarks/bench_sweep_estimate.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRID = {
    "workload.rate_per_s": [0.5 * i for i in range(1, 11)],
    "deployment.gpu_cap_w": [400 + 30 * i for i in range(9)] + [700],
    "workload.classes.chat.output_tokens.median": [100 * i for i in range(1, 11)],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    points = 1
    args = [sys.executable, "-m", "simulator", "sweep", str(ROOT / "scenarios" / "1b-chat.yaml"),
            "--estimate"]
    for path, values in GRID.items():
        args += ["--grid", f"{path}=" + ",".join(f"{v:g}" for v in values)]
        points *= len(values)
    walls = []
    for _ in range(a.repeat):
        out = Path(tempfile.mkdtemp(prefix="bench-sweep-")) / "out"
        t0 = time.perf_counter()
        subprocess.run(args + ["-o", str(out)], check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        shutil.rmtree(out.parent)
    print(f"walls_s={', '.join(f'{w:.2f}' for w in walls)}")
    print(f"sweep_estimate_points={points} wall_s={min(walls):.2f}")


if __name__ == "__main__":
    main()
