"""A bridge between two scenarios: which group of fields moves a metric by how much.

Pure functions over resolved scenario dicts (every default filled in, paths absolute):

* :func:`diff` lists the fields where B differs from A, as ``(dotted path, B's value)`` items;
  a key that only one side has is one item for its whole subtree (``DELETE`` when B lacks it);
* :func:`group_items` assigns each item to the first group of :data:`GROUPS` whose patterns
  match it (``other`` for the rest); groups with no item are dropped;
* :func:`sequential_points` gives the scenarios of the ordered bridge: step ``i`` is A with the
  items of groups ``1..i`` taken from B, so the last step is B and the steps sum exactly to
  ``metric(B) - metric(A)`` (a telescoping sum);
* :func:`shapley_points` and :func:`shapley_values` give the order-independent split: every
  subset of groups applied to A, each group's Shapley value its average marginal contribution
  over all orders; they too sum exactly to ``metric(B) - metric(A)``.

An item whose path does not exist in A (a class B adds, say) joins the group that creates its
parent, so that every subset of groups is a complete scenario.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from dataclasses import dataclass
from typing import Any

DELETE = object()  # an item's value when B lacks a key that A has

#: the groups of a bridge, in the order the sequential bridge applies them: (name, field path
#: patterns, with * matching one path segment); the first matching group takes an item
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("model and precision", ("model", "model.*", "deployment.precision",
                             "deployment.expert_parallel", "pools.*.model",
                             "pools.*.deployment.precision")),
    ("KV precision", ("deployment.kv_precision", "pools.*.deployment.kv_precision")),
    ("hardware", ("hardware", "hardware.*", "pools.*.hardware", "pools.*.hardware.*",
                  "simulation.calibration", "deployment.gpu_cap_w", "power", "power.*")),
    ("parallelism", ("deployment.tp", "deployment.replicas_per_node", "deployment.nodes",
                     "pools.*.deployment.*")),
    ("batch limits", ("serving", "serving.*", "pools.*.serving", "pools.*.serving.*")),
    ("SLO", ("workload.classes.*.slo", "workload.classes.*.slo.*", "projection.fleet.slo_target")),
    ("workload mix", ("workload", "workload.*")),
    ("headroom", ("projection.fleet.headroom", "projection.fleet.nodes",
                  "projection.fleet.capacity_tolerance")),
    ("idle policy", ("projection.idle", "projection.idle.*")),
    ("host", ("facility.host_idle_w", "facility.host_load_factor")),
    ("PUE", ("facility.pue",)),
    ("daily load", ("projection.queries_per_day", "projection.hourly_multipliers",
                    "projection.curve_trace", "projection.curve_trace.*")),
]
OTHER = "other"
#: fields a bridge never changes (labels)
IGNORED = ("name",)
#: the most groups an exact Shapley split may have (2^n scenarios)
MAX_SHAPLEY_GROUPS = 8


@dataclass(frozen=True)
class Item:
    path: str
    value: Any  # B's value, or DELETE

    def describe(self) -> str:
        return f"{self.path} -> (removed)" if self.value is DELETE else f"{self.path}"


def diff(a: Any, b: Any, prefix: str = "") -> list[Item]:
    """Fields where ``b`` differs from ``a`` (resolved scenario dicts), leaf by leaf; a key that
    only one side has (or a value whose type differs) is one item for its whole subtree."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Item] = []
        for k in list(a) + [k for k in b if k not in a]:
            path = f"{prefix}.{k}" if prefix else str(k)
            if path in IGNORED:
                continue
            if k not in b:
                out.append(Item(path, DELETE))
            elif k not in a:
                out.append(Item(path, b[k]))
            else:
                out += diff(a[k], b[k], path)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a and all(
            isinstance(x, dict) for x in a + b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{prefix}.{i}")
        return out
    return [] if _same(a, b) else [Item(prefix, b)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def group_of(path: str) -> str:
    for name, patterns in GROUPS:
        if any(fnmatch.fnmatchcase(path, p) for p in patterns):
            return name
    return OTHER


def _exists(d: Any, path: str) -> bool:
    cur = d
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False
    return True


def group_items(a: dict[str, Any], items: list[Item]) -> dict[str, list[Item]]:
    """Items by group, in :data:`GROUPS` order (``other`` last); an item under a key that A
    lacks joins the group of the item that creates that key."""
    groups: dict[str, list[Item]] = {}
    for it in items:
        groups.setdefault(group_of(it.path), []).append(it)
    creators = {it.path: g for g, its in groups.items() for it in its
                if not _exists(a, it.path)}
    moved: dict[str, list[Item]] = {}
    for it in items:  # in the diff's order: a parent before what lies under it
        g = group_of(it.path)
        parent = next((c for c in creators if it.path.startswith(c + ".")), None)
        moved.setdefault(creators[parent] if parent else g, []).append(it)
    order = [name for name, _ in GROUPS] + [OTHER]
    return {g: moved[g] for g in order if g in moved}


def apply(base: dict[str, Any], items: list[Item]) -> dict[str, Any]:
    """``base`` (deep-copied) with the items set (or removed)."""
    import copy

    out = copy.deepcopy(base)
    for it in items:
        parts = it.path.split(".")
        cur: Any = out
        for part in parts[:-1]:
            cur = cur[int(part)] if isinstance(cur, list) else cur.setdefault(part, {})
        last = parts[-1]
        if it.value is DELETE:
            if isinstance(cur, dict):
                cur.pop(last, None)
        elif isinstance(cur, list):
            cur[int(last)] = copy.deepcopy(it.value)
        else:
            cur[last] = copy.deepcopy(it.value)
    return out


def sequential_points(groups: dict[str, list[Item]]) -> list[tuple[str, list[Item]]]:
    """``(label, items)`` of A and of each cumulative step of the ordered bridge."""
    out: list[tuple[str, list[Item]]] = [("A", [])]
    acc: list[Item] = []
    for g, its in groups.items():
        acc = acc + its
        out.append((g, list(acc)))
    return out


def subsets(names: list[str]) -> list[frozenset[str]]:
    return [frozenset(c) for r in range(len(names) + 1) for c in itertools.combinations(names, r)]


def shapley_values(values: dict[frozenset[str], float], names: list[str]) -> dict[str, float]:
    """Each group's Shapley value from the metric of every subset of groups applied to A."""
    n = len(names)
    out = {}
    for g in names:
        others = [x for x in names if x != g]
        total = 0.0
        for r in range(n):
            w = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for c in itertools.combinations(others, r):
                s = frozenset(c)
                total += w * (values[s | {g}] - values[s])
        out[g] = total
    return out
