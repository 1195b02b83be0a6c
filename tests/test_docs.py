"""The README's example, commands and output stay true; it stays short, and its links resolve."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mlos_store import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
#: The README sells and starts you in a minute; the rest is in docs/.
README_MAX_BYTES = 8 * 1024


def _block_after(marker: str) -> str:
    match = re.search(re.escape(marker) + r"\s*```sh\n(.*?)\n```", README, re.S)
    assert match, f"README has no sh block after {marker}"
    return match.group(1).strip()


def test_readme_usage_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = re.search(r"## Usage\s*```python\n(.*?)\n```", README, re.S)
    assert example, "README has no usage example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example.group(1), "README.md", "exec"), namespace)
    assert namespace["trial_ids"] == [1]
    assert namespace["scores"] == [{"latency_ms": 1.25}]
    assert namespace["table"].column("config.io_threads").to_pylist() == [4]  # type: ignore[attr-defined]
    assert namespace["points"].column("value").to_pylist() == [71.5]  # type: ignore[attr-defined]
    assert (tmp_path / "results.duckdb").exists()


def test_ci_runs_the_readme_test_command() -> None:
    command = _block_after("<!-- test-command -->")
    assert "pytest" in command and "pip install" in command
    extracted = subprocess.run(
        ["awk", "/<!-- test-command -->/{found=1; next} found && /^```sh/{inblock=1; next} "
                "inblock && /^```/{exit} inblock{print}", str(ROOT / "README.md")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == command
    assert "test-command" in (ROOT / ".ci" / "run").read_text()


def test_readme_demo_command_names_the_demo_module() -> None:
    assert "python -m mlos_store.demo" in _block_after("<!-- demo-command -->")


def test_demo_runs_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    run = [sys.executable, "-m", "mlos_store.demo", str(path), "--trials", "5", "--seed", "3"]
    first = subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "next trial id 1" in first and "5 completed trials" in first
    assert "FAILED" in first and "SUCCEEDED" in first
    second = subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "next trial id 6" in second and "10 completed trials" in second


def test_readme_stays_short() -> None:
    assert len(README.encode()) <= README_MAX_BYTES, "move the new text into a page of docs/ and link to it"


def _anchors(page: Path) -> set[str]:
    """The heading anchors MkDocs' toc gives a page (lower case, punctuation dropped, spaces as -)."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading.lower()).strip()) for heading in headings}


def test_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README links to {link}, which does not exist"
        if anchor and target.parent == ROOT / "docs":
            assert anchor in _anchors(target), f"README links to {link}: no such heading"


def test_readme_command_line_output_is_what_the_commands_print(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    demo_command = shlex.split(_block_after("<!-- cli-demo-command -->"))
    examples = re.findall(r"```console\n\$ (mlos-store .*?)\n(.*?)```", README, re.S)
    assert demo_command[0] == "mlos-store" and examples
    for command in [demo_command, *(shlex.split(command) for command, _ in examples)]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert cli.main(command[1:]) == 0, command
        assert err.getvalue() == "", command
        if command is not demo_command:
            shown = dict(examples)[shlex.join(command)]
            assert _without_file_size(out.getvalue()) == _without_file_size(shown), command


def _without_file_size(text: str) -> str:
    return re.sub(r"^file size .*$", "file size (varies)", text, flags=re.M)


# ---------------------------------------------------------------- DESIGN.md names what exists

DESIGN = (ROOT / "DESIGN.md").read_text()
#: Where DESIGN.md's file names live. A module may have become a package (engine.py -> engine/).
SOURCE_DIRS = [ROOT, ROOT / "mlos_store", *(p.parent for p in (ROOT / "mlos_store").glob("*/__init__.py")),
               ROOT / "benchmarks", ROOT / "tests", ROOT / "examples", ROOT / "sql", ROOT / "sql" / "schema",
               ROOT / "sql" / "queries"]


def _exists(name: str) -> bool:
    """A file name or glob (``bench_*.py``) DESIGN.md uses: some file matches it, or the package it became."""
    for folder in SOURCE_DIRS:
        if any(folder.glob(name)) or (name.endswith(".py") and (folder / name[:-3] / "__init__.py").exists()):
            return True
    return False


def _source_words() -> set[str]:
    files = [*(ROOT / "mlos_store").rglob("*.py"), *(ROOT / "sql").rglob("*.sql"), *(ROOT / "benchmarks").glob("*.py")]
    return {word for path in files for word in re.findall(r"\w+", path.read_text())}


def test_design_names_only_files_that_exist() -> None:
    names = set(re.findall(r"[\w/*]+\.(?:py|sql)\b", DESIGN))
    assert len(names) > 20
    assert sorted(name for name in names if not _exists(name.replace("NNNN", "[0-9]" * 4))) == []


def test_design_names_only_queries_and_code_that_exist() -> None:
    """Every identifier DESIGN.md quotes (a query, a function, ``module.name``) is still in the sources."""
    from mlos_store.catalog import load_catalog

    queries = set(load_catalog().queries)
    quoted = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DESIGN, flags=re.S))
    identifiers = {word for text in quoted for word in re.findall(r"\b[a-z]\w*_\w+\b|(?<=\.)\w+\b", text)
                   if not re.search(r"\.(py|sql|json)$", text)}
    assert queries & identifiers  # the queries of the walk-through are among them
    words = _source_words()
    assert sorted(name for name in identifiers if name not in queries and name not in words) == []
