"""The architecture holds: the engine imports no metrics, capping, projection or charts; no
import circle among simulator's files; no file is read at import; an installed wheel carries
the device profiles and runs from any folder."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "simulator"


def _module(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every simulator module a file imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("simulator")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simulator"):
            subs = {f"{node.module}.{a.name}" for a in node.names}
            # `from package import submodule` loads the submodule (the package only to find it)
            out |= subs if all(_is_module(s) for s in subs) else {node.module}
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (REPO / rel).with_suffix(".py").exists() or (REPO / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    g = {}
    for m, p in mods.items():
        g[m] = {i for i in _imports(p) if i in mods and i != m}
    return g


def test_engine_imports_neither_metrics_nor_controllers_nor_outputs():
    banned = ("simulator.metrics", "simulator.capping", "simulator.projection", "simulator.charts",
              "simulator.sweep", "simulator.output", "simulator.api", "simulator.controllers")
    for p in (PKG / "engine").glob("*.py"):
        bad = [i for i in _imports(p) if i.startswith(banned)]  # modules, or names in them
        assert not bad, f"{p.name} imports {bad}"


def test_physics_is_pure():
    for p in (PKG / "physics").glob("*.py"):
        bad = [i for i in _imports(p)
               if not i.startswith(("simulator.physics", "simulator.catalog", "simulator.strict"))]
        assert not bad, f"{p.name} imports {bad}"
        assert "open(" not in p.read_text() and "read_text" not in p.read_text(), p.name


def test_no_import_circle():
    g = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(g[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


GUARD = r"""
import builtins, io, os, pathlib, sys
ROOTS = (os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2]))  # repo, package
VENV = os.path.realpath(sys.prefix)
def guard(f):
    def inner(file, *a, **k):
        name = os.path.realpath(str(getattr(file, "__fspath__", lambda: file)()))
        if (name.startswith(ROOTS) and not name.startswith(VENV)
                and ".egg-info" not in name and ".dist-info" not in name):
            raise AssertionError(f"file read at import: {name}")
        return f(file, *a, **k)
    return inner
builtins.open = guard(builtins.open)
io.open = guard(io.open)
_read_text = pathlib.Path.read_text
pathlib.Path.read_text = lambda self, *a, **k: guard(lambda p, *x, **y: _read_text(p, *x, **y))(self, *a, **k)
import importlib, pkgutil, simulator
for m in pkgutil.walk_packages(simulator.__path__, "simulator."):
    if m.name.endswith("__main__"):
        continue
    importlib.import_module(m.name)
print("ok")
"""


def test_no_file_is_read_at_import():
    import simulator

    pkg = Path(simulator.__file__).parent
    out = subprocess.run([sys.executable, "-c", GUARD, str(REPO), str(pkg)], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _build_wheel(dest: Path) -> Path:
    """``pip wheel .`` as ``pip install .`` would build it (isolated build environment), from a
    copy of what the build reads, so that the checkout gets no build/ folder."""
    src = dest.parent / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(PKG, src / "simulator", ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(dest)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (whl,) = dest.glob("fleetsim-*.whl")
    return whl


def test_installed_wheel_carries_profiles_and_runs_from_any_folder(tmp_path):
    whl = _build_wheel(tmp_path / "dist")
    names = set(zipfile.ZipFile(whl).namelist())
    shipped = {str(p.relative_to(REPO)).replace(os.sep, "/") for p in (PKG / "devices").rglob("*.yaml")}
    assert shipped and shipped <= names, shipped - names
    site = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (f"import sys; sys.path.insert(0, {str(site)!r})\n"
            "import simulator\n"
            f"assert simulator.__file__.startswith({str(site)!r}), simulator.__file__\n"
            "from simulator import scenario_from_dict, simulate\n"
            "sc = scenario_from_dict({'model': 'Llama-3.1-8B', 'deployment': {'tp': 2},"
            " 'workload': {'rate_per_s': 5.0}, 'simulation': {'requests': 30}})\n"
            "print(simulate(sc).summary['requests_completed'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=work)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "30"
