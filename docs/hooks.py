"""MkDocs hooks: the pages that have one source elsewhere are filled in at build time.

A page holds a marker comment where the generated text goes:

- ``<!-- include: DESIGN.md -->`` the named file of the repository, as it is
  (DESIGN.md and benchmarks/README.md stay the one copy of their text);
- ``<!-- generated: command-line -->`` every ``mlos-store`` command and option,
  read from the argparse parser the command itself runs (``build_parser()``);
- ``<!-- generated: sql-catalog -->`` every schema file and named query, read
  by the same loader the engine uses (``load_catalog()``).

The functions below take no MkDocs object, so ``tests/test_docs_pages.py``
calls them directly.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_MARKER = re.compile(r"<!-- (include|generated): (\S+) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs' hook: replace each marker of a page by its generated text."""
    return _MARKER.sub(lambda match: expand(match.group(1), match.group(2)), markdown)


def expand(kind: str, name: str) -> str:
    """The text a marker stands for; an unknown marker fails the build."""
    if kind == "include":
        return include(name)
    generators = {"command-line": command_line_reference, "sql-catalog": sql_catalog_reference}
    if name not in generators:
        raise ValueError(f"unknown generated section {name!r} (known: {', '.join(generators)})")
    return generators[name]()


def include(relative: str) -> str:
    """A repository file's text; must stay inside the repository.

    A ``<details>`` block (GitHub renders the Markdown inside it) is marked
    for the ``md_in_html`` extension, which does the same here.
    """
    path = (ROOT / relative).resolve()
    if ROOT not in path.parents:
        raise ValueError(f"include of {relative!r}: outside the repository")
    return path.read_text().replace("<details>", '<details markdown="1">')


def _cell(text: object) -> str:
    """Text safe in one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------- command line


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of ``parser``, by name, in the order they were added.

    argparse keeps them on its sub-parsers action and offers no public way
    to list them, hence the walk over ``_actions``.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _argument_name(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{name}`" for name in action.option_strings)
        takes = action.metavar if action.metavar else (None if action.nargs == 0 else action.dest.upper())
        if takes is not None:
            names += f" `{takes}`" + (" ..." if action.nargs in ("+", "*") else "")
        return names
    return f"`{action.metavar or action.dest}`"


def _argument_row(action: argparse.Action) -> str:
    notes = []
    if action.choices is not None:
        notes.append("one of " + ", ".join(f"`{choice}`" for choice in action.choices))
    if action.option_strings and action.required:
        notes.append("required")
    if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
        default = action.default
        if isinstance(default, tuple):
            default = "x".join(str(part) for part in default)
        notes.append(f"default `{default}`")
    return f"| {_argument_name(action)} | {_cell(action.help or '')} | {_cell('; '.join(notes))} |"


def _usage(parser: argparse.ArgumentParser) -> str:
    """``parser.format_usage()`` wrapped at 100 columns, whatever the terminal."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_usage().strip()
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def command_line_reference() -> str:
    """One section per ``mlos-store`` command: what it does, its usage line and its arguments."""
    from mlos_store.cli import build_parser

    parser = build_parser()
    lines = [_usage(parser).join(("```text\n", "\n```")), "", parser.description or "", ""]
    for name, command in subcommands(parser).items():
        lines += [f"## `{name}`", "", command.description or "", "", "```text", _usage(command), "```", ""]
        actions = [action for action in command._actions if not isinstance(action, argparse._HelpAction)]
        if actions:
            lines += ["| argument | meaning | values |", "|---|---|---|"]
            lines += [_argument_row(action) for action in actions]
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- SQL catalog


def _leading_comment(sql: str) -> str:
    """The first paragraph of a schema file's opening comment."""
    paragraph: list[str] = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        text = line[2:].strip()
        if not text:
            if paragraph:
                break
            continue
        paragraph.append(text)
    return " ".join(paragraph)


def sql_catalog_reference() -> str:
    """Every schema file, then every named query grouped by file, as the catalog loader parsed them."""
    from mlos_store.catalog import load_catalog

    catalog = load_catalog()
    lines = ["## Schema files", "", "| version | file | what it does |", "|---:|---|---|"]
    for migration in catalog.migrations:
        file = f"sql/schema/{migration.version:04d}_{migration.name}.sql"
        lines.append(f"| {migration.version} | `{file}` | {_cell(_leading_comment(migration.sql))} |")
    by_file: dict[str, list[Any]] = {}
    for query in catalog.queries.values():
        by_file.setdefault(query.source.rsplit(":", 1)[0], []).append(query)
    lines += ["", f"## Named queries ({len(catalog.queries)})", ""]
    for file in sorted(by_file):
        lines += [f"### `{file}`", "", "| query | kind | parameters | what it is for | line |",
                  "|---|---|---|---|---:|"]
        for query in by_file[file]:
            params = ", ".join(f"`${name}`" for name in sorted(query.params)) or "none"
            line = query.source.rsplit(":", 1)[1]
            lines.append(f"| `{query.name}` | `:{query.kind}` | {params} | {_cell(query.doc)} | {line} |")
        lines.append("")
    return "\n".join(lines)
