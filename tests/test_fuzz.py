"""Fuzz test: mutated bundled scenarios and traces through validate, run, project and sweep.

Every case must end in one of two ways (docs/fuzzing.md):

* exit 0 with a valid result: a summary whose promised numbers are finite (a null only with a
  warning that says why), requests conserved, lengths >= 1 token; or
* exit 2 with one line ``error: <file>: <field>: <problem>`` naming an input file and a field
  (or a row), and no output folder or temporary debris;

never a traceback, another exit code, a hang (each case runs under an alarm), or nonsense
accepted (a boolean, NaN, infinity or text where a number was, an unknown or duplicate key, a
non-UTF-8 file must be refused).

Cases run in this process through click's CliRunner (no interpreter start per case). The limits
of simulator.scenario.limits are lowered for the test so that any case estimated to take more
than a few seconds is refused (with the limit's one-line error, itself checked), and the
alarm catches anything the estimate misses. Hypothesis runs derandomized (the same cases on
every CI run); ``FLEETSIM_FUZZ_EXAMPLES`` sets the number of cases and ``FLEETSIM_FUZZ_RANDOM=1``
draws new ones.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("FLEETSIM_FUZZ_EXAMPLES", "300"))
CASE_TIMEOUT_S = 30
#: the limits' wall-time estimate above which a case is refused (instead of run), s
FUZZ_MAX_WALL_S = 3.0

# ------------------------------------------------------------------ the bases
EMPIRICAL_TRACE = REPO / "tests" / "workload" / "data" / "azure_conv_head.csv"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _shrink(d: dict) -> dict:
    """The same scenario, small enough to run in a fraction of a second."""
    d = copy.deepcopy(d)
    d.pop("sweep", None)
    sim = d.setdefault("simulation", {})
    sim["requests"] = min(int(sim.get("requests") or 60), 60)
    sim.pop("duration_s", None)
    sim["warmup_requests"] = min(int(sim.get("warmup_requests", 0)), 5)
    sim["warmup_s"] = 0
    wl = d.get("workload", {})
    if wl.get("arrival") == "closed_loop":
        wl["clients"] = min(int(wl.get("clients", 8)), 8)
    for name, path in (wl.get("traces") or {}).items():
        wl["traces"][name] = str((REPO / "scenarios" / path).resolve())
    for cls in (wl.get("classes") or {}).values():  # empirical lengths read a trace too
        for length in (cls.get(k) for k in ("input_tokens", "output_tokens")):
            if isinstance(length, dict) and "trace" in length:
                length["trace"] = str((REPO / "scenarios" / length["trace"]).resolve())
    if sim.get("calibration"):
        sim["calibration"] = str((REPO / "scenarios" / sim["calibration"]).resolve())
    proj = d.get("projection")
    if proj is not None:
        proj["uncertainty"] = {"draws": 0}
        proj["sample"] = {"nodes": 1, "requests": 50, "warmup_s": 5, "level_tolerance": 0.2}
    return d


def _bases() -> dict[str, tuple[dict, tuple[str, ...]]]:
    """name -> (shrunk scenario, commands to try on it)."""
    out = {}
    for f in sorted((REPO / "scenarios").glob("*.yaml")):
        d = _shrink(_load(f))
        d.pop("projection", None)  # bundled projections search capacity: minutes, not seconds
        out[f.stem] = (d, ("validate", "run", "sweep"))
    tiny = _shrink(_load(REPO / "tests" / "projection" / "tiny.yaml"))
    out["tiny-projection"] = (tiny, ("validate", "run", "project"))
    emp = _shrink(_load(REPO / "scenarios" / "default.yaml"))
    emp["workload"]["classes"]["chat"]["input_tokens"] = {
        "dist": "empirical", "trace": str(EMPIRICAL_TRACE), "column": "ContextTokens"}
    out["empirical"] = (emp, ("validate", "run"))
    return out


BASES = _bases()

# ------------------------------------------------------------------ mutations
ODD_VALUES = [None, True, False, 0, -1, 1, 3, 2**63, 10**30, 1e300, -1e300, 1e-300, 0.5, -0.5,
              math.nan, math.inf, -math.inf, "", "x", "1e3", [], {}, [1] * 24, {"a": 1}]


def _leaves(d: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every leaf (and of every list and mapping) of a scenario."""
    out = [path] if path else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _leaves(v, (*path, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _leaves(v, (*path, i))
    return out


def _get(d: Any, path: tuple) -> Any:
    for k in path:
        d = d[k]
    return d


def _parent(d: Any, path: tuple) -> Any:
    return _get(d, path[:-1])


#: mapping keys that are names chosen by the user (renaming them may be valid)
NAME_MAPS = {"classes", "traces", "mix", "grid", "node_caps_w", "replica_caps_w"}


#: factors of the "scale" mutation: odd but often valid numbers, which then run
FACTORS = [0, 1e-3, 0.1, 0.5, 2, 10, 1000, 1e6]


def _reads_a_trace(d: dict) -> bool:
    wl = d.get("workload", {})
    return bool(wl.get("traces")) or any(
        isinstance(c.get(w), dict) and c[w].get("dist") == "empirical"
        for c in (wl.get("classes") or {}).values() for w in ("input_tokens", "output_tokens"))


@st.composite
def mutations(draw) -> dict:
    """A case: a command, a base that it applies to, and one mutation of the scenario (its
    values, keys or text) or of a trace it reads."""
    command = draw(st.sampled_from(["validate", "run", "run", "run", "sweep", "project"]))
    name = draw(st.sampled_from(sorted(n for n, (_, cmds) in BASES.items() if command in cmds)))
    base, _ = BASES[name]
    d = copy.deepcopy(base)
    paths = _leaves(d)
    kinds = ["value", "value", "scale", "scale", "scale", "delete", "rename", "add", "set",
             "text"] + (["trace"] * 3 if _reads_a_trace(d) else [])
    kind = draw(st.sampled_from(kinds))
    case = {"base": name, "command": command, "kind": kind, "data": d, "text": None,
            "sets": [], "trace": None, "must_fail": False, "path": None}
    if kind in ("value", "set"):
        path = draw(st.sampled_from(paths))
        old = _get(d, path)
        new = draw(st.sampled_from(ODD_VALUES))
        case["path"] = path
        number = isinstance(old, (int, float)) and not isinstance(old, bool)
        # (24 values may be an hourly curve where one number was: carbon intensity takes both)
        nonsense = (isinstance(new, bool) or (isinstance(new, float) and not math.isfinite(new))
                    or (isinstance(new, str) and new in ("", "x")) or isinstance(new, dict)
                    or (isinstance(new, list) and len(new) != 24))
        case["must_fail"] = number and nonsense
        if kind == "value":
            _parent(d, path)[path[-1]] = new
        else:
            text = "null" if new is None else json.dumps(new).replace("NaN", ".nan").replace(
                "-Infinity", "-.inf").replace("Infinity", ".inf")
            if all(isinstance(k, str) for k in path):
                case["sets"] = [f"{'.'.join(path)}={text}"]
            else:
                _parent(d, path)[path[-1]] = new
    elif kind == "scale":
        numbers = [p for p in paths if isinstance(_get(d, p), (int, float))
                   and not isinstance(_get(d, p), bool)]
        path = draw(st.sampled_from(numbers))
        old = _get(d, path)
        new = old * draw(st.sampled_from(FACTORS))
        _parent(d, path)[path[-1]] = int(new) if isinstance(old, int) else float(new)
        case["path"] = path
    elif kind == "delete":
        path = draw(st.sampled_from([p for p in paths if isinstance(p[-1], str)]))
        del _parent(d, path)[path[-1]]
        case["path"] = path
    elif kind in ("rename", "add"):
        maps = [p for p in [(), *paths] if isinstance(_get(d, p), dict)]
        path = draw(st.sampled_from(maps))
        m = _get(d, path)
        if kind == "rename" and m:
            key = draw(st.sampled_from(sorted(map(str, m))))
            typo = key[1:] + key[:1] if len(key) > 1 else key + "x"
            if typo != key and typo not in m:
                m[typo] = m.pop(key if key in m else int(key))
        else:
            m["colour"] = 1
        case["path"] = path
        case["must_fail"] = not (path and path[-1] in NAME_MAPS)
    elif kind == "text":
        text = yaml.safe_dump(d, sort_keys=False)
        how = draw(st.sampled_from(["non-utf8", "truncate", "duplicate", "deep", "bomb", "tab"]))
        if how == "non-utf8":
            i = draw(st.integers(0, len(text)))
            case["text"] = text[:i].encode() + b"\xe9\xff" + text[i:].encode()
            case["must_fail"] = True
        elif how == "truncate":
            case["text"] = text[:draw(st.integers(0, len(text)))].encode()
        elif how == "duplicate":
            first = text.splitlines()[0]
            case["text"] = (text + first + "\n").encode()
            case["must_fail"] = True
        elif how == "deep":
            case["text"] = (text + "extra: " + "[" * 5000 + "]" * 5000 + "\n").encode()
            case["must_fail"] = True
        elif how == "bomb":
            bomb = "\n".join(["zz0: &a0 [1,1,1,1,1,1,1,1,1,1]"] + [
                f"zz{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)])
            case["text"] = (bomb + "\n" + text).encode()
            case["must_fail"] = True
        else:
            case["text"] = text.replace("  ", "\t", 1).encode()
        case["how"] = how
    else:  # a trace row
        case["trace"] = {"row": draw(st.integers(1, 200)), "how": draw(st.sampled_from(
            ["tz", "negative", "empty", "huge", "text", "fields", "non-utf8", "header",
             "fraction", "zero"]))}
    return case


def _mutate_trace(case: dict, tmp: Path) -> str | None:
    """Copy the first trace the scenario reads with one bad row; return its name."""
    d = case["data"]
    wl = d.get("workload", {})
    targets = [(wl["traces"], k) for k in (wl.get("traces") or {})]
    for c in (wl.get("classes") or {}).values():
        for which in ("input_tokens", "output_tokens"):
            spec = c.get(which) if isinstance(c, dict) else None
            if isinstance(spec, dict) and spec.get("dist") == "empirical":
                targets.append((spec, "trace"))
    if not targets:
        return None
    holder, key = targets[0]
    replay = key != "trace"  # a replay reads every column; an empirical length one
    used = {0, 1, 2} if replay else {1}  # ContextTokens is the empirical base's column
    data = Path(holder[key]).read_bytes()
    eol = b"\r\n" if b"\r\n" in data else b"\n"  # the Azure traces end lines with CRLF
    lines = data.split(eol)
    row = min(case["trace"]["row"], len(lines) - 2)
    cells = lines[row].split(b",")
    how = case["trace"]["how"]
    col, value = {"tz": (0, cells[0] + b"+05:00"), "negative": (1, b"-5"), "empty": (2, b""),
                  "huge": (1, b"9" * 40), "text": (2, b"many"), "non-utf8": (0, cells[0] + b"\xe9"),
                  "fraction": (1, b"3.5"), "zero": (1, b"0")}.get(how, (None, None))
    if col is not None:
        cells[col] = value
    if how == "fields":
        cells.append(b"7")
    if how == "header":
        lines[0] = b"TIME,Context,Generated"
    else:
        lines[row] = b",".join(cells)
    out = tmp / "trace.csv"
    out.write_bytes(eol.join(lines))
    holder[key] = str(out)
    # what a reader must refuse: a bad cell it reads, bytes that are not UTF-8, a missing
    # header, a row with more fields than the header (a zero prompt is valid for empirical)
    case["must_fail"] = (how in ("non-utf8", "header", "fields")
                         or (col in used and not (how == "zero" and not replay)))
    return out.name


# ------------------------------------------------------------------ running a case
class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: float):
    def fire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


#: summary keys that are numbers whatever happened in the run
ALWAYS_NUMBERS = ("simulated_time_s", "requests_arrived", "requests_completed",
                  "requests_dropped", "requests_in_flight", "energy_gpu_j", "energy_host_j",
                  "energy_it_j", "energy_facility_j", "gpu_power_w_mean", "node_power_w_mean",
                  "node_power_w_peak", "mean_batch_size")
#: ... and these too, unless the summary warns why they are null
MEASURED_NUMBERS = ("ttft_s_p50", "ttft_s_p99", "e2e_s_p50", "energy_per_query_wh_mean")
PROJECTION_NUMBERS = ("gwh_per_day_facility_p50", "gwh_per_day_it_p50",
                      "gwh_per_day_facility_nominal", "nodes_fleet", "wh_per_query_all_in")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_ok(case: dict, out: Path, stdout: str) -> None:
    cmd = case["command"]
    if cmd == "validate":
        assert ": ok (" in stdout, stdout
        return
    if cmd == "sweep":
        table = pd.read_parquet(out / "results.parquet")
        assert len(table) == 2 and table["point_id"].is_unique
        return
    s = json.loads((out / "summary.json").read_text())
    if cmd == "project":
        for k in PROJECTION_NUMBERS:
            assert _finite(s[k]), (k, s[k])
        return
    for k in ALWAYS_NUMBERS:
        assert _finite(s[k]) and s[k] >= 0, (k, s[k])
    if not s.get("warnings"):
        for k in MEASURED_NUMBERS:
            assert _finite(s[k]), (k, s[k])
    assert (s["requests_completed"] + s["requests_dropped"] + s["requests_in_flight"]
            == s["requests_arrived"])
    req = pd.read_parquet(out / "requests.parquet")
    assert len(req) == s["requests_arrived"]
    assert (req["input_tokens"] >= 1).all() and (req["output_tokens"] >= 1).all()
    assert (req["energy_j"] >= 0).all()


FIELD_RE = re.compile(r"[A-Za-z_][\w-]*\.[\w.-]+|row \d+|column '|: [a-z_]+: |--[a-z]+|line \d+")


def check_error(case: dict, line: str, files: list[str]) -> None:
    assert line.startswith("error: ") and "\n" not in line, line
    assert any(f in line for f in files), (files, line)
    assert FIELD_RE.search(line), line  # a field path, a row, a line or an option


def run_case(case: dict, tmp: Path) -> None:
    sc = tmp / "scenario.yaml"
    trace = _mutate_trace(case, tmp) if case["trace"] else None
    if case["trace"] and trace is None:
        case["trace"] = None  # the base reads no trace: an unmutated case
    if case["text"] is not None:
        sc.write_bytes(case["text"])
    else:
        sc.write_text(yaml.safe_dump(case["data"], sort_keys=False))
    out = tmp / "out"
    args = [case["command"], str(sc)]
    if case["command"] != "validate":
        args += ["-o", str(out), "--quiet"]
    if case["command"] == "sweep":  # two points, on a field the mutation did not touch
        under_facility = (case["path"] or ("",))[:1] == ("facility",)
        grid = "simulation.seed=1,2" if under_facility else "facility.pue=1.2,1.3"
        args += ["--grid", grid, "--workers", "1"]
    if case["command"] == "project":
        args += ["--no-charts"]
    for s in case["sets"]:
        args += ["--set", s]
    with alarm(CASE_TIMEOUT_S):
        r = CliRunner().invoke(main, args)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        if isinstance(r.exception, Hang):
            pytest.fail(f"hang: {case_text(case)}")
        raise AssertionError(f"traceback: {case_text(case)}") from r.exception
    files = [sc.name] + ([trace] if trace else [])
    if r.exit_code == 0:
        assert not case["must_fail"], f"nonsense accepted: {case_text(case)}\n{r.stdout}"
        check_ok(case, out, r.stdout)
    else:
        assert r.exit_code == 2, (r.exit_code, r.stderr, case_text(case))
        check_error(case, r.stderr.strip(), files)
        assert not out.exists(), case_text(case)
    debris = [p.name for p in tmp.iterdir() if p.name.startswith(".out")]
    assert not debris, debris


def case_text(case: dict) -> str:
    c = {k: v for k, v in case.items() if k not in ("data", "text")}
    return json.dumps(c, default=str)


@pytest.fixture
def low_limits(monkeypatch):
    """Cases estimated beyond a few seconds are refused (by the limit's own one-line error)."""
    from simulator.scenario import limits

    monkeypatch.setattr(limits, "MAX_WALL_S", FUZZ_MAX_WALL_S)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=os.environ.get("FLEETSIM_FUZZ_RANDOM") != "1",
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(case=mutations())
def test_fuzz_mutated_scenarios_and_traces(low_limits, case):
    with tempfile.TemporaryDirectory(prefix="fleetsim-fuzz-") as tmp:
        run_case(case, Path(tmp))


@pytest.mark.parametrize("name", sorted(BASES))
def test_fuzz_bases_run(low_limits, name):
    """Every unmutated base passes every command it is fuzzed with (the harness is sound)."""
    base, commands = BASES[name]
    for command in commands:
        case = {"base": name, "command": command, "kind": "none", "data": copy.deepcopy(base),
                "text": None, "sets": [], "trace": None, "must_fail": False, "path": None}
        with tempfile.TemporaryDirectory(prefix="fleetsim-fuzz-") as tmp:
            run_case(case, Path(tmp))
