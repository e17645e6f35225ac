"""Agreement YAML -> ``Agreement``, with every error naming ``FILE:LINE: field.path: message``.

The YAML is composed into nodes first so each value keeps its line; pydantic's error locations
are then mapped back to the nearest node that exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from custodiet.agreements.model import Agreement
from custodiet.errors import InputError

Location = tuple[str | int, ...]
MAX_CHARS = 1_000_000


@dataclass(frozen=True)
class Marks:
    """Line numbers (1-based) of every key and value in one agreement file."""

    file: str
    lines: Mapping[Location, int]

    def line(self, loc: Location) -> int:
        """The line of ``loc``, else of its nearest enclosing field that exists."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1

    def where(self, loc: Location) -> str:
        field = ".".join(str(part) for part in loc) or "(document)"
        return f"{self.file}:{self.line(loc)}: {field}"


def load_agreement(path: Path | str) -> Agreement:
    return load_with_marks(path)[0]


def load_with_marks(path: Path | str) -> tuple[Agreement, Marks]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read the agreement ({type(exc).__name__})",
            hint="check the path and that the file is UTF-8 YAML",
            code="CUST240",
        ) from None
    return parse_agreement(text, str(path))


def parse_agreement(text: str, file: str) -> tuple[Agreement, Marks]:
    if len(text) > MAX_CHARS:
        raise InputError(
            f"{file}:1: the agreement is longer than {MAX_CHARS} characters",
            hint="an agreement names datasets and columns; it should be short",
            code="CUST242",
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise _too_deep(file, 1) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(
            f"{file}:{line}: {problem}", hint="fix the YAML syntax", code="CUST241"
        ) from None
    if not isinstance(node, yaml.MappingNode):
        raise InputError(
            f"{file}:1: the agreement must be a YAML mapping (id, purpose, reviewer, ...)",
            hint="see docs/agreements.md for the format",
            code="CUST242",
        )
    lines: dict[Location, int] = {}
    problem = _collect_lines(node, (), lines, set())
    if problem:
        raise InputError(
            f"{file}:{problem}", hint="see docs/agreements.md for the format", code="CUST242"
        )
    marks = Marks(file, lines)
    data = _constructed(text, node, marks)
    try:
        return Agreement.model_validate(data), marks
    except ValidationError as exc:
        raise InputError(
            "\n".join(
                f"{marks.where(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            ),
            hint="fix the fields named above (docs/agreements.md)",
            code="CUST243",
        ) from None


MAX_DEPTH = 16
PLAIN = frozenset({"str", "int", "float", "bool", "null", "timestamp", "seq", "map"})


def _too_deep(file: str, line: int) -> InputError:
    return InputError(
        f"{file}:{line}: the agreement is nested too deeply",
        hint="an agreement is a few levels deep: datasets -> NAME -> columns -> COLUMN",
        code="CUST242",
    )


def _constructed(text: str, node: yaml.Node, marks: Marks) -> object:
    """The Python values of the document; a value YAML cannot build (a date such as
    2030-13-45) is an error naming its line and field."""
    try:
        return yaml.SafeLoader(text).construct_document(node)
    except (ValueError, TypeError, OverflowError, yaml.YAMLError):
        pass
    for loc, child in _scalars(node, ()):
        try:
            yaml.SafeLoader("").construct_object(child, deep=True)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            raise InputError(
                f"{marks.where(loc)}: {child.value!r} is not a valid value of its kind",
                hint="write dates as YYYY-MM-DD and numbers plainly",
                code="CUST243",
            ) from None
    raise InputError(f"{marks.file}:1: the agreement's values cannot be read", code="CUST243")


def _scalars(node: yaml.Node, loc: Location) -> list[tuple[Location, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        return [pair for key, value in node.value
                for pair in _scalars(value, (*loc, str(key.value)))]  # fmt: skip
    if isinstance(node, yaml.SequenceNode):
        return [pair for i, item in enumerate(node.value) for pair in _scalars(item, (*loc, i))]
    return [(loc, node)]


def _collect_lines(
    node: yaml.Node, loc: Location, lines: dict[Location, int], seen: set[int]
) -> str | None:
    """Fill ``lines``; return ``LINE: problem`` for a repeated key or an alias, else None.

    Aliases are refused: a reviewer may apply agreements, and nested aliases expand
    exponentially when validated.
    """
    if id(node) in seen:
        return f"{node.start_mark.line + 1}: YAML aliases are not allowed in an agreement"
    if len(loc) > MAX_DEPTH:
        return f"{node.start_mark.line + 1}: the agreement is nested too deeply"
    if not node.tag.startswith("tag:yaml.org,2002:") or node.tag.rsplit(":", 1)[1] not in PLAIN:
        return f"{node.start_mark.line + 1}: YAML tags ({node.tag}) are not allowed in an agreement"
    seen.add(id(node))
    lines.setdefault(loc, node.start_mark.line + 1)
    children: list[tuple[Location, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, str(key.value))
            if child in lines:
                field = ".".join(str(part) for part in child)
                return f"{key.start_mark.line + 1}: {field}: repeated key"
            lines[child] = key.start_mark.line + 1
            children.append((child, value))
    elif isinstance(node, yaml.SequenceNode):
        children = [((*loc, index), item) for index, item in enumerate(node.value)]
    for child, value in children:
        problem = _collect_lines(value, child, lines, seen)
        if problem:
            return problem
    return None
