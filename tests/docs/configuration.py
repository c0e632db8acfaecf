"""docs/configuration.md, generated from the pydantic-settings classes of the product.

Every `BaseSettings` subclass defined in the packages `shared`, `services` and `ui` is found by
walking the packages (no list of class paths: modules move), and rendered with its env prefix
and, per field, the variable(s) it is read from, its type, default and description. The
description is the comment block right above the field in the class body, any comment on the
field's own lines, and `Field(description=...)`.

    .venv/bin/python -m tests.docs.configuration > docs/configuration.md

`tests/docs/test_configuration.py` fails when docs/configuration.md differs from `render()`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import io
import json
import pkgutil
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

import annotated_types
from pydantic import AliasChoices, AliasPath, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, NoDecode

PACKAGES = ("shared", "services", "ui")
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python -m tests.docs.configuration > docs/configuration.md"
# Comments that instruct tools rather than describe the field.
_PRAGMAS = ("fmt:", "type:", "noqa", "pragma:", "pyright:")


@dataclass(frozen=True)
class Setting:
    field: str
    env_names: tuple[str, ...]  # the variables read, in the order pydantic-settings tries them
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class SettingsClass:
    module: str
    name: str
    env_prefix: str
    env_files: tuple[str, ...]
    doc: str
    settings: tuple[Setting, ...]

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"


# ---- finding the classes ------------------------------------------------------------------


def _module_names(package: str) -> Iterator[str]:
    """`package` and every module below it (subpackages are imported to be walked)."""

    def fail(name: str) -> None:
        raise ImportError(f"cannot import package {name} while walking {package}")

    root = importlib.import_module(package)
    yield package
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.", onerror=fail):
        yield info.name


def _class_bases(module: str) -> dict[str, list[str]]:
    """Classes defined at the top level of `module`'s source -> the last name of each base,
    read without importing the module (some modules are scripts, e.g. Streamlit pages)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return {}
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = []
            for base in node.bases:
                if isinstance(base, ast.Name):
                    names.append(base.id)
                elif isinstance(base, ast.Attribute):
                    names.append(base.attr)
            out[node.name] = names
    return out


def settings_classes(packages: tuple[str, ...] = PACKAGES) -> list[type[BaseSettings]]:
    """Every BaseSettings subclass defined in `packages`, sorted by module path and name.

    The sources are read first: only modules defining a class whose bases lead (by name) to
    `BaseSettings` are imported, then each of their classes is checked with `issubclass`.
    """
    bases: dict[str, dict[str, list[str]]] = {}
    for package in packages:
        for module in _module_names(package):
            bases[module] = _class_bases(module)
    settings_names = {"BaseSettings"}
    while True:  # classes deriving from a settings class are settings classes too
        more = {
            cls
            for classes in bases.values()
            for cls, parents in classes.items()
            if set(parents) & settings_names
        }
        if more <= settings_names:
            break
        settings_names |= more
    found: list[type[BaseSettings]] = []
    for module_name, classes in bases.items():
        if not set(classes) & settings_names:
            continue
        imported = importlib.import_module(module_name)
        for obj in vars(imported).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseSettings)
                and obj is not BaseSettings
                and obj.__module__ == module_name
            ):
                found.append(obj)
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


# ---- reading one class ----------------------------------------------------------------------


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    """The environment variables pydantic-settings reads `field` from: its validation alias(es)
    if it has any (prefixed only when `env_prefix_target` says so), else prefix + field name;
    upper-cased unless the class is case-sensitive."""
    config = cls.model_config
    prefix = config.get("env_prefix", "")
    target = config.get("env_prefix_target", "variable")
    alias = field.validation_alias
    aliases: list[str] = []
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            head = choice.path[0] if isinstance(choice, AliasPath) else choice
            aliases.append(str(head))
    elif isinstance(alias, AliasPath):
        aliases.append(str(alias.path[0]))
    elif isinstance(alias, str):
        aliases.append(alias)
    alias_prefix = prefix if target in ("alias", "all") else ""
    out = [alias_prefix + a for a in aliases]
    by_name = config.get("validate_by_name") or config.get("populate_by_name")
    if not aliases or by_name:
        out.append((prefix if target in ("variable", "all") else "") + name)
    if not config.get("case_sensitive", False):
        out = [n.upper() for n in out]
    return tuple(dict.fromkeys(out))


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment lines right above its assignment in the class body, plus any
    comment on the assignment's own lines."""
    source = textwrap.dedent(inspect.getsource(cls))
    comment_at: dict[int, str] = {}
    code_lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comment_at[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in skip:
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.ClassDef)
    out: dict[str, str] = {}
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above: list[str] = []
        line = stmt.lineno - 1
        while line in comment_at and line not in code_lines:
            above.insert(0, comment_at[line])
            line -= 1
        end = stmt.end_lineno or stmt.lineno
        inline = [comment_at[n] for n in range(stmt.lineno, end + 1) if n in comment_at]
        text = [c for c in (*above, *inline) if c and not c.startswith(_PRAGMAS)]
        if text:
            out[stmt.target.id] = " ".join(text)
    return out


def type_name(tp: Any) -> str:
    """A type annotation as a reader writes it: `float`, `str | None`, `list[str]`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) if isinstance(a, str) else repr(a) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", repr(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]"
    if tp is type(None):
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp)


def _number(value: object) -> str:
    return json.dumps(value) if isinstance(value, int | float) else str(value)


def _comma_separated(field: FieldInfo) -> bool:
    """A list read from one comma-separated variable (`NoDecode`), not from JSON."""
    return any(m is NoDecode or isinstance(m, NoDecode) for m in field.metadata)


def bounds(field: FieldInfo) -> list[str]:
    """The field's numeric and length bounds (`> 0`, `<= 100`, `length >= 1`) and whether a list
    is written comma-separated."""
    out = ["comma-separated"] if _comma_separated(field) else []
    for m in field.metadata:
        if isinstance(m, annotated_types.Gt):
            out.append(f"> {_number(m.gt)}")
        elif isinstance(m, annotated_types.Ge):
            out.append(f">= {_number(m.ge)}")
        elif isinstance(m, annotated_types.Lt):
            out.append(f"< {_number(m.lt)}")
        elif isinstance(m, annotated_types.Le):
            out.append(f"<= {_number(m.le)}")
        elif isinstance(m, annotated_types.MinLen):
            out.append(f"length >= {m.min_length}")
        elif isinstance(m, annotated_types.MaxLen):
            out.append(f"length <= {m.max_length}")
    return out


def _with_bounds(type_text: str, limits: list[str]) -> str:
    return f"{type_text} ({', '.join(limits)})" if limits else type_text


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in the environment; "required" when there is none."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Enum):
        text = str(value.value)
    elif isinstance(value, PurePath):
        text = str(value)
    elif isinstance(value, list | tuple) and _comma_separated(field):
        text = ",".join(map(str, value))  # read comma-separated, not as JSON
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value)
    else:
        text = str(value)
    return f"`{text}`" if text else "empty"


def describe(cls: type[BaseSettings]) -> SettingsClass:
    comments = _field_comments(cls)
    rows = []
    for name, field in cls.model_fields.items():
        parts = [comments.get(name, ""), field.description or ""]
        rows.append(
            Setting(
                field=name,
                env_names=env_names(cls, name, field),
                type=_with_bounds(f"`{type_name(field.annotation)}`", bounds(field)),
                default=default_text(field),
                description=" ".join(p for p in parts if p),
            )
        )
    env_file = cls.model_config.get("env_file")
    files = (env_file,) if isinstance(env_file, str | PurePath) else tuple(env_file or ())
    return SettingsClass(
        module=cls.__module__,
        name=cls.__qualname__,
        env_prefix=cls.model_config.get("env_prefix", ""),
        env_files=tuple(str(f) for f in files),
        doc=inspect.cleandoc(cls.__doc__) if cls.__doc__ else "",
        settings=tuple(rows),
    )


# ---- rendering ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


NO_DESCRIPTION = "\N{EN DASH}"
INTRO = """\
# Configuration

<!-- Generated from the pydantic-settings classes by `{regenerate}`.
     Do not edit by hand: tests/docs/test_configuration.py fails when this file is stale. -->

Every setting of every process (services, trainer, UI, the local launcher) is a field of a
pydantic-settings class, read when the process starts:

1. from the process's environment variables;
2. else from a `.env` file in the process's working directory (`.env.example` is a template);
3. else the default below.

Variable names are not case-sensitive. A class reads only the variables in its table (its
prefix, `RECSYS_`, `GATEWAY_`, ..., plus the field name) and ignores all others; a field with
several names is read from the first one that is set. List and dict values are written as JSON
(`RECSYS_EXCLUDE_EVENT_TYPES=["purchase"]`), unless the type column says comma-separated. A
value outside the bounds in the type column stops the process at start with a validation error
naming the field. `docker compose` and `deploy/k8s` pass the same variables
(`docker-compose.yml`, `deploy/k8s/config.yaml`, `deploy/k8s/secret.yaml`); how to run and
operate the stack: [operations.md](operations.md).

A description is the comment above the field in its source; "{none}" where the source has none.
"""


def render() -> str:
    classes = [describe(cls) for cls in settings_classes()]
    out = [INTRO.format(regenerate=REGENERATE, none=NO_DESCRIPTION)]
    out.append("| class | module | env prefix | variables |")
    out.append("|---|---|---|---|")
    for c in classes:
        prefix = f"`{c.env_prefix}`" if c.env_prefix else "none"
        out.append(
            f"| [{c.name}](#{c.name.lower()}) | `{c.module}` | {prefix} | {len(c.settings)} |"
        )
    readers: dict[str, list[str]] = {}
    for c in classes:
        for s in c.settings:
            for env in s.env_names:
                readers.setdefault(env, []).append(f"`{c.name}.{s.field}`")
    shared = {env: who for env, who in readers.items() if len(who) > 1}
    if shared:
        out.append("")
        out.append("Variables read by more than one class (one value configures all of them):")
        out.append("")
        for env in sorted(shared):
            out.append(f"- `{env}`: {', '.join(shared[env])}")
    for c in classes:
        out.append("")
        out.append(f"## {c.name}")
        out.append("")
        prefix = f"`{c.env_prefix}`" if c.env_prefix else "none (each field's name)"
        files = ", ".join(f"`{f}`" for f in c.env_files) or "none"
        out.append(f"`{c.path}`. Env prefix: {prefix}. Env file: {files}.")
        if c.doc:
            out.append("")
            out.append(c.doc)
        out.append("")
        out.append("| variable | type | default | description |")
        out.append("|---|---|---|---|")
        for s in c.settings:
            names = ", ".join(f"`{n}`" for n in s.env_names)
            description = s.description or NO_DESCRIPTION
            out.append(
                f"| {_cell(names)} | {_cell(s.type)} | {_cell(s.default)} | {_cell(description)} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
