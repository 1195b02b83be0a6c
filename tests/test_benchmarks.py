"""Each benchmark runs in its --quick mode, so none can rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert BENCHMARKS


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_quick_mode_prints_ratios(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert "ratio" in out and "x |" in out


RUNNER = BENCHMARKS[0].parent / "run.py"


def markdown_tables(text: str) -> dict[str, dict[str, list[str]]]:
    """{table title: {backend: [cells after the name]}} from the runner's ``### title`` tables."""
    tables: dict[str, dict[str, list[str]]] = {}
    title = None
    for line in text.splitlines():
        if line.startswith("### "):
            title = line[4:]
            tables[title] = {}
        elif title and line.startswith("| ") and not line.startswith("| backend"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[title][cells[0]] = cells[1:]
    return tables


def test_comparison_runner_quick_mode_gives_every_phase_a_number_for_every_backend(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    out = subprocess.run([sys.executable, str(RUNNER), "--quick", "--json", str(report_path)],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    report = json.loads(report_path.read_text())
    backends = report["backends"]
    measures = list(report["units"])
    assert {"mlos_store", "raw_duckdb"} <= set(backends)
    assert report["size"] == {"name": "quick", "n_trials": 100, "points_per_trial": 100, "total_points": 10_000}
    assert {"cpu_count", "python", "duckdb", "pyarrow", "date"} <= set(report["machine"])
    assert [r["backend"] for r in report["runs"]] == backends  # one round, each backend once
    for run in report["runs"]:
        assert "error" not in run, run
        assert all(isinstance(run["seconds"][m], float) and run["seconds"][m] >= 0 for m in measures[:-2])
        assert run["counts"]["ingest_telemetry"] == run["counts"]["load_telemetry"] == 10_000
    tables = markdown_tables(out)
    assert len(tables) == len(measures) == 13
    for title, rows in tables.items():
        assert list(rows) == backends, title
        for backend, (median, ratio) in rows.items():
            assert float(median.split()[0]) == pytest.approx(
                report["medians"][backend][measures[list(tables).index(title)]], rel=1e-3), (title, backend)
            assert ratio.endswith("x") and float(ratio[:-1]) > 0, (title, backend)
    assert report["ratios"]["mlos_store"] == dict.fromkeys(measures, 1.0)
