"""Output folders: what fleetsim may replace, and how it writes them atomically.

**What fleetsim overwrites.** An output path (``-o``) may be written when it does not exist, is
an empty folder, or is a folder fleetsim wrote itself (it holds the marker file
:data:`MARKER`). Anything else is refused with one line (exit code 2) before any simulation
runs:

* never, even with ``--overwrite``: a path that is not a folder (a file, a device, a FIFO, a
  socket, a symbolic link), the filesystem root, the home folder, a folder that contains the
  current folder, a git repository (a folder with ``.git``), a folder that contains one of the
  command's inputs (the scenario, its traces or calibration files, a points file);
* unless ``--overwrite`` is given: any other non-empty folder that fleetsim did not write;
* an output path that cannot be written: empty (``-o ""``), under a file, in a read-only or
  forbidden folder — found before the simulation by creating the temporary folder there.

**How it writes.** Everything goes to a temporary sibling folder ``.<name>.fleetsim-tmp-<pid>-
<token>`` that holds the marker from the start. When complete it takes the target's place in
one step: a plain rename when the target does not exist, else an atomic exchange of the two
folders (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames whose interruption the
next run repairs), after which the old folder is deleted. So the target is always either the
old output or the new one, never a mix or nothing. A run killed while writing leaves its
temporary folder; the next fleetsim command that writes next to it deletes such folders whose
process is gone. A failure (bad input, a full disk) removes the temporary folder and any parent
folder it created, and reports one line.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulator.errors import FleetsimError
from simulator.result import RunResult

#: the file that marks a folder as written by fleetsim (JSON: written_by, kind, version)
MARKER = ".fleetsim-output"
#: temporary and old folders next to a target: ``.<name>.fleetsim-<tmp|old>-<pid>-<token>``
_TEMP_RE = r"^\.{name}\.fleetsim-(tmp|old)-(\d+)-[0-9a-f]{{8}}$"


class OutputError(FleetsimError):
    """An output path fleetsim may not (or cannot) write: ``"<path>: <option>: <problem>"``."""

    def __init__(self, problem: str, path: str | Path, option: str = "-o"):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {option}: {self.problem}")


# ------------------------------------------------------------------ JSON helpers
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


# ------------------------------------------------------------------ what may be replaced
def _kind_of_entry(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "a file"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a folder"


def marker_of(folder: Path) -> dict[str, Any] | None:
    """The marker of a folder fleetsim wrote (its JSON), or None."""
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("written_by") == "fleetsim" else None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output_dir(target: str | Path, *, overwrite: bool = False,
                     inputs: Iterable[str | Path] = (), option: str = "-o") -> Path:
    """Refuse (raise :class:`OutputError`) an output folder fleetsim may not replace or cannot
    create (module docstring); return it as an absolute path (symbolic links of its parents
    resolved). Nothing is written."""
    if str(target).strip() == "":
        raise OutputError("the output path is empty; give a folder name", repr(str(target)),
                          option)
    shown = str(target)
    p = Path(os.path.abspath(Path(target).expanduser()))
    p = p.parent.resolve() / p.name if p.name else p
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as e:
        raise OutputError(f"cannot inspect it: {e.strerror}", shown, option) from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"is {_kind_of_entry(st.st_mode)}, not a folder; fleetsim writes its"
                          " output into a folder and never replaces anything else (even with"
                          " --overwrite)", shown, option)
    if st is None:
        _check_creatable(p, shown, option)
        return p
    never = _never_replace(p, inputs)
    if never:
        raise OutputError(f"{never}; fleetsim never replaces it (even with --overwrite):"
                          " choose another output folder", shown, option)
    if marker_of(p) is not None or overwrite:
        return p
    try:
        empty = not any(os.scandir(p))
    except OSError as e:
        raise OutputError(f"cannot read the folder: {e.strerror}", shown, option) from None
    if not empty:
        raise OutputError("is a folder that fleetsim did not write (it has no " + MARKER +
                          " marker) and is not empty; choose a new folder, or pass --overwrite"
                          " to replace it and everything in it", shown, option)
    return p


def _never_replace(p: Path, inputs: Iterable[str | Path]) -> str | None:
    """Why the existing folder ``p`` may never be replaced, or None."""
    real = p.resolve()
    if real == Path(real.anchor):
        return "is the filesystem root"
    if real == Path.home().resolve():
        return "is your home folder"
    if _inside(Path.cwd().resolve(), real):
        return "is (or contains) the current folder"
    if (real / ".git").exists():
        return "is a git repository (it has .git)"
    for i in inputs:
        ip = Path(os.path.abspath(Path(i).expanduser())).resolve()
        if _inside(ip, real):
            return f"contains an input of this command ({i})"
    return None


def _check_creatable(p: Path, shown: str, option: str) -> None:
    anc = p.parent
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    while True:  # a path under a file: name the file
        try:
            os.lstat(anc)
            break
        except NotADirectoryError:
            anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"{anc} is not a folder (it is "
                          f"{_kind_of_entry(os.lstat(anc).st_mode)}), so no folder can be made"
                          " under it", shown, option)
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create a folder in {anc}: permission denied (or read-only)",
                          shown, option)


# ------------------------------------------------------------------ writing
_libc: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    global _libc
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                        ctypes.c_char_p, ctypes.c_uint]
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if _libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> None:
    """Delete the temporary folders that killed fleetsim processes left next to ``target``;
    put back an old output whose replacement was interrupted (when the target is missing)."""
    parent = target.parent
    pattern = re.compile(_TEMP_RE.format(name=re.escape(target.name)))
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for e in entries:
        m = pattern.match(e.name)
        if not m or e.is_symlink() or _pid_alive(int(m.group(2))):
            continue
        path = Path(e.path)
        if not e.is_dir(follow_symlinks=False):  # a text file's temporary copy
            if m.group(1) == "tmp":
                path.unlink(missing_ok=True)
            continue
        if m.group(1) == "old" and not os.path.lexists(target) and marker_of(path) is not None:
            try:
                os.rename(path, target)
                continue
            except OSError:
                pass
        shutil.rmtree(path, ignore_errors=True)


def _temp_name(target: Path, what: str) -> Path:
    return target.with_name(f".{target.name}.fleetsim-{what}-{os.getpid()}-{secrets.token_hex(4)}")


def _is_write_error(e: BaseException, tmp: Path) -> bool:
    if not isinstance(e, OSError):
        return False
    if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO,
                                     errno.EFBIG, errno.EACCES, errno.EPERM):
        return True
    text = f"{e} {getattr(e, 'filename', '')}"
    return str(tmp) in text or "No space left" in text or "Disk quota" in text


def _why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or " ".join(str(e).split())[:200]


class AtomicDir:
    """Context manager for one output folder (module docstring): on entry it checks the target
    (:func:`check_output_dir`), cleans stale temporary folders next to it and creates the
    temporary folder (with the marker), which it yields; on success the temporary folder takes
    the target's place; on failure it is removed. Write errors (a full disk) become one-line
    :class:`OutputError` s.

    ``kind`` is recorded in the marker ('run', 'projection', 'sweep', 'charts', ...);
    ``inputs`` are the command's input files (never inside the target)."""

    def __init__(self, target: str | Path, *, overwrite: bool = False,
                 inputs: Iterable[str | Path] = (), kind: str = "run", option: str = "-o"):
        self.raw = target
        self.overwrite = overwrite
        self.inputs = list(inputs)
        self.kind = kind
        self.option = option
        self.tmp: Path | None = None
        self._made: list[Path] = []

    def __enter__(self) -> Path:
        self.target = check_output_dir(self.raw, overwrite=self.overwrite, inputs=self.inputs,
                                       option=self.option)
        try:
            missing = []
            anc = self.target.parent
            while not anc.exists():
                missing.append(anc)
                anc = anc.parent
            for d in reversed(missing):
                d.mkdir()
                self._made.append(d)
            clean_stale(self.target)
            tmp = _temp_name(self.target, "tmp")
            tmp.mkdir()
            self.tmp = tmp
            write_json(tmp / MARKER, {"written_by": "fleetsim", "kind": self.kind,
                                      "version": _version()})
        except OSError as e:
            self._discard()
            raise OutputError(f"cannot create the output folder: {_why(e)}", self.raw,
                              self.option) from None
        return tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            tmp = self.tmp
            self._discard()
            if tmp is not None and _is_write_error(exc, tmp):
                raise OutputError(f"cannot write the output: {_why(exc)}; nothing was written",
                                  self.raw, self.option) from None
            return False
        try:
            self._commit()
        except OSError as e:
            self._discard()
            raise OutputError(f"cannot put the output in place: {_why(e)}", self.raw,
                              self.option) from None
        return False

    def _commit(self) -> None:
        tmp, target = self.tmp, self.target
        assert tmp is not None
        # the target may have changed during a long run: check it again
        check_output_dir(target, overwrite=self.overwrite, inputs=self.inputs, option=self.option)
        if not os.path.lexists(target):
            os.rename(tmp, target)
        elif _exchange(tmp, target):
            trash = _temp_name(target, "old")
            os.rename(tmp, trash)
            shutil.rmtree(trash, ignore_errors=True)
        else:  # two renames; an interruption between them is repaired by clean_stale
            old = _temp_name(target, "old")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        self.tmp = None

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        for d in reversed(self._made):
            try:
                d.rmdir()
            except OSError:
                break
        self._made = []


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fleetsim")
    except Exception:  # noqa: BLE001 - not installed (a source checkout)
        return "unknown"


def prepare_dir(target: str | Path, *, kind: str, overwrite: bool = False,
                inputs: Iterable[str | Path] = (), option: str = "-o") -> tuple[Path, bool]:
    """A folder that commands fill in place over time (a sweep): checked as
    :func:`check_output_dir` says; kept as it is when it is already a fleetsim ``kind`` folder
    (a resumed sweep), else replaced by a new empty folder holding the marker. Returns
    ``(path, resumed)``."""
    p = check_output_dir(target, overwrite=overwrite, inputs=inputs, option=option)
    m = marker_of(p) if p.is_dir() else None
    if m is not None and m.get("kind") == kind:
        return p, True
    with AtomicDir(p, overwrite=overwrite, inputs=inputs, kind=kind, option=option):
        pass
    return p, False


def write_text_file(target: str | Path, text: str, *, signature: str, overwrite: bool = False,
                    option: str = "-o") -> Path:
    """Write a text file atomically (temporary sibling + rename). An existing target is
    replaced only when it is a regular file that holds ``signature`` (fleetsim wrote it), or
    with ``overwrite``; never when it is not a regular file."""
    if str(target).strip() == "":
        raise OutputError("the output path is empty; give a file name", repr(str(target)), option)
    p = Path(target).expanduser()
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as e:
        raise OutputError(f"cannot inspect it: {e.strerror}", target, option) from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else _kind_of_entry(st.st_mode)
            raise OutputError(f"is {what}, not a file; fleetsim never replaces it (even with"
                              " --overwrite)", target, option)
        if not overwrite:
            try:
                with open(p, encoding="utf-8", errors="replace") as f:
                    head = f.read(4096)
            except OSError:
                head = ""
            if signature not in head:
                raise OutputError("is a file that fleetsim did not write; choose a new name, or"
                                  " pass --overwrite to replace it", target, option)
    else:
        _check_creatable(Path(os.path.abspath(p)), str(target), option)
    p.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(p)
    tmp = _temp_name(p, "tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write the file: {_why(e)}", target, option) from None
    return p


# ------------------------------------------------------------------ a run's folder
def scenario_inputs(sc: Any) -> list[Path]:
    """The files a scenario reads (itself, traces, calibration files, a curve trace)."""
    out: list[Path] = []
    if sc.file:
        out.append(Path(sc.file))
    wl = sc.workload
    for path in (wl.traces or {}).values():
        out.append(sc.resolve(path))
    for qc in wl.classes.values():
        for spec in (qc.input_tokens, qc.output_tokens):
            if getattr(spec, "trace", None):
                out.append(sc.resolve(spec.trace))
    if sc.simulation.calibration:
        out.append(sc.resolve(sc.simulation.calibration))
    for pool in sc.pool_specs():
        if pool.hardware.calibration:
            out.append(sc.resolve(pool.hardware.calibration))
    proj = getattr(sc, "projection", None)
    if proj is not None and proj.curve_trace is not None:
        out.append(sc.resolve(proj.curve_trace.path))
    return out


#: the file of every node's power timeline, under ``power/``
NODES_FILE = "nodes.parquet"


def write_node_timelines(res: RunResult, path: Path) -> None:
    """Every node's piecewise-constant power timeline (``Ledger.node_timeline``) in one
    Parquet file, a ``node`` column first, in row groups of a node's consecutive intervals
    (written piece by piece: a long run's timelines are never held whole)."""
    import pyarrow as pa

    from simulator.metrics.requests import arrow_array, write_parquet_batches

    def batches():
        for node in range(res.fleet.nodes):
            for cols in res.ledger.node_chunks(node):
                n = cols["t_start_s"].size
                cols = {"node": np.full(n, node, dtype=np.int64), **cols}
                schema = pa.schema([pa.field(k, pa.from_numpy_dtype(v.dtype))
                                    for k, v in cols.items()])
                yield schema, pa.RecordBatch.from_arrays([arrow_array(v) for v in cols.values()],
                                                         schema=schema)

    write_parquet_batches(path, batches())


def write_run_files(res: RunResult, folder: Path, csv: bool = False,
                    requests: bool = True) -> None:
    """Write summary.json, requests.parquet (+csv; neither with ``requests=False``),
    power/nodes.parquet (every node's timeline, :func:`write_node_timelines`; and each
    controller's tables, e.g. power/rows.parquet), scenario.resolved.yaml into ``folder``."""
    write_json(folder / "summary.json", res.summary)
    if requests:
        res.table.to_parquet(folder / "requests.parquet")
        if csv:
            res.table.to_csv(folder / "requests.csv")
    (folder / "power").mkdir()
    write_node_timelines(res, folder / "power" / NODES_FILE)
    for c in res.controllers.values():
        for key, frame in c.frames().items():
            frame.to_parquet(folder / "power" / f"{key}.parquet", index=False)
    if res.transfers is not None:
        write_transfers(res.transfers, folder / TRANSFERS_FILE)
    (folder / "scenario.resolved.yaml").write_text(
        yaml.safe_dump(resolved_scenario(res), sort_keys=False))


#: a disaggregated run's KV transfers, one row each (:data:`~simulator.engine.disagg.TRANSFER_COLUMNS`)
TRANSFERS_FILE = "kv_transfers.parquet"


def write_transfers(cols: dict[str, np.ndarray], path: Path) -> None:
    """The run's KV transfers (request order; ids and replicas as integers)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simulator.metrics.requests import arrow_array

    ints = ("request_id", "src_replica", "dst_replica")
    arrays = {k: (v.astype(np.int64) if k in ints else v) for k, v in cols.items()}
    schema = pa.schema([pa.field(k, pa.from_numpy_dtype(v.dtype)) for k, v in arrays.items()])
    table = pa.Table.from_batches([pa.RecordBatch.from_arrays(
        [arrow_array(v) for v in arrays.values()], schema=schema)], schema=schema)
    pq.write_table(table, str(path))


def write_run(res: RunResult, out_dir: str | Path, csv: bool = False,
              overwrite: bool = False, requests: bool = True) -> Path:
    """Write a run's output folder atomically (:func:`write_run_files`, :class:`AtomicDir`)."""
    with AtomicDir(out_dir, overwrite=overwrite, inputs=scenario_inputs(res.scenario)) as tmp:
        write_run_files(res, tmp, csv, requests)
    return Path(out_dir)
