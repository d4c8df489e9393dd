"""Output paths: fleetsim replaces only what it wrote, refuses everything else with one line and
exit code 2 before anything runs, and writes its folders atomically (complete or absent)."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from simulator import output
from simulator.cli import main
from simulator.output import MARKER, AtomicDir, OutputError, check_output_dir, clean_stale
from tests.conftest import small

REPO = Path(__file__).resolve().parents[1]


def scenario(tmp_path: Path, requests: int = 60) -> Path:
    d = small()
    d["simulation"] = {"requests": requests, "warmup_requests": 5, "seed": 1}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def cli(*args: str):
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def no_simulation(monkeypatch):
    """Any simulation fails the test: refusals must come before anything runs."""
    import simulator.api

    def boom(*a, **k):
        raise AssertionError("a simulation ran before the output path was refused")

    monkeypatch.setattr(simulator.api, "run", boom)
    monkeypatch.setattr(simulator.api, "simulate", boom)


def refused(args, *words, overwrite_too=True) -> str:
    for extra in ([], ["--overwrite"]) if overwrite_too else ([],):
        code, out, err = cli(*args, *extra)
        assert code == 2, (out, err)
        line = err.strip()
        assert "\n" not in line and "Traceback" not in line, line
        for w in words:
            assert w in line, line
    return line


def test_refuses_a_file(tmp_path, no_simulation):
    f = tmp_path / "notes.txt"
    f.write_text("precious")
    refused(["run", str(scenario(tmp_path)), "-o", str(f)], "is a file, not a folder")
    assert f.read_text() == "precious"


def test_refuses_a_device_even_as_root(tmp_path, no_simulation):
    """As root, fleetsim once replaced /dev/null with its folder. A device-like path made in
    a temp folder (a character device when mknod is allowed, else a FIFO) is never touched."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        kind, test = "a character device", stat.S_ISCHR
    except (PermissionError, OSError):
        os.mkfifo(dev)
        kind, test = "a FIFO", stat.S_ISFIFO
    refused(["run", str(scenario(tmp_path)), "-o", str(dev)], kind)
    assert test(os.lstat(dev).st_mode)
    print(f"euid={os.geteuid()} device={kind}")


def test_refuses_a_symbolic_link(tmp_path, no_simulation):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    refused(["run", str(scenario(tmp_path)), "-o", str(link)], "symbolic link")
    assert link.is_symlink()


def test_refuses_the_current_folder(tmp_path, no_simulation, monkeypatch):
    sc = scenario(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("x")
    monkeypatch.chdir(work)
    refused(["run", str(sc), "-o", "."], "current folder")
    refused(["run", str(sc), "-o", str(tmp_path)], "current folder")  # a parent of it
    assert (work / "mine.txt").read_text() == "x"


def test_refuses_a_repository(tmp_path, no_simulation):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / MARKER).write_text(json.dumps({"written_by": "fleetsim"}))  # even "ours"
    refused(["run", str(scenario(tmp_path)), "-o", str(repo)], "git repository")
    assert (repo / ".git").is_dir()


def test_refuses_a_folder_holding_the_scenario_or_its_trace(tmp_path, no_simulation):
    inputs = tmp_path / "scenarios"
    inputs.mkdir()
    sc = scenario(inputs)
    refused(["run", str(sc), "-o", str(inputs)], "contains an input")
    refused(["run", str(sc), "-o", str(tmp_path)], "contains an input")
    # a trace the scenario reads is an input too
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                "2023-11-16 18:15:46.6805900,374,44\n")
    d = yaml.safe_load(sc.read_text())
    d["workload"] = {"arrival": "replay", "traces": {"chat": str(data / "t.csv")},
                     "classes": d["workload"]["classes"]}
    sc.write_text(yaml.safe_dump(d))
    refused(["run", str(sc), "-o", str(data)], "contains an input", "t.csv")
    assert sc.exists() and (data / "t.csv").exists()


def test_refuses_a_foreign_folder_unless_overwrite(tmp_path):
    sc = scenario(tmp_path)
    theirs = tmp_path / "projects"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    line = refused(["run", str(sc), "-o", str(theirs)], "did not write", "--overwrite",
                   overwrite_too=False)
    assert "projects" in line and (theirs / "thesis.tex").exists()
    code, _, err = cli("run", str(sc), "-o", str(theirs), "--quiet", "--overwrite")
    assert code == 0, err
    assert not (theirs / "thesis.tex").exists() and (theirs / "summary.json").exists()


def test_replaces_what_it_wrote_and_empty_folders(tmp_path):
    sc = scenario(tmp_path)
    out = tmp_path / "out"
    out.mkdir()  # empty
    assert cli("run", str(sc), "-o", str(out), "--quiet")[0] == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["written_by"] == "fleetsim" and marker["kind"] == "run"
    first = (out / "summary.json").read_text()
    (out / "stale.txt").write_text("from an older run")
    assert cli("run", str(sc), "-o", str(out), "--quiet")[0] == 0
    assert (out / "summary.json").read_text() == first
    assert not (out / "stale.txt").exists()  # the folder was replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]  # no debris


def _under_a_file(t: Path) -> str:
    (t / "file").write_text("x")
    return str(t / "file" / "out")


@pytest.mark.parametrize("make, words", [
    (_under_a_file, "is not a folder"),
    (lambda t: "", "empty"),
    (lambda t: "   ", "empty"),
])
def test_unusable_output_paths(tmp_path, no_simulation, make, words):
    refused(["run", str(scenario(tmp_path)), "-o", make(tmp_path)], words)


def test_permission_denied_before_anything_runs(tmp_path):
    """A read-only parent folder: refused before the simulation (as a non-root user: root
    ignores permissions, so the check runs in a child that drops to 'nobody')."""
    locked = tmp_path / "locked"
    locked.mkdir()
    sc = scenario(tmp_path)
    if os.geteuid() != 0:
        locked.chmod(0o500)
        try:
            code, _, err = cli("run", str(sc), "-o", str(locked / "out"))
        finally:
            locked.chmod(0o700)
        assert code == 2 and "permission denied" in err and "\n" not in err.strip()
        return
    # root ignores permissions: check as 'nobody' in a forked child (no new interpreter to
    # start), in a folder of its own under the system's temp folder (pytest's is root's only)
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="fleetsim-perm-"))
    base.chmod(0o755)  # searchable by everyone, writable by root only
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, check, report, exit without cleanup
        code = 3
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            check_output_dir(base / "out")
            os.write(write_fd, b"accepted")
            code = 0
        except OutputError as e:
            os.write(write_fd, str(e).encode())
            code = 2
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        said = f.read()
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(base, ignore_errors=True)
    assert os.waitstatus_to_exitcode(status) == 2 and "permission denied" in said, said


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    from simulator.metrics.requests import RequestTable

    def full(self, path, *a, **k):  # requests.parquet meets a full disk
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(RequestTable, "to_parquet", full)
    sc = scenario(tmp_path)
    code, _, err = cli("run", str(sc), "-o", str(tmp_path / "out"), "--quiet")
    assert code == 2 and "No space left on device" in err and "\n" not in err.strip(), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_parents_it_made_are_removed_on_failure(tmp_path, monkeypatch):
    from simulator.metrics.requests import RequestTable

    monkeypatch.setattr(RequestTable, "to_parquet",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    code, _, _ = cli("run", str(scenario(tmp_path)), "-o", str(tmp_path / "a" / "b" / "out"))
    assert code == 2 and not (tmp_path / "a").exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporary_folders_are_cleaned_and_an_interrupted_swap_repaired(tmp_path):
    target = tmp_path / "out"
    dead = _dead_pid()
    debris = tmp_path / f".out.fleetsim-tmp-{dead}-0123abcd"
    (debris / "power").mkdir(parents=True)
    alive = tmp_path / f".out.fleetsim-tmp-{os.getpid()}-0123abcd"  # a live process's
    alive.mkdir()
    foreign = tmp_path / ".out.backup"  # not fleetsim's pattern
    foreign.mkdir()
    old = tmp_path / f".out.fleetsim-old-{dead}-89abcdef"  # killed between two renames
    old.mkdir()
    (old / MARKER).write_text(json.dumps({"written_by": "fleetsim", "kind": "run"}))
    (old / "summary.json").write_text("{}")
    stale_file = tmp_path / f".out.fleetsim-tmp-{dead}-fedcba98"  # a text file's copy
    stale_file.write_text("half")
    clean_stale(target)
    assert not debris.exists() and alive.exists() and foreign.exists()
    assert not stale_file.exists()
    assert (target / "summary.json").exists() and not old.exists()  # put back


def test_replacement_swaps_atomically(tmp_path, monkeypatch):
    """The old folder is never absent: it is exchanged with the new one in one step."""
    seen = []
    real = output._exchange

    def spy(a, b):
        seen.append(sorted(p.name for p in Path(b).iterdir()))
        return real(a, b)

    monkeypatch.setattr(output, "_exchange", spy)
    out = tmp_path / "out"
    for text in ("one", "two"):
        with AtomicDir(out) as tmp:
            (tmp / "x.txt").write_text(text)
    assert (out / "x.txt").read_text() == "two"
    assert seen == [[MARKER, "x.txt"]]  # the second write swapped with a complete folder


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from simulator.output import AtomicDir
with AtomicDir(sys.argv[1]) as tmp:
    for i in range(400):
        (tmp / f"part-{i}.txt").write_text("x" * 1000)
        time.sleep(0.001)
    (tmp / "complete").write_text("yes")
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_writer_leaves_a_complete_folder_or_none(tmp_path, seed):
    """kill -9 at a random moment of writing (twice: the first write, then a replacement):
    the target is absent or complete, and the next write cleans what the kill left."""
    import random

    rng = random.Random(seed)
    out = tmp_path / "out"
    for _ in range(2):
        p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], cwd=REPO)
        time.sleep(rng.uniform(0.2, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait()
        if out.exists():
            assert (out / "complete").read_text() == "yes"
            assert len(list(out.glob("part-*.txt"))) == 400
    with AtomicDir(out) as tmp:
        (tmp / "complete").write_text("yes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_check_output_dir_accepts_new_paths_and_returns_them_absolute(tmp_path):
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(OutputError, match="did not write"):
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "y").write_text("")
        check_output_dir(tmp_path / "x")


def test_report_and_reference_files_are_not_replaced_unless_ours(tmp_path):
    mine = tmp_path / "notes.md"
    mine.write_text("my notes")
    code, _, err = cli("reference", "-o", str(mine))
    assert code == 2 and "did not write" in err and mine.read_text() == "my notes"
    code, _, err = cli("reference", "-o", str(tmp_path))
    assert code == 2 and "folder" in err
    ref = tmp_path / "ref.md"
    assert cli("reference", "-o", str(ref))[0] == 0
    assert cli("reference", "-o", str(ref))[0] == 0  # its own file: replaced
    assert cli("reference", "-o", str(mine), "--overwrite")[0] == 0
    assert mine.read_text() == ref.read_text()


def test_plot_writes_its_folder_atomically_and_refuses_foreign_ones(tmp_path):
    sc = scenario(tmp_path)
    run_dir = tmp_path / "run"
    assert cli("run", str(sc), "-o", str(run_dir), "--quiet")[0] == 0
    foreign = tmp_path / "charts"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    code, _, err = cli("plot", str(run_dir), "-o", str(foreign))
    assert code == 2 and "did not write" in err and (foreign / "keep.txt").exists()
    code, out, err = cli("plot", str(run_dir))
    assert code == 0, err
    assert json.loads((run_dir / "charts" / MARKER).read_text())["kind"] == "charts"
