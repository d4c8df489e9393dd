"""Read a scenario file, apply ``--set`` overrides, validate, and check it can run.

Every failure becomes a one-line :class:`ScenarioError` naming the file, the dotted field path
and the problem.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from simulator.errors import ScenarioError, did_you_mean
from simulator.scenario.schema import Scenario


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is parsed as YAML (numbers, lists, ...)."""
    if "=" not in text:
        raise ScenarioError(f"override {text!r} must look like path.to.field=value", field="--set")
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path:
        raise ScenarioError(f"override {text!r} has an empty field path", field="--set")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path, value


def set_path(data: dict, path: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``path = "a.b.c"``, creating dicts as needed."""
    keys = path.split(".")
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        if not isinstance(nxt, dict):
            nxt = {} if nxt is None or not isinstance(nxt, dict) else nxt
            cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = value


def _model_at(loc: tuple, root: type[BaseModel] = Scenario) -> type[BaseModel] | None:
    """The pydantic model class reached by following ``loc`` (for did-you-mean hints)."""
    cls: Any = root
    for key in loc:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        field = cls.model_fields.get(str(key))
        if field is None:
            return None
        ann = field.annotation
        cands = [ann, *get_args(ann)]
        nxt = None
        for c in cands:
            if get_origin(c) is dict:
                vals = get_args(c)
                c = vals[1] if len(vals) == 2 else None
                # dict[str, Model]: the next key is a name; skip it
                return _model_after_dict(loc, key, c)
            if isinstance(c, type) and issubclass(c, BaseModel):
                nxt = c
                break
        cls = nxt
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _model_after_dict(loc: tuple, key: Any, value_cls: Any) -> type[BaseModel] | None:
    rest = list(loc)[list(loc).index(key) + 2:]
    if isinstance(value_cls, type) and issubclass(value_cls, BaseModel):
        return _model_at(tuple(rest), value_cls) if rest else value_cls
    return None


def format_validation_error(e: ValidationError, file: str | None, prefix: tuple = ()) -> ScenarioError:
    """First error of a pydantic ValidationError as a one-line ScenarioError."""
    err = e.errors()[0]
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    # pydantic adds union-member tags (e.g. 'str', 'ModelSpec', 'fixed') to loc; keep real keys
    path = ".".join(str(x) for x in (*prefix, *loc))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        parent = _model_at(tuple(loc[:-1]))
        hint = did_you_mean(str(loc[-1]), parent.model_fields) if parent else ""
        msg = f"unknown field{hint}"
    elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
        msg = f"{msg} (got {err['input']!r})"
    return ScenarioError(msg, file=file, field=path or None)


def scenario_from_dict(data: dict[str, Any], file: str | None = None) -> Scenario:
    """Validate a scenario given as a dict (e.g. parsed YAML)."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a mapping of sections", file=file)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise format_validation_error(e, file) from None
    return sc


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError(f"cannot read scenario: {e.strerror or e}", file=str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(f"malformed YAML: {where}{problem}", file=str(p)) from None
    if data is None:
        data = {}
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
    sc = scenario_from_dict(data, file=str(path))
    sc._base_dir = Path(path).resolve().parent  # type: ignore[attr-defined]
    sc._file = str(path)  # type: ignore[attr-defined]
    return sc
