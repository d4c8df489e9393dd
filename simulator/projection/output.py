"""A projection's output folder, written atomically (nothing half-written on failure)::

    OUT/summary.json             the contract (docs/projection.md)
    OUT/hourly.csv               nominal day, one row per hour: load, nodes on, energy by part
    OUT/facility_power.parquet   t_s, facility_power_w (+ _p5, _p95), it_power_w, nodes_on
    OUT/levels.csv               nominal simulated load levels (per-node power, SLO attainment)
    OUT/draws.csv                Monte Carlo draws: every input's value and the day's results
    OUT/sensitivity.csv          tornado rows fitted on the draws (when there are enough)
    OUT/scenario.resolved.yaml   the scenario with every default filled in
    OUT/charts/                  facility_power_24h and tornado_gwh, PNG and SVG
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from simulator.output import AtomicDir, scenario_inputs, write_json
from simulator.projection.day import SECONDS_PER_HOUR
from simulator.projection.project import Projection


def power_frame(proj: Projection) -> pd.DataFrame:
    """The hourly curve in the charts' tidy form (t_s from midnight, W, count), with the
    P5/P95 of each hour's facility power over the Monte Carlo draws."""
    h = proj.hourly
    return pd.DataFrame({"t_s": h["hour"].to_numpy() * SECONDS_PER_HOUR,
                         "facility_power_w": h["facility_power_w"].to_numpy(),
                         "facility_power_w_p5": h["facility_power_w_p5"].to_numpy(),
                         "facility_power_w_p95": h["facility_power_w_p95"].to_numpy(),
                         "it_power_w": h["it_power_w"].to_numpy(),
                         "nodes_on": h["nodes_on"].to_numpy()})


def write_charts(proj: Projection, out: Path) -> list[Path]:
    """The 24-hour chart (the same figure `fleetsim plot` draws from the folder) and the
    tornado."""
    from simulator.charts import plots
    from simulator.charts.draw import projection_day_figure

    from simulator.output import MARKER, _version, write_json

    s = proj.summary
    paths = plots.save(projection_day_figure(power_frame(proj), s), out / "facility_power_24h")
    # marked as fleetsim's charts folder, so `fleetsim plot` on the projection may redraw it
    write_json(out / MARKER, {"written_by": "fleetsim", "kind": "charts", "version": _version()})
    if proj.sensitivity is not None and len(proj.sensitivity):
        paths += plots.save(plots.tornado(proj.sensitivity, s["gwh_per_day_facility_p50"],
                                          scenario=s["scenario"]), out / "tornado_gwh")
    return paths


def write_projection(proj: Projection, out_dir: str | Path, charts: bool = True,
                     overwrite: bool = False) -> Path:
    """Write a projection's folder atomically (:class:`~simulator.output.AtomicDir`)."""
    with AtomicDir(out_dir, overwrite=overwrite, inputs=scenario_inputs(proj.scenario),
                   kind="projection") as tmp:
        write_projection_files(proj, tmp, charts)
    return Path(out_dir)


def write_projection_files(proj: Projection, tmp: Path, charts: bool = True) -> None:
    """Every file of a projection's folder (the module docstring), into ``tmp``."""
    write_json(tmp / "summary.json", proj.summary)
    proj.hourly.to_csv(tmp / "hourly.csv", index=False)
    power_frame(proj).to_parquet(tmp / "facility_power.parquet", index=False)
    proj.levels.to_csv(tmp / "levels.csv", index=False)
    proj.draws.to_csv(tmp / "draws.csv", index=False)
    if proj.sensitivity is not None:
        proj.sensitivity.to_csv(tmp / "sensitivity.csv", index=False)
    (tmp / "scenario.resolved.yaml").write_text(
        yaml.safe_dump(proj.scenario.model_dump(mode="json"), sort_keys=False))
    if charts:
        write_charts(proj, tmp / "charts")
