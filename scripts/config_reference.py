"""The config-key reference (docs/reference/config.md), generated from the code at every docs build.

A mkdocs hook (`hooks:` in mkdocs.yml) replaces the page's `<!-- config-reference -->` marker
with tables made from:
- the schema: the dataclass Hydra registers as the config (the first plain entry of
  conf/config.yaml's defaults list, looked up in Hydra's ConfigStore after
  `tau_exp.config.register_configs`), walked recursively — every field with its type, its
  default, and the comments written beside it in the source (the block above the field and the
  comment at its end; for an enum, its members' comments);
- the config groups: every `conf/<group>/*.yaml`, with the comment it opens with, which option
  conf/config.yaml picks by default, and the file itself.

Nothing here names a schema class, so the reference follows the code wherever the classes live.
`python scripts/config_reference.py` prints the generated Markdown.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import io
import json
import sys
import textwrap
import tokenize
import typing
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
MARKER = "<!-- config-reference -->"
PAGE = "reference/config.md"

# Document the code of this checkout, not whichever tau_exp the environment has installed.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def root_schema() -> type:
    """The dataclass that types the whole config, as Hydra finds it."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from tau_exp.config import register_configs

    register_configs()
    for entry in yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, str) and entry != "_self_":
            node = ConfigStore.instance().load(f"{entry}.yaml").node
            schema = OmegaConf.get_type(node)
            if schema is not None and dataclasses.is_dataclass(schema):
                return schema
    raise LookupError("conf/config.yaml's defaults list names no schema registered in Hydra's ConfigStore")


# --- what the source says beside each field --------------------------------------------------


def _class_source(cls: type) -> tuple[ast.ClassDef, dict[int, str], list[str]]:
    source = textwrap.dedent(inspect.getsource(cls))
    tree = ast.parse(source).body[0]
    assert isinstance(tree, ast.ClassDef)
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    return tree, comments, source.splitlines()


def member_comments(cls: type) -> dict[str, str]:
    """Per name assigned in the class body: its own comment (at the line's end), then the comment
    lines right above it."""
    tree, comments, lines = _class_source(cls)
    found: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
        elif isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            name = statement.targets[0].id
        else:
            continue
        above: list[str] = []
        line = statement.lineno - 1
        while line >= 1 and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        own = [
            comments[n]
            for n in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1)
            if n in comments
        ]
        found[name] = "; ".join(part for part in (" ".join(own), " ".join(above)) if part)
    return found


def class_doc(cls: type) -> str:
    """The class's own docstring (not the signature dataclasses put in __doc__ when there is none)."""
    tree, _, _ = _class_source(cls)
    return " ".join((ast.get_docstring(tree) or "").split())


def field_comment(cls: type, name: str) -> str:
    """The comment of field `name` where it is declared: in `cls` or the base class that declares it."""
    for owner in cls.__mro__:
        if name in owner.__dict__.get("__annotations__", {}):
            return member_comments(owner).get(name, "")
    return ""


# --- types and values, as a YAML or command-line user writes them ------------------------------


def type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        names = [type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"dict of {type_name(args[0])} → {type_name(args[1])}" if args else "dict"
    if hint is Any:
        return "any"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(f"`{member.value}`" for member in hint)
    return getattr(hint, "__name__", str(hint))


def value_text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if value == "???":
        return "`???` (required)"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


# --- the schema, walked from its root --------------------------------------------------------


@dataclasses.dataclass
class Section:
    path: str
    schema: type
    rows: list[tuple[str, str, str, str]]  # key, type, default, description
    same_as: dict[str, str]  # nested key → the section it repeats


def walk(schema: type, value: Any, path: str, sections: list[Section], seen: dict[str, str]) -> None:
    """One section per dataclass node, depth first; a node equal to one already shown (same class,
    same defaults: `user.server.vllm` and `model.server.vllm`) points to it instead."""
    hints = typing.get_type_hints(schema)
    section = Section(path, schema, [], {})
    sections.append(section)
    nested: list[tuple[str, type, Any]] = []
    for item in dataclasses.fields(schema):
        key = f"{path}.{item.name}" if path else item.name
        default = getattr(value, item.name)
        if dataclasses.is_dataclass(hints[item.name]):
            nested.append((key, hints[item.name], default))
            continue
        description = field_comment(schema, item.name)
        hint = hints[item.name]
        enum_type = next(
            (arg for arg in (hint, *typing.get_args(hint)) if isinstance(arg, type) and issubclass(arg, enum.Enum)),
            None,
        )
        if enum_type is not None:
            members = member_comments(enum_type)
            explained = [
                f"`{member.value}`: {members[member.name]}" for member in enum_type if members.get(member.name)
            ]
            description = description or "; ".join(explained)
        section.rows.append((key, type_name(hint), value_text(default), description))
    for key, child, default in nested:
        identity = f"{child.__module__}.{child.__qualname__}:{json.dumps(dataclasses.asdict(default), default=str, sort_keys=True)}"
        if identity in seen:
            section.same_as[key] = seen[identity]
        else:
            seen[identity] = key
            walk(child, default, key, sections, seen)


def anchor(path: str) -> str:
    return "key-" + (path.replace(".", "-") or "root")


def parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def schema_markdown(schema: type) -> str:
    sections: list[Section] = []
    walk(schema, schema(), "", sections, {})
    defaults = default_options()
    out: list[str] = []
    for section in sections:
        children = [child for child in sections if child.path and parent(child.path) == section.path]
        where = f"`{section.schema.__module__}.{section.schema.__qualname__}`"
        if not section.path:
            out.append(f"### The whole config {{#{anchor('')}}}\n")
            out.append(
                f"Schema {where}, registered in Hydra's ConfigStore. {class_doc(section.schema)}\n".replace(" \n", "\n")
            )
            out.append("| key | config group | default option |\n| --- | --- | --- |")
            for child in children:
                group = f"[`{child.path}`](#group-{child.path})" if (CONF / child.path).is_dir() else "—"
                default = defaults.get(child.path)
                out.append(
                    f"| [`{child.path}`](#{anchor(child.path)}) | {group} | {f'`{default}`' if default else '—'} |"
                )
            out.append("")
            continue
        out.append(f"### `{section.path}` {{#{anchor(section.path)}}}\n")
        out.append(f"Schema {where}. {class_doc(section.schema)}\n".replace(" \n", "\n"))
        if section.rows:
            out.append("| key | type | default | description |\n| --- | --- | --- | --- |")
            out += [
                f"| `{key}` | {cell(kind)} | {cell(default)} | {cell(text)} |"
                for key, kind, default, text in section.rows
            ]
            out.append("")
        links = [f"[`{child.path}`](#{anchor(child.path)})" for child in children]
        links += [f"`{key}`: as [`{other}`](#{anchor(other)})" for key, other in section.same_as.items()]
        if links:
            out.append("Nested: " + ", ".join(links) + "\n")
    return "\n".join(out)


# --- the config groups ------------------------------------------------------------------------


def default_options() -> dict[str, str]:
    """group → the option conf/config.yaml's defaults list picks (`override hydra/x: y` included)."""
    chosen: dict[str, str] = {}
    for entry in yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            for group, option in entry.items():
                chosen[group.removeprefix("override ").strip()] = option
    return chosen


def options_of(group: str) -> list[Path]:
    return sorted((CONF / group).glob("*.yaml"), key=lambda path: path.stem)


def opening_comment(text: str) -> str:
    """The comment a YAML file opens with, as one paragraph; an indented line (a command) as code."""
    words: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].removeprefix(" ")
        if body.startswith("@package"):
            continue
        words.append(f"`{body.strip()}`" if body.startswith("  ") else body.strip())
    return " ".join(word for word in words if word)


def groups_markdown() -> str:
    defaults = default_options()
    groups = sorted({path.parent.relative_to(CONF).as_posix() for path in CONF.rglob("*.yaml") if path.parent != CONF})
    out = [
        "The primary config, [`conf/config.yaml`](#group-config), picks one option of each group; "
        "`group=option` on the command line picks another.\n",
        "| group | options | default |\n| --- | --- | --- |",
    ]
    for group in groups:
        options = ", ".join(f"`{path.stem}`" for path in options_of(group))
        if group in defaults:
            chosen = f"`{defaults[group]}`" if defaults[group] else "none"
        else:
            chosen = "Hydra's own" if group.startswith("hydra/") else "none"
        out.append(f"| [`{group}`](#group-{group.replace('/', '-')}) | {options} | {chosen} |")
    out.append("")
    for group in groups:
        out.append(f"### `{group}` {{#group-{group.replace('/', '-')}}}\n")
        for path in options_of(group):
            text = path.read_text()
            default = " (the default)" if defaults.get(group) == path.stem else ""
            out.append(f"**`{group}={path.stem}`**{default}: {opening_comment(text) or '—'}\n")
            out.append(yaml_block(f"conf/{group}/{path.name}", text))
    out.append("### `config.yaml`: the primary config {#group-config}\n")
    out.append(yaml_block("conf/config.yaml", (CONF / "config.yaml").read_text()))
    return "\n".join(out)


def yaml_block(title: str, text: str) -> str:
    """A collapsed block (pymdownx.details) holding the file as it is."""
    body = textwrap.indent(f"```yaml\n{text.rstrip()}\n```", "    ")
    return f'??? note "{title}"\n\n{body}\n'


def render() -> str:
    return (
        "## The schema\n\n"
        + schema_markdown(root_schema())
        + "\n## The config groups {#the-config-groups}\n\n"
        + groups_markdown()
    )


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """mkdocs hook: fill the reference page's marker."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE} lost its {MARKER} marker, where the generated reference goes")
    return markdown.replace(MARKER, render())


if __name__ == "__main__":
    print(render())
