"""The sweep's tidy table: one row per finished point, rebuilt from the point folders."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.errors import FleetsimError

#: columns every table starts with
ID_COLUMN = "point_id"


def flatten_summary(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": 1, "slo_attainment": {"chat": 0.9}}`` -> ``{"a": 1, "slo_attainment.chat": 0.9}``.

    Lists are kept as JSON text; ``None`` (a NaN written to JSON) becomes NaN.
    """
    out: dict[str, Any] = {}
    for k, v in summary.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_summary(v, f"{key}."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v)
        elif v is None:
            out[key] = math.nan
        else:
            out[key] = v
    return out


def _param_column(values: list[Any]) -> list[Any]:
    """Numbers stay numbers; anything else (mixed, dicts, 'rest') becomes its JSON text."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return [math.nan if v is None else v for v in values]
    if all(isinstance(v, bool) for v in present) or all(isinstance(v, str) for v in present):
        return values
    return [None if v is None else json.dumps(v, sort_keys=True) for v in values]


def collect_results(out_dir: str | Path, points: list[tuple[str, dict[str, Any]]]) -> pd.DataFrame:
    """Table of the finished points among ``points`` ``[(id, overrides)]``, in that order.

    Parameter columns are named by dotted path (a point that does not set one has NaN there);
    metric columns are the flattened ``summary.json`` of each point.
    """
    out_dir = Path(out_dir)
    rows, params, ids = [], [], []
    param_names: list[str] = []
    for pid, ov in points:
        f = out_dir / "points" / pid / "summary.json"
        if not f.exists():
            continue
        summary = json.loads(f.read_text())
        rows.append(flatten_summary(summary))
        ids.append(pid)
        params.append(ov)
        for k in ov:
            if k not in param_names:
                param_names.append(k)
    table: dict[str, list[Any]] = {ID_COLUMN: ids}
    for name in param_names:
        table[name] = _param_column([p.get(name) for p in params])
    metrics = pd.DataFrame(rows)
    df = pd.DataFrame(table)
    clash = [c for c in metrics.columns if c in df.columns]
    metrics = metrics.rename(columns={c: f"summary.{c}" for c in clash})
    return pd.concat([df, metrics.reset_index(drop=True)], axis=1)


def write_table(df: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """Write results.parquet and results.csv atomically (temp file + rename). A write error (a
    full disk) removes the temporary files and is one line (:class:`FleetsimError`)."""
    out_dir = Path(out_dir)
    pq, csv = out_dir / "results.parquet", out_dir / "results.csv"
    tmp_pq, tmp_csv = out_dir / ".results.parquet.tmp", out_dir / ".results.csv.tmp"
    try:
        df.to_parquet(tmp_pq, index=False)
        df.to_csv(tmp_csv, index=False)
        os.replace(tmp_pq, pq)
        os.replace(tmp_csv, csv)
    except OSError as e:
        raise FleetsimError(f"{out_dir}: cannot write results.parquet and results.csv:"
                            f" {getattr(e, 'strerror', None) or e}") from None
    finally:
        tmp_pq.unlink(missing_ok=True)
        tmp_csv.unlink(missing_ok=True)
    return pq, csv
