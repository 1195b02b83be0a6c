"""The fenced code blocks of the documentation pages (docs/**/*.md), for the tests that run them.

A block may be named by the comment on the line before it,
``<!-- example: NAME -->``, so a test can find it and check what it made;
``<!-- output -->`` before a ``text`` block marks it as what the python
block above it prints (one such block per run of that block).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
_MARKER = re.compile(r"^<!-- (?P<what>example|output)(?:: (?P<name>[\w-]+))? -->$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    marker: str | None  # "example" or "output"
    name: str | None
    size: int  # lines between the fences

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, in order, with the marker comment just above it."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index] != "```":
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"{page.relative_to(ROOT)}:{start + 1}: unclosed code block")
        index += 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = _MARKER.match(lines[before]) if before >= 0 else None
        found.append(Block(page, start + 1, fence.group("lang"), "".join(line + "\n" for line in body),
                           marker.group("what") if marker else None, marker.group("name") if marker else None,
                           len(body)))
    return found


def named(name: str) -> Block:
    """The one block of the docs named ``name``."""
    matches = [block for page in pages() for block in blocks(page) if block.name == name]
    assert len(matches) == 1, f"docs: {len(matches)} blocks named {name!r}"
    return matches[0]


def jsonc(text: str) -> object:
    """A JSONC text (JSON with ``//`` line comments outside strings) as Python values."""
    kept = [re.sub(r'^((?:[^"/]|"(?:[^"\\]|\\.)*")*)//.*$', r"\1", line) for line in text.splitlines()]
    return json.loads("\n".join(kept))


def mlos_bench_storage_config() -> object:
    """The storage config the mlos_bench how-to tells a user to write."""
    return jsonc(named("mlos-bench-storage-config").body)


def mlos_bench_command() -> list[str]:
    """The ``mlos-store-bench`` command line of the mlos_bench how-to, split into words."""
    return shlex.split(named("mlos-bench-command").body)
