"""Strict configuration loading: YAML files into pydantic models with readable errors.

Every boundary file (run spec, model card, task card, protocol preset) is a `Strict` model:
unknown keys are rejected, and the error names the file, the line, the key and the nearest
valid key.

Every YAML text the harness reads goes through `StrictLoader` (via `parse_yaml` or
`read_yaml`), which is PyYAML's safe loader plus three refusals:

- a key repeated in one mapping (PyYAML keeps the last silently) is an error naming the
  line of both;
- aliases may not expand the document by more than `ALIAS_BUDGET` values (a 1 KB
  "billion laughs" file would otherwise expand to hundreds of millions of values as soon as
  anything walks it), and may not be recursive;
- a file larger than `MAX_YAML_BYTES` is not read at all.

Mappings are loaded as `LineDict`, a dict that remembers the line of each key, so that a
validation error can point at the line that holds the bad value.
"""

from __future__ import annotations

import os
import re
import stat
import types
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from yaml.nodes import MappingNode, Node, SequenceNode

from oversight.errors import OversightError, clip, excerpt, nearest

MAX_YAML_BYTES = 16 * 1024 * 1024
ALIAS_BUDGET = 10_000  # values that aliases may add to a document beyond its own nodes
MAX_PROBLEMS = 6  # validation problems listed in one message; the rest are counted
SECRET_FIELDS = {"api_key_env", "api_key"}  # their values are never quoted in a message


class Strict(BaseModel):
    """Unknown keys rejected, and no value of one kind silently read as another: pydantic's
    lax mode would take `true` as the number 1, `"yes"` or `"off"` as a boolean and `"5"`
    as a number, so a typo or a quoted value would change a limit without a word."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_coercion(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and (problem := _kind_problem(field.annotation, value)) is not None:
            raise ValueError(problem)
        return value


def _scalar_kinds(annotation: Any) -> set[type]:
    """The scalar types a field's annotation admits (through Optional, unions, Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_scalar_kinds(a) for a in get_args(annotation)))
    if origin is Literal:
        return {type(a) for a in get_args(annotation)}
    return {annotation} if annotation in (bool, int, float, str) else set()


_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")


def _kind_problem(annotation: Any, value: Any) -> str | None:
    kinds = _scalar_kinds(annotation)
    numeric = kinds & {int, float}
    number = "an integer" if numeric == {int} else "a number"
    if isinstance(value, bool):
        if numeric and bool not in kinds:
            return f"{str(value).lower()} is a yes/no value, not a number; write {number}"
        return None
    if float in kinds and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return None  # PyYAML reads `1e-3` (no dot) as text; pydantic turns it into the number
    if isinstance(value, str) and str not in kinds and (numeric or bool in kinds):
        wanted = "true or false" if not numeric else number
        return f"{value!r:.40} is text; write {wanted} (without quotes)"
    if bool in kinds and not numeric and isinstance(value, int | float):
        return f"{value!r:.40} is a number; write true or false"
    return None


M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------------------------------
# YAML


class LineDict(dict[Any, Any]):
    """A mapping read from YAML, with the 1-based line of each of its keys (or "--set" for
    a value that a command-line override replaced)."""

    lines: dict[Any, int | str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines = {}


class YamlRefused(yaml.YAMLError):
    """Valid YAML that the harness refuses to load (duplicate keys, alias expansion)."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            yield k
            yield v


def _check_expansion(root: Node) -> None:
    """Refuse recursive aliases and aliases that blow the document up (see module doc).

    Iterative, with one size per distinct node, so the check costs as much as the document
    as written, not as much as its expansion.
    """
    distinct: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) not in distinct:
            distinct.add(id(node))
            todo.extend(_children(node))
    limit = len(distinct) + ALIAS_BUDGET
    sizes: dict[int, int] = {}
    active: set[int] = set()  # nodes whose subtree is being sized: the current path
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            active.discard(key)
            size = 1 + sum(sizes[id(c)] for c in _children(node))
            if size > limit:
                raise YamlRefused(
                    f"its aliases (*name) would add more than {ALIAS_BUDGET:,} values to it; "
                    f"write the values out or use fewer nested aliases",
                    node.start_mark,
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in active:
            raise YamlRefused("a recursive alias (an anchor that contains itself)", node.start_mark)
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and alias bombs; mappings become LineDicts."""

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges may be overridden by explicit keys, as YAML intends
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base constructor reports unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlRefused(
                    f"duplicate key {excerpt(key)} (first at line {seen[key]}); "
                    f"each key may appear once in a mapping",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _construct_line_dict(loader: StrictLoader, node: MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    yield data  # yielded first so that aliases to this mapping resolve to the same object
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:
        try:
            key = loader.construct_object(key_node)
            data.lines[key] = key_node.start_mark.line + 1
        except TypeError:
            continue


StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_line_dict)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text → Python data through `StrictLoader`; any problem is an OversightError."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except YamlRefused as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}" if mark else ""
        raise OversightError(f"{source}{where}: refused: {exc.problem}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise OversightError(f"{source}: malformed YAML{where}: {clip(problem, 200)}.") from None
    except ValueError as exc:
        # Raised by the value constructors: int() beyond 4,300 digits, a date like 2024-13-45.
        what = "an integer of more than 4,300 digits" if "digits" in str(exc) else clip(str(exc), 120)
        raise OversightError(f"{source}: a value cannot be read ({what}).") from None
    except RecursionError:
        raise OversightError(f"{source}: nested too deeply to read (thousands of levels).") from None


def require_regular_file(path: Path) -> None:
    """Refuse what is not a plain file before opening it: a FIFO blocks the reader forever,
    and a link to /dev/zero or /dev/urandom never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the caller's open says so in its own words
    if stat.S_ISDIR(mode):
        raise OversightError(f"{path} is a directory; expected a file.")
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or
                stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")
        raise OversightError(f"{path} is not a regular file (it is {kind}); point at the data file itself.")


def read_yaml(path: Path) -> Any:
    """A YAML file (UTF-8, with or without a byte-order mark) → Python data."""
    try:
        if not os.path.isdir(path):
            require_regular_file(path)
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)  # never more: the path may be a device or a pipe
    except FileNotFoundError:
        raise OversightError(f"File not found: {path}.") from None
    except IsADirectoryError:
        raise OversightError(f"{path} is a directory; expected a YAML file.") from None
    except OSError as exc:
        raise OversightError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if len(raw) > MAX_YAML_BYTES:
        raise OversightError(
            f"{path}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; a spec, card or preset is a "
            f"small YAML file (point a task card's 'path' at large data instead)."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise OversightError(
            f"{path}, line {line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            f"save the file as UTF-8."
        ) from None
    return parse_yaml(text, str(path))


# ---------------------------------------------------------------------------------------
# Validation errors


def _fields_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid field names of the (nested) model that holds the key at `loc`."""
    model: Any = cls
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def line_of(data: Any, loc: tuple[Any, ...]) -> int | str | None:
    """The YAML line of the deepest key along `loc` that `data` remembers."""
    line: int | str | None = None
    node = data
    for part in loc:
        if isinstance(node, LineDict):
            line = node.lines.get(part, line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    return line


# How pydantic tags the members of a union in an error's location (`judges.0.str`,
# `judges.0.dict[str,any]`), and what to call each in a message.
_UNION_TAGS = {"str": "text", "int": "an integer", "float": "a number", "bool": "true or false",
               "dict": "a mapping", "list": "a list"}


def _union_member(part: Any) -> str | None:
    return _UNION_TAGS.get(part.split("[", 1)[0]) if isinstance(part, str) else None


def _merge_unions(errors: list[Any]) -> list[Any]:
    """One error per union-typed value instead of one per member it failed to match."""
    out: list[Any] = []
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        member = _union_member(loc[-1]) if loc else None
        if member is None or e["type"] == "extra_forbidden" or len(loc) < 2:
            out.append(e)
            continue
        key = loc[:-1]
        if key not in merged:
            merged[key] = {"loc": key, "type": "union", "input": e.get("input"), "members": []}
            out.append(merged[key])
        merged[key]["members"].append(member)
    for m in merged.values():
        m["msg"] = "should be " + " or ".join(dict.fromkeys(m["members"]))
    return out


def describe_validation_error(err: ValidationError, cls: type[BaseModel], source: str, data: Any = None) -> str:
    problems = []
    errors = _merge_unions(err.errors(include_url=False))
    for e in errors[:MAX_PROBLEMS]:
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = line_of(data, loc)
        at = f" (line {line})" if isinstance(line, int) else f" (from {line})" if line else ""
        if e["type"] == "extra_forbidden":
            valid = _fields_at(cls, loc)
            hint = nearest(str(loc[-1]), valid)
            near = f"; did you mean '{hint}'?" if hint else ""
            problems.append(f"unknown key '{clip(key)}'{at}{near} (valid keys: {', '.join(valid)})")
        elif e["type"] == "missing":
            problems.append(f"missing required key '{key}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            # A key pasted where its variable's name belongs must not be echoed to the terminal.
            got = "" if set(map(str, loc)) & SECRET_FIELDS else f" (got {excerpt(e.get('input'))})"
            problems.append(f"key '{key}'{at}: {msg}{got}")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS} more problem(s)")
    return f"{source}: " + "; ".join(problems) + "."


def validate(cls: type[M], data: Any, source: str) -> M:
    """Validate `data` as `cls`, turning pydantic's error into a one-paragraph OversightError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OversightError(
            f"{source}: expected a mapping of keys to values, got {type(data).__name__} {excerpt(data)}."
        )
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise OversightError(describe_validation_error(err, cls, source, data)) from None


def load_yaml(cls: type[M], path: Path) -> M:
    return validate(cls, read_yaml(path), str(path))
