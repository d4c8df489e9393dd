"""Read a scenario file, apply ``--set`` overrides, validate, and check it can run.

Every failure becomes a one-line :class:`ScenarioError` naming the file, the dotted field path
and the problem.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from simulator import yamlio
from simulator.errors import ScenarioError, did_you_mean
from simulator.scenario.schema import Scenario
from simulator.yamlio import parse_value


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is parsed as YAML (numbers, lists, ...)."""
    if "=" not in text:
        raise ScenarioError(f"override {text!r} must look like path.to.field=value", field="--set")
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path:
        raise ScenarioError(f"override {text!r} has an empty field path", field="--set")
    return path, (parse_value(raw) if raw.strip() else None)


def set_path(data: dict, path: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``path = "a.b.c"``, creating dicts as needed; a
    number indexes a list the file already has (``pools.1.role``)."""
    keys = path.split(".")
    cur: Any = data
    for i, k in enumerate(keys):
        if isinstance(cur, list):
            if not (k.isdigit() and int(k) < len(cur)):
                where = ".".join(keys[:i])
                raise ScenarioError(f"override {path!r}: {where} is a list of {len(cur)}; give"
                                    f" an index 0..{len(cur) - 1} after it", field="--set")
            if i == len(keys) - 1:
                cur[int(k)] = value
                return
            cur = cur[int(k)]
            continue
        if i == len(keys) - 1:
            break
        nxt = cur.get(k)
        if isinstance(nxt, list):  # indexed at the next key
            cur = nxt
            continue
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None or not isinstance(nxt, dict) else nxt
            cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = value


def _fields_at(loc: tuple, root: Any = Scenario) -> set[str]:
    """Field names valid at pydantic's raw error path ``loc`` (through unions, dicts of models
    and discriminated unions: a union-member tag in the path, such as ``'fixed'`` or
    ``'ModelSpec'``, narrows the union to that member), for did-you-mean hints."""
    models, free_key = _models_in(root), False
    for key in loc:
        if free_key:  # a name inside dict[str, Model]
            free_key = False
            continue
        named = [m for m in models if str(key) in m.model_fields]
        if named:
            nxt: list[type[BaseModel]] = []
            for m in named:
                ann = m.model_fields[str(key)].annotation
                nxt += _models_in(ann)
                free_key = free_key or _is_dict(ann)
            models = nxt
            if not models:
                return set()
            continue
        tagged = [m for m in models if key in (m.__name__, _tag_of(m))]
        if tagged:
            models = tagged
        # else: another tag of pydantic's ('function-after[...]', 'list[...]', an index)
    return {name for m in models for name in m.model_fields}


def _tag_of(model: type[BaseModel]) -> Any:
    """The discriminator value of a union member (its ``dist: Literal['x']``), if any."""
    f = model.model_fields.get("dist")
    args = get_args(f.annotation) if f is not None else ()
    return args[0] if len(args) == 1 else None


def _is_dict(ann: Any) -> bool:
    return get_origin(ann) is dict or any(_is_dict(a) for a in get_args(ann))


def _models_in(ann: Any) -> list[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for a in get_args(ann):
        out += _models_in(a)
    return out


def _real_keys(loc: tuple, data: Any) -> tuple:
    """Drop the union-member tags pydantic puts in error paths ('fixed', 'str', 'ModelSpec',
    'function-after[...]'): keep only the keys that exist in the input data (plus a final
    unknown/missing key)."""
    out: list = []
    cur = data
    for i, key in enumerate(loc):
        if isinstance(cur, dict):
            if key in cur:
                out.append(key)
                cur = cur[key]
            elif i == len(loc) - 1 or not any(k in cur for k in loc[i + 1:] if isinstance(k, str)):
                if not (isinstance(key, str) and (key.startswith("function-") or key[:1].isupper()
                                                  or key in _TAGS)):
                    out.append(key)
        elif isinstance(cur, list) and isinstance(key, int) and key < len(cur):
            out.append(key)
            cur = cur[key]
    return tuple(out)


_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "fixed", "uniform", "exponential",
         "histogram",
         "lognormal", "empirical", "literal"}


def format_validation_error(e: ValidationError, file: str | None, prefix: tuple = (),
                            data: Any = None) -> ScenarioError:
    """First error of a pydantic ValidationError as a one-line ScenarioError."""
    # a value failing a union is reported once per member: the deepest real path is the one
    # the user meant (e.g. model.layers, not "model: should be a string")
    # an unknown key is reported first: a misspelled section or key is the cause of the
    # "missing" errors that follow from it (``workolad:`` leaves workload.rate_per_s unset)
    errs = e.errors()
    unknown = [x for x in errs if x["type"] == "extra_forbidden"]
    if unknown:
        errs = unknown
    # at equal depth, a member's own complaint ("heads do not divide hidden_size") beats another
    # member's type mismatch ("should be a valid string": the value was never meant as one)
    err = max(errs, key=lambda x: (len(_real_keys(x["loc"], data)), not x["type"].endswith("_type")))
    loc = _real_keys(err["loc"], data)
    path = ".".join(str(x) for x in (*prefix, *loc))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field" + _unknown_hint(str(loc[-1]), _fields_at(tuple(err["loc"][:-1]))
                                              if not prefix else set())
    elif err["type"] == "union_tag_not_found":
        msg = f"needs {err['ctx']['discriminator']} (the distribution: fixed, uniform," \
              " exponential, lognormal or empirical)"
    elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
        msg = f"{msg} (got {_short(err['input'])})"
    return ScenarioError(msg, file=file, field=path or None)


def _unknown_hint(word: str, fields: set[str]) -> str:
    """' (did you mean 'x'?)', or the valid names when none is close."""
    hint = did_you_mean(word, fields)
    if hint or not fields:
        return hint
    return f" (valid here: {', '.join(sorted(fields))})" if len(fields) <= 16 else ""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def scenario_from_dict(data: dict[str, Any], file: str | None = None,
                       base_dir: str | Path | None = None) -> Scenario:
    """Validate a scenario given as a dict (e.g. parsed YAML); relative paths in it resolve
    against ``base_dir`` (default the current folder)."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a mapping of sections", file=file)
    sections = Scenario.model_fields
    for key in data:
        if key not in sections:
            raise ScenarioError("unknown section" + _unknown_hint(str(key), set(sections)),
                                file=file, field=str(key))
    if data.get("workload") is None:
        raise ScenarioError("missing: a scenario needs a workload section (arrival, rate_per_s,"
                            " classes)", file=file, field="workload")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise format_validation_error(e, file, data=data) from None
    return sc.with_origin(file, base_dir)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A scenario file's mapping of sections (UTF-8, no duplicate keys; :mod:`simulator.yamlio`)."""
    p = Path(path)
    data = yamlio.read(p, "scenario")
    if data is None:
        raise ScenarioError("the scenario is empty (no sections); see docs/scenario-reference.md",
                            file=str(p))
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a mapping of sections", file=str(p))
    return data


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file; relative paths in it resolve against it."""
    data = copy.deepcopy(read_yaml(path))
    data.pop("sweep", None)  # a sweep section drives `fleetsim sweep`, not a single run
    for text in overrides:
        key, value = parse_override(text)
        set_path(data, key, value)
    sc = scenario_from_dict(data, file=str(path), base_dir=Path(path).resolve().parent)
    check_trace_files(sc)
    return sc


def check_trace_files(sc: Scenario) -> None:
    """Every trace the scenario names (replayed, or read by an empirical length) exists: else one
    line naming the scenario file and the field (what is wrong inside a trace is the trace
    reader's to say, naming the trace file)."""
    wl = sc.workload
    named = [(f"workload.traces.{k}", v, None) for k, v in (wl.traces or {}).items()]
    for name, cls in wl.classes.items():
        for which in ("input_tokens", "output_tokens"):
            spec = getattr(cls, which)
            t = getattr(spec, "trace", None)
            if isinstance(t, str):
                named.append((f"workload.classes.{name}.{which}.trace", t, getattr(spec, "column", None)))
    for field, text, column in named:
        p = Path(text).expanduser()
        p = p if p.is_absolute() else sc.base_dir / p
        if not p.exists():
            raise ScenarioError(f"trace file not found: {p}", file=sc.file, field=field)
        if column is None or not p.is_file():
            continue
        try:  # the header only; anything unreadable is the trace reader's to report
            with p.open(encoding="utf-8") as f:
                header = [c.strip() for c in f.readline().rstrip("\r\n").split(",")]
        except (OSError, UnicodeDecodeError):
            continue
        if header != [""] and column not in header:
            raise ScenarioError(f"column {column!r} is not in {p.name}; its columns:"
                                f" {', '.join(map(repr, header))}", file=sc.file,
                                field=field[: -len("trace")] + "column")
