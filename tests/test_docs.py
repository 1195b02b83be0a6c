"""The README's example and commands stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


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
