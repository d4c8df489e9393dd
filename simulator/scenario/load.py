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


def _fields_at(loc: tuple, root: Any = Scenario) -> set[str]:
    """Field names valid at ``loc`` (through unions, dicts of models and discriminated unions),
    for did-you-mean hints."""
    models, free_key = _models_in(root), False
    for key in loc:
        if free_key:  # a name inside dict[str, Model]
            free_key = False
            continue
        nxt: list[type[BaseModel]] = []
        for m in models:
            f = m.model_fields.get(str(key))
            if f is not None:
                nxt += _models_in(f.annotation)
                free_key = free_key or _is_dict(f.annotation)
        models = nxt
        if not models:
            return set()
    return {name for m in models for name in m.model_fields}


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
    errs = e.errors()
    err = max(errs, key=lambda x: len(_real_keys(x["loc"], data)))
    loc = _real_keys(err["loc"], data)
    path = ".".join(str(x) for x in (*prefix, *loc))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _fields_at(tuple(loc[:-1])))
        msg = f"unknown field{hint}"
    elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
        msg = f"{msg} (got {err['input']!r})"
    return ScenarioError(msg, file=file, field=path or None)


def scenario_from_dict(data: dict[str, Any], file: str | None = None,
                       base_dir: str | Path | None = None) -> Scenario:
    """Validate a scenario given as a dict (e.g. parsed YAML); relative paths in it resolve
    against ``base_dir`` (default the current folder)."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a mapping of sections", file=file)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise format_validation_error(e, file, data=data) from None
    return sc.with_origin(file, base_dir)


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
    return scenario_from_dict(data, file=str(path), base_dir=Path(path).resolve().parent)
