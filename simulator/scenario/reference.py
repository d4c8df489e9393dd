"""Generate the scenario reference (markdown) from the pydantic schema, so it cannot drift."""

from __future__ import annotations

import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simulator.scenario.schema import Scenario


def _type_name(ann: Any) -> str:
    origin = get_origin(ann)
    if origin is typing.Annotated:
        return _type_name(get_args(ann)[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in get_args(ann))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in get_args(ann))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(ann))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if ann is type(None):
        return "null"
    return getattr(ann, "__name__", str(ann))


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """Pydantic models named anywhere inside a type annotation."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for a in get_args(ann):
        out += _models_in(a)
    return out


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        d = field.default
        if isinstance(d, BaseModel):
            return "(section defaults)"
        return f"`{d!r}`"
    if field.default_factory is not None:
        return "(see section)"
    return "**required**"


def _constraints(field) -> str:
    parts = []
    for m in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def render_reference() -> str:
    lines = ["# Scenario reference", "",
             "Generated from `simulator/scenario/schema.py` by `fleetsim reference`; do not edit.",
             "Units are SI and appear in field names (`_s`, `_w`, `_tokens`, `_gib`).", ""]
    seen: set[type] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", Scenario)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [f"## `{path}` — {model.__name__}", "", (model.__doc__ or "").strip().split("\n")[0], "",
                  "| field | type | default | range | description |", "|---|---|---|---|---|"]
        for name, f in model.model_fields.items():
            desc = (f.description or "").replace("|", "\\|")
            lines.append(f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} |"
                         f" {_constraints(f)} | {desc} |")
            sub = "" if path == "(top level)" else path + "."
            for m in _models_in(f.annotation):
                queue.append((f"{sub}{name}", m))
        lines.append("")
    lines += _device_profiles()
    return "\n".join(lines)


def _device_profiles() -> list[str]:
    """The shipped device profiles (``hardware.gpu``), read from the package data."""
    from simulator.devices import profiles

    out = ["## Device profiles (`hardware.gpu`)", "",
           "Shipped in `simulator/devices/<key>/` (`profile.yaml` plus fitted files);"
           " `docs/extending.md` says how to add one.", "",
           "| name (aliases) | memory (as the driver reports it: the KV budget's base) | HBM bandwidth"
           " | dense peaks | power limit (cap range) | node |", "|---|---|---|---|---|---|"]
    for p in profiles():
        g, n = p.gpu, p.node
        peaks = ", ".join(f"{k} {v / 1e12:g} TFLOP/s" for k, v in g.peak_flops_per_s.items())
        names = p.name + (f" ({', '.join(p.aliases)})" if p.aliases else "")
        out.append(f"| `{names}` | {g.hbm_bytes / 2**30:.0f} GiB ({g.memory_bytes / 2**30:.2f} GiB) |"
                   f" {g.hbm_bw_bytes_per_s / 1e12:g} TB/s |"
                   f" {peaks} | {g.tdp_w:g} W ({g.min_cap_w:g}-{g.tdp_w:g} W) |"
                   f" {n.gpus_per_node} GPUs, {n.rated_power_w / 1e3:g} kW rated |")
    out += ["", *(f"* `{p.name}`: {p.description}" for p in profiles()), "",
            "What is measured and what is not: the H100's coefficients are fitted on H100"
            " measurements (Vidur per-op and NCCL tables, Splitwise, ML.ENERGY); the B200's"
            " serving constants and power are fitted on ML.ENERGY B200 runs with the H100's"
            " per-op efficiencies transferred as fractions of the B200's peaks, and its power-cap"
            " (DVFS) model is the H100's shape; the H200 is DERIVED from the H100 (same compute"
            " die, H200 datasheet memory and bandwidth), not measured. Errors side by side:"
            " README (Calibration); checks against MLPerf Inference: docs/validation.md.", ""]
    return out
