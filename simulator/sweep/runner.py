"""Run a sweep's points: serially, on local processes, or on a Dask cluster; resumable.

Each point runs in a staging folder ``OUT/points/.staging/<id>`` that is renamed to
``OUT/points/<id>`` only when the command has finished and ``point.json`` is written, so a
killed sweep leaves either a complete point folder or debris under ``.staging`` (removed when
the next sweep on ``OUT`` starts; do not run two sweeps on one ``OUT`` at once). A rerun skips every point whose folder holds a ``summary.json`` computed from the same
scenario and command (``point.json``'s ``scenario_sha``); a point whose scenario changed is run
again. The table is rebuilt from the point folders after every run.

Parallelism uses an existing engine, never a home-made scheduler:
``concurrent.futures.ProcessPoolExecutor`` locally, ``dask.distributed.Client`` with a cluster
(the workers must see ``OUT`` on a shared filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.errors import FleetsimError
from simulator.output import _exchange, prepare_dir, write_json
from simulator.sweep.results import collect_results, write_table
from simulator.sweep.spec import Sweep
from simulator.workers import process_pool

if TYPE_CHECKING:
    from simulator.estimate.model import EstimateCache


#: folder under OUT/points where points are written before being renamed into place
STAGING = ".staging"


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (picklable; no engine objects)."""

    id: str
    overrides: dict[str, Any]
    data: dict[str, Any]
    file: str
    base_dir: str
    command: str
    scenario_sha: str
    out_dir: str  # the sweep's OUT


@dataclass(frozen=True)
class PointOutcome:
    id: str
    error: str | None = None


def run_point(task: PointTask, estimates: EstimateCache | None = None) -> PointOutcome:
    """Run one point into ``OUT/points/<id>`` atomically. Top-level: pickled by reference.
    ``estimates``: the cache the ``estimate`` command keeps across the points it is given."""
    from simulator.output import write_json
    from simulator.scenario.load import scenario_from_dict
    from simulator.sweep.commands import COMMANDS, estimate_command

    points = Path(task.out_dir) / "points"
    final = points / task.id
    staging = points / STAGING / task.id
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        sc = scenario_from_dict(task.data, file=task.file, base_dir=task.base_dir)
        if task.command == "estimate" and estimates is not None:
            summary = estimate_command(sc, staging, estimates)
        else:
            summary = COMMANDS[task.command](sc, staging)
        staging.mkdir(parents=True, exist_ok=True)
        if not (staging / "summary.json").exists():
            write_json(staging / "summary.json", summary)
        write_json(staging / "point.json", {"id": task.id, "command": task.command,
                                            "overrides": task.overrides,
                                            "scenario_sha": task.scenario_sha})
        if not os.path.lexists(final):
            os.rename(staging, final)
        elif _exchange(staging, final):  # atomic: the old point folder is now at staging
            shutil.rmtree(staging, ignore_errors=True)
        else:
            old = points / STAGING / f"{task.id}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
    except FleetsimError as e:
        shutil.rmtree(staging, ignore_errors=True)
        return PointOutcome(task.id, str(e))
    except OSError as e:  # a full disk, a read-only folder: the point fails, the sweep goes on
        shutil.rmtree(staging, ignore_errors=True)
        return PointOutcome(task.id, f"cannot write {final}: {e.strerror or e}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PointOutcome(task.id)


def open_sweep_dir(out_dir: str | Path, sweep: Sweep, overwrite: bool) -> Path:
    """The sweep's folder, checked as every output folder is (:mod:`simulator.output`): a
    fleetsim sweep folder is resumed, anything else fleetsim may replace starts empty. A sweep
    folder written before folders were marked (it has a sweep.json manifest) is resumed."""
    from simulator.output import MARKER, marker_of

    out = Path(out_dir)
    legacy = out / "sweep.json"
    if out.is_dir() and not out.is_symlink() and marker_of(out) is None and legacy.is_file():
        try:
            m = json.loads(legacy.read_text())
        except (OSError, ValueError):
            m = None
        if isinstance(m, dict) and {"scenario", "command", "points"} <= set(m):
            write_json(out / MARKER, {"written_by": "fleetsim", "kind": "sweep"})
    path, _ = prepare_dir(out, kind="sweep", overwrite=overwrite, inputs=sweep.inputs)
    return path


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_finished(out_dir: Path, pid: str, sha: str) -> bool:
    """A point is finished when its folder has summary.json and point.json with this sha."""
    d = out_dir / "points" / pid
    try:
        meta = json.loads((d / "point.json").read_text())
    except (OSError, ValueError):
        return False
    return (d / "summary.json").exists() and meta.get("scenario_sha") == sha


def _estimates(tasks: list[PointTask]) -> EstimateCache | None:
    """One cache for these points when they are estimates (their lengths and pool models are
    shared: milliseconds a point, a sweep's points mostly differ in rate, cap or size)."""
    if not any(t.command == "estimate" for t in tasks):
        return None
    from simulator.estimate.model import EstimateCache

    return EstimateCache()


def run_points(tasks: list[PointTask]) -> list[PointOutcome]:
    """:func:`run_point` for each of ``tasks`` in turn, estimates sharing one cache.
    Top-level: pickled by reference."""
    cache = _estimates(tasks)
    return [run_point(t, cache) for t in tasks]


def _serial(tasks: list[PointTask]) -> Iterator[PointOutcome]:
    cache = _estimates(tasks)
    for t in tasks:
        yield run_point(t, cache)


#: estimate points go to the workers in about this many chunks per worker (each chunk keeps
#: one cache; a point takes milliseconds, so a chunk is short and progress still moves)
CHUNKS_PER_WORKER = 4


def _processes(tasks: list[PointTask], workers: int) -> Iterator[PointOutcome]:
    with process_pool(workers) as pool:
        if tasks and tasks[0].command == "estimate":
            n = max(1, -(-len(tasks) // (workers * CHUNKS_PER_WORKER)))
            chunks = [pool.submit(run_points, tasks[i:i + n]) for i in range(0, len(tasks), n)]
            try:
                for f in as_completed(chunks):
                    yield from f.result()
            finally:
                for f in chunks:
                    f.cancel()
            return
        futures = [pool.submit(run_point, t) for t in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()


def _dask(tasks: list[PointTask], cluster: Any) -> Iterator[PointOutcome]:
    try:
        from dask.distributed import Client, as_completed as dask_completed
    except ImportError:
        raise FleetsimError("--cluster needs dask: pip install 'dask[distributed]'") from None
    own = not isinstance(cluster, Client)
    try:
        client = Client(cluster) if own else cluster
    except (OSError, TimeoutError, ValueError) as e:
        raise FleetsimError(f"cannot connect to Dask cluster {cluster!r}: {e}") from None
    try:
        futures = client.map(run_point, tasks, pure=False, key=[f"point-{t.id}" for t in tasks])
        try:
            for f in dask_completed(futures):
                yield f.result()
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()


def run_sweep(sweep: Sweep, out_dir: str | Path, workers: int | None = None, cluster: Any = None,
              progress: bool = True,
              on_point_done: Callable[[PointOutcome], None] | None = None,
              overwrite: bool = False) -> dict[str, Any]:
    """Run the unfinished points of ``sweep`` into ``out_dir`` and rebuild the results table.

    ``workers``: local processes (1 runs in this process; default: CPU count, at most the number
    of points to run). ``cluster``: a Dask scheduler address or ``Client``; overrides workers.
    ``on_point_done`` is called after each point (tests use it to interrupt a sweep).
    Returns ``{"ran": n, "skipped": n, "failed": [(id, error)], "table": DataFrame}``; raises
    :class:`FleetsimError` after writing the table when any point failed.
    """
    out = open_sweep_dir(out_dir, sweep, overwrite)
    try:
        (out / "points").mkdir(exist_ok=True)
        shutil.rmtree(out / "points" / STAGING, ignore_errors=True)  # left by a killed sweep
        manifest = {"scenario": sweep.file, "command": sweep.command,
                    "set": sweep.base_overrides, "grid": sweep.grid_paths,
                    "points": [{"id": p.id, "overrides": p.overrides} for p in sweep.points]}
        _write_atomic(out / "sweep.json", lambda tmp: write_json(tmp, manifest))
    except OSError as e:
        raise FleetsimError(f"{out}: cannot write the sweep folder: {e.strerror or e}") from None
    todo = [p for p in sweep.points if not is_finished(out, p.id, p.scenario_sha)]
    tasks = [PointTask(p.id, p.overrides, p.data, sweep.file, str(sweep.base_dir), sweep.command,
                       p.scenario_sha, str(out.resolve())) for p in todo]
    skipped = len(sweep.points) - len(todo)
    failed: list[tuple[str, str]] = []
    if cluster is not None:
        stream = _dask(tasks, cluster)
    else:
        n = workers if workers is not None else (os.cpu_count() or 1)
        n = max(1, min(n, len(tasks)))
        stream = _serial(tasks) if n == 1 else _processes(tasks, n)
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(sweep.points), initial=skipped, unit="point", desc="sweep",
                   file=sys.stderr, dynamic_ncols=True)
    try:
        for outcome in stream:
            if outcome.error:
                failed.append((outcome.id, outcome.error))
            if bar is not None:
                bar.update(1)
            if on_point_done is not None:
                on_point_done(outcome)
    finally:
        if bar is not None:
            bar.close()
        if hasattr(stream, "close"):
            stream.close()
        try:
            (out / "points" / STAGING).rmdir()  # only when empty: nothing is in flight
        except OSError:
            pass
        table = collect_results(out, [(p.id, p.overrides) for p in sweep.points])
        write_table(table, out)  # a FleetsimError (a full disk) replaces any error in flight
    if failed:
        pid, err = failed[0]
        raise FleetsimError(f"{len(failed)} of {len(sweep.points)} sweep points failed (the others"
                            f" are in {out}/results.parquet); first: point {pid}: {err}")
    return {"ran": len(tasks), "skipped": skipped, "failed": failed, "table": table}
