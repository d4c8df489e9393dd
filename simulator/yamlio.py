"""Read YAML input (scenarios, ``--set`` values, sweep points, device and calibration files)
safely, with one-line errors.

PyYAML's ``safe_load`` is safe against code execution but not against everything a file can
hold; this loader (a ``yaml.SafeLoader`` subclass) adds:

* **UTF-8 only**: a file that is not UTF-8 text is an error naming the line and column of the
  first bad byte (instead of a ``UnicodeDecodeError`` traceback).
* **Duplicate keys are errors** naming the key and both lines (PyYAML keeps the last one
  silently, so a second ``workload:`` would replace the first).
* **Bounded nesting** (:data:`MAX_DEPTH` levels; 10,000 nested brackets would exhaust Python's
  recursion) and **bounded size after alias expansion** (:data:`MAX_VALUES` values; a "billion
  laughs" alias bomb is small on disk but exponential once validated). Recursive aliases are
  errors.
* **Numbers as YAML 1.2 reads them**: ``1e9`` and ``80.0e9`` are floats (YAML 1.1, which PyYAML
  follows, makes them strings), so the schema can demand real numbers (pydantic strict mode).
* **Integers of more than** :data:`MAX_INT_DIGITS` **digits** are errors (Python refuses to
  convert 4,300 digits and more; no field needs more than 19).

Errors are :class:`~simulator.errors.ScenarioError` ``"<file>: <field>: <problem>"`` with the
line and column in the problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from simulator.errors import ScenarioError

#: deepest nesting of mappings and lists a file may have (scenarios use 6)
MAX_DEPTH = 64
#: most values (scalars, lists and mappings) a document may hold once aliases are expanded
MAX_VALUES = 1_000_000
#: longest integer literal, digits
MAX_INT_DIGITS = 100

_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


class _Problem(yaml.YAMLError):
    """A problem found in the composed document (duplicate key, size), with where it is."""

    def __init__(self, problem: str, path: tuple = (), mark: Any = None):
        super().__init__(problem)
        self.problem = problem
        self.path = path
        self.problem_mark = mark


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the checks of this module (see the module docstring)."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Problem(f"nested more than {MAX_DEPTH} levels deep", (),
                               self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_document(node)
        return node

    def construct_yaml_int(self, node: Any) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _Problem(f"an integer of {digits} digits is too large", (), node.start_mark)
        return super().construct_yaml_int(node)


Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _key_text(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else f"<{node.tag.rsplit(':', 1)[-1]}>"


def _check_document(root: Node) -> None:
    """Duplicate keys, recursive aliases and the expanded size of a composed document."""
    size: dict[int, int] = {}
    state: dict[int, int] = {}  # 1: being visited, 2: done

    def visit(node: Node, path: tuple) -> int:
        k = id(node)
        if state.get(k) == 2:
            return size[k]
        if state.get(k) == 1:
            raise _Problem("an alias refers to a value that contains it (recursive alias)",
                           path, node.start_mark)
        state[k] = 1
        total = 1
        if isinstance(node, MappingNode):
            seen: dict[str, Node] = {}
            for key, value in node.value:
                name = _key_text(key)
                if isinstance(key, ScalarNode) and key.tag.endswith(":merge"):
                    total += visit(value, path)
                    continue
                if name in seen:
                    raise _Problem(f"duplicate key {name!r} (line {seen[name].start_mark.line + 1}"
                                   f" and line {key.start_mark.line + 1}); each key may appear"
                                   " once", (*path, name), key.start_mark)
                seen[name] = key
                total += visit(key, (*path, name)) + visit(value, (*path, name))
                if total > MAX_VALUES:
                    break
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                total += visit(item, (*path, i))
                if total > MAX_VALUES:
                    break
        state[k] = 2
        size[k] = total
        if total > MAX_VALUES:
            raise _Problem(f"aliases expand this to more than {MAX_VALUES:,} values (an alias"
                           " bomb?)", path, node.start_mark)
        return total

    visit(root, ())


def _where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def loads(text: str, file: str | None = None) -> Any:
    """Parse YAML text with the checks of this module; errors are one-line ScenarioErrors."""
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
    except _Problem as e:
        field = ".".join(str(p) for p in e.path) or None
        raise ScenarioError(f"{_where(e)}{e.problem}", file=file, field=field) from None
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(f"malformed YAML: {_where(e)}{problem}", file=file) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops this first
        raise ScenarioError(f"nested more than {MAX_DEPTH} levels deep", file=file) from None


def decode(data: bytes, file: str | None = None) -> str:
    """UTF-8 text of a file's bytes (a BOM is dropped); an error names the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ScenarioError(f"not UTF-8 text: byte 0x{data[e.start]:02x} at line {line},"
                            f" column {col}", file=file) from None


def read(path: str | Path, what: str = "file") -> Any:
    """Read and parse a YAML file (``what`` names it in errors: 'scenario', 'points' ...)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise ScenarioError(f"cannot read {what}: it is a folder, not a file", file=str(p)) from None
    except OSError as e:
        raise ScenarioError(f"cannot read {what}: {e.strerror or e}", file=str(p)) from None
    return loads(decode(data, str(p)), str(p))


def parse_value(raw: str) -> Any:
    """A ``--set``/``--grid`` value: YAML (numbers, lists, mappings); text that is not valid
    YAML is kept as the string it is. Size, nesting and duplicate-key errors are raised."""
    try:
        return yaml.load(raw, Loader=Loader)  # noqa: S506
    except _Problem as e:
        raise ScenarioError(f"value {raw[:40]!r}: {e.problem}", field="--set") from None
    except yaml.YAMLError:
        return raw
