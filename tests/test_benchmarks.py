"""Each benchmark runs in its --quick mode, so none can rot unnoticed."""

from __future__ import annotations

import importlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert BENCHMARKS


#: Benchmarks that need the [mlos-bench] extra.
NEEDS_MLOS_BENCH = {"bench_mlos_bench_loop.py"}


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_quick_mode_prints_ratios(script: Path) -> None:
    if script.name in NEEDS_MLOS_BENCH:
        pytest.importorskip("mlos_bench", reason="mlos_bench is not installed: pip install -e '.[test,mlos-bench]'")
    out = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert "ratio" in out and "x |" in out


RUNNER = BENCHMARKS[0].parent / "run.py"


def test_mlos_bench_loop_quick_mode_times_mlos_store_against_sqlite() -> None:
    """The loop benchmark gives numbers for MlosStoreStorage and the SQLite baseline (quick: 12 trials)."""
    pytest.importorskip("mlos_bench", reason="mlos_bench is not installed: pip install -e '.[test,mlos-bench]'")
    out = subprocess.run([sys.executable, str(RUNNER.parent / "bench_mlos_bench_loop.py"), "--quick"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert "4 configs x 3 repeats = 12 trials" in out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| backend")}
    for backend in ("sqlite", "mlos_store"):
        loop_s, loop_ratio, load_s, _, size_kb, _ = (cell.strip() for cell in rows[backend])
        assert float(loop_s) > 0 and float(load_s) > 0 and float(size_kb) > 0 and loop_ratio.endswith("x")


def markdown_tables(text: str) -> dict[str, dict[str, list[str]]]:
    """{table title: {backend: [cells after the name]}} from the runner's ``### title`` tables."""
    tables: dict[str, dict[str, list[str]]] = {}
    title = None
    for line in text.splitlines():
        if line.startswith("#"):
            title = line[4:] if line.startswith("### ") else None
            if title:
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
    overview = out.split("## Overview", 1)[1]
    assert all(f"| {measure} |" in overview for measure in measures)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Any:
    """benchmarks/run.py imported as a module (its backends import their neighbours by name)."""
    monkeypatch.syspath_prepend(str(RUNNER.parent))
    return importlib.import_module("run")


def partial_store_backend(runner: Any, **limits: int) -> Any:
    """The mlos_store backend with the optional limits a slow backend sets (ingest_point_budget, max_trials)."""
    store = importlib.import_module("backend_store").StoreBackend()
    for name, value in limits.items():
        setattr(store, name, value)
    store.backfilled = 0

    def backfill_telemetry(batches: Any) -> int:
        store.backfilled += len(batches)
        return int(store.ingest_telemetry(batches))

    store.backfill_telemetry = backfill_telemetry
    return store


def test_runner_times_ingest_within_the_budget_and_backfills_the_rest(runner: Any, tmp_path: Path) -> None:
    backend = partial_store_backend(runner, ingest_point_budget=50)
    result = runner.run_round(backend, 12, 10, tmp_path)
    assert backend.backfilled == 12 - 5  # 50 points = the first 5 trials timed
    assert result.extrapolated == ["ingest_telemetry"]
    assert result.counts["load_telemetry"] == result.counts["ingest_telemetry"] == 120
    assert result.scale == 1 and result.trials_run == 12


def test_runner_scales_a_backend_with_max_trials_and_marks_every_phase(runner: Any, tmp_path: Path) -> None:
    result = runner.run_round(partial_store_backend(runner, max_trials=8), 24, 10, tmp_path)
    assert (result.trials_run, result.scale) == (8, 3)
    assert result.extrapolated == list(runner.PHASES)
    assert result.counts["create_trials"] == 8
    summary = runner.summarise(["mlos_store"], [{"round": 0, **result.__dict__}])
    table = runner.markdown(["mlos_store"], 24, summary)
    assert "(extrapolated)" in table and "(at 8 trials)" in table


def test_runner_refuses_a_backend_whose_counts_are_wrong(runner: Any, tmp_path: Path) -> None:
    backend = importlib.import_module("backend_store").StoreBackend()
    backend.results_table = lambda: 0
    with pytest.raises(SystemExit, match="mlos_store returned wrong counts .*'results_table': \\(0, 6\\)"):
        runner.run_round(backend, 6, 5, tmp_path)


GROWTH = RUNNER.parent / "bench_growth.py"
GROWTH_CALLS = ("new_trial", "RUNNING", "telemetry", "SUCCEEDED", "trial")
PER_CALL = {f"{mode} {call} ms" for mode in ("exclusive", "bare", "empty twin exclusive") for call in GROWTH_CALLS}
THROUGHPUT = {"writers trials/s", "reader loads/s"}
SHARED_MODES = ("shared", "bare beside shared", "empty twin shared")
LIVED_FIGURES = {"trials stored", *(f"{mode} {call} ms" for mode in SHARED_MODES for call in GROWTH_CALLS),
                 "shared turn: get_trial_by_id ms", "exclusive get_trial_by_id ms", *PER_CALL, "store MB",
                 "bulk copy MB", "store / bulk copy", "free blocks %", *THROUGHPUT,
                 *(f"empty twin {name}" for name in THROUGHPUT)}
HELD_FIGURES = {"trials stored", *PER_CALL, "exclusive telemetry 1,000 points/s", "bare telemetry 1,000 points/s"}
TABLE_CELL = re.compile(r"[\d,]+(\.\d+)?x?( \(\d+\.\d\dx\))?")


def test_growth_benchmark_quick_mode_gives_every_figure_a_number_at_every_size(tmp_path: Path) -> None:
    report_path = tmp_path / "growth.json"
    out = subprocess.run([sys.executable, str(GROWTH), "--quick", "--json", str(report_path)],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    report = json.loads(report_path.read_text())
    for section, figures, sizes in (("lived", LIVED_FIGURES, 4), ("held", HELD_FIGURES, 3)):
        checkpoints = list(report[section].values())
        stored = [checkpoint["figures"]["trials stored"] for checkpoint in checkpoints]
        assert len(stored) == sizes and stored[0] == 0 and stored == sorted(set(stored)), section
        for checkpoint in checkpoints:
            assert set(checkpoint["figures"]) == figures, section
            assert all(math.isfinite(v) and v > 0 for k, v in checkpoint["figures"].items()
                       if k not in ("trials stored", "free blocks %")), (section, checkpoint["figures"])
            assert set(checkpoint["vs_bare"]) >= set(GROWTH_CALLS)
            assert all(ratio > 0 for ratio in checkpoint["vs_bare"].values())
            modes = ("shared", "exclusive") if section == "lived" else ("exclusive",)
            assert set(checkpoint["vs_empty_twin"]) >= {f"{mode} {call}" for mode in modes for call in GROWTH_CALLS}
            assert all(ratio > 0 for ratio in checkpoint["vs_empty_twin"].values())
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ")]
    titles = [cells[0].strip() for cells in rows]
    assert titles.count("figure") == titles.count("call") == titles.count("vs empty store") == 2
    # every figure but the count; to bare: exclusive and shared; to the twin: both modes and the writers
    lived_rows = len(LIVED_FIGURES) - 1 + 2 * len(GROWTH_CALLS) + 2 * len(GROWTH_CALLS) + 1
    held_rows = len(HELD_FIGURES) - 1 + len(GROWTH_CALLS) + 1 + len(GROWTH_CALLS)  # and the telemetry rate ratio
    assert len(rows) == 6 + lived_rows + held_rows
    for cells in rows:
        if cells[0].strip() not in ("figure", "call", "vs empty store"):
            assert all(TABLE_CELL.fullmatch(cell.strip()) for cell in cells[1:]), cells


def test_floor_benchmark_replays_exactly_the_statements_each_call_runs(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """bench_floor's 'same statements' column is only true while it names what the store really runs."""
    sys.path.insert(0, str(RUNNER.parent))
    import bench_floor
    import bench_growth

    from mlos_store.engine.connection import Connection

    ran: list[str] = []
    real_run = Connection._run

    def spy(self: Connection, con: Any, query: Any, params: dict[str, Any]) -> Any:
        ran.append(query.name)
        return real_run(self, con, query, params)

    with bench_growth.experiment(tmp_path / "store.duckdb", mode="exclusive") as exp:
        monkeypatch.setattr(Connection, "_run", spy)
        bench_growth.store_trial(exp, 1)
    assert ran == [name for call in ("new_trial", "RUNNING", "telemetry", "SUCCEEDED")
                   for name in bench_floor.STATEMENTS[call]]
