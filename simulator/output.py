"""Write a run's output folder atomically: everything goes to a temporary sibling folder that
is renamed into place only when complete, so a failed run leaves nothing half-written."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from simulator.result import RunResult


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def resolved_scenario(res: RunResult) -> dict[str, Any]:
    return res.scenario.model_dump(mode="json")


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(_clean(data), indent=2, sort_keys=False) + "\n")


class AtomicDir:
    """Context manager: yields a temp folder next to ``target``; on success replaces target."""

    def __init__(self, target: str | Path):
        self.target = Path(target)

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.target, old)
            os.replace(self.tmp, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.target)


def write_run(res: RunResult, out_dir: str | Path, csv: bool = False) -> Path:
    """Write summary.json, requests.parquet (+csv), power/node-<i>.parquet (and each
    controller's tables, e.g. power/rows.parquet), scenario.resolved.yaml."""
    with AtomicDir(out_dir) as tmp:
        write_json(tmp / "summary.json", res.summary)
        res.requests.to_parquet(tmp / "requests.parquet", index=False)
        if csv:
            res.requests.to_csv(tmp / "requests.csv", index=False)
        (tmp / "power").mkdir()
        for node in range(res.fleet.nodes):
            res.ledger.node_timeline(node).to_parquet(tmp / "power" / f"node-{node}.parquet",
                                                      index=False)
        for c in res.controllers.values():
            for key, frame in c.frames().items():
                frame.to_parquet(tmp / "power" / f"{key}.parquet", index=False)
        (tmp / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(resolved_scenario(res), sort_keys=False))
    return Path(out_dir)
