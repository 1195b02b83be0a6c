"""The mlos-store command line, run on a demo store: output checked against the library's own tables."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet
import pytest

import mlos_store.plot
from mlos_store import InvalidValueError, QueryError, Status, Storage, cli
from mlos_store.catalog import load_catalog
from mlos_store.cli import bucket_width, build_parser, main
from mlos_store.cli_output import MAX_CELL, ProgressBar, render_text
from mlos_store.demo import run_demo
from mlos_store.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
EXP = "demo-latency"
DEMO_START = datetime(2026, 1, 1, tzinfo=UTC)
DEMO_SEED = 7


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo's store after one seeded run of 12 trials (successes and a failure, 4,800 points)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    run_demo(str(path), trials=12, seed=DEMO_SEED, start=DEMO_START)
    return str(path)


@pytest.fixture(scope="module")
def api(demo_store: str) -> Iterator[Any]:
    """The demo experiment through the library's analysis side (read-only), for comparison."""
    with Storage(demo_store, read_only=True) as storage:
        yield storage.experiments[EXP]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_bytes(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> bytes:
    assert main(list(argv)) == 0
    return capsysbinary.readouterr().out


def _plain(table: pa.Table) -> pa.Table:
    """The table without field metadata (what CSV can carry)."""
    return pa.Table.from_arrays(table.columns, names=table.column_names)


def _from_csv(text: str, like: pa.Table) -> pa.Table:
    options = pyarrow.csv.ConvertOptions(column_types=like.schema, strings_can_be_null=True,
                                         quoted_strings_can_be_null=False)
    return pyarrow.csv.read_csv(io.BytesIO(text.encode()), convert_options=options)


def _json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows the JSON format promises: exact values, timestamps as ISO text."""
    return [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()} for row in table.to_pylist()]


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _data_rows(text: str) -> list[list[str]]:
    """The cells of a text table's rows (under the header and its rule)."""
    return [line.split() for line in text.splitlines()[2:]]


# ---------------------------------------------------------------- each command


def test_info_counts_equal_the_api(capsys: pytest.CaptureFixture[str], demo_store: str, api: Any) -> None:
    code, out, err = run(capsys, "info", demo_store, "--format", "json")
    assert (code, err) == (0, "")
    info = json.loads(out)
    statuses = [trial.status.name.lower() for trial in api.trials.values()]
    (row,) = info["experiments"]
    assert row["experiment_id"] == EXP and row["trials"] == len(statuses) == 12
    assert {s: row[s] for s in set(statuses)} == {s: statuses.count(s) for s in set(statuses)}
    assert sum(row[s.name.lower()] for s in Status if s is not Status.UNKNOWN) == 12
    assert row["telemetry_points"] == api.telemetry_table().num_rows == 4800
    assert info["schema_version"] == load_catalog().schema_version
    assert info["file_size"] == os.path.getsize(demo_store)
    code, out, _ = run(capsys, "info", demo_store)
    assert code == 0
    assert re.search(rf"^schema version +{load_catalog().schema_version}$", out, re.M)
    assert re.search(r"^telemetry points +4,800$", out, re.M)
    assert re.search(rf"^{EXP} +12 +{row['succeeded']} SUCCEEDED, {row['failed']} FAILED +4800$", out, re.M)


def test_experiments_table_and_csv(capsys: pytest.CaptureFixture[str], demo_store: str) -> None:
    code, out, _ = run(capsys, "experiments", demo_store)
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["experiment_id", "description", "objectives", "trials"]
    assert re.search(rf"^{EXP} +toy latency tuning +latency_ms min +12 +4800 +demo/env.jsonc$", out, re.M)
    code, out, _ = run(capsys, "experiments", demo_store, "-f", "csv")
    rows = pyarrow.csv.read_csv(io.BytesIO(out.encode())).to_pylist()
    assert [(r["experiment_id"], r["objectives"], r["trials"]) for r in rows] == [(EXP, "latency_ms min", 12)]


def test_trials_lists_every_trial_and_filters_by_status(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                        api: Any) -> None:
    code, out, _ = run(capsys, "trials", demo_store, EXP)
    assert code == 0
    rows = _data_rows(out)
    assert [(int(r[0]), r[1]) for r in rows] == [(t.trial_id, t.status.name) for t in api.trials.values()]
    assert rows[0][2] == "2026-01-01T00:00:00Z"  # ISO timestamps, UTC
    failed = [t.trial_id for t in api.trials.values() if t.status == Status.FAILED]
    assert failed
    code, out, _ = run(capsys, "trials", demo_store, EXP, "--status", "failed", "-f", "json")
    assert [row["trial_id"] for row in json.loads(out)] == failed


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_results_parse_back_to_the_api_table(capsys: pytest.CaptureFixture[str], demo_store: str, api: Any,
                                             fmt: str) -> None:
    expected = api.results_table
    code, out, _ = run(capsys, "results", demo_store, EXP, "--format", fmt)
    assert code == 0
    if fmt == "csv":
        assert _from_csv(out, expected).equals(_plain(expected))
    else:
        assert json.loads(out) == _json_rows(expected)


def test_results_as_parquet_on_stdout_are_the_api_table(capsysbinary: pytest.CaptureFixture[bytes],
                                                        demo_store: str, api: Any) -> None:
    data = run_bytes(capsysbinary, "results", demo_store, EXP, "--format", "parquet")
    assert pyarrow.parquet.read_table(io.BytesIO(data)).equals(api.results_table, check_metadata=True)


def test_json_holds_the_exact_values_of_mixed_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "mixed.duckdb"
    with Storage(path) as storage:
        exp = storage.experiment(experiment_id="mixed", trial_id=1, root_env_config="env", description="d",
                                 tunables={"x": 0}, opt_targets={"score": "min"})
        with exp:
            first = exp.new_trial({"x": 1})
            first.update_telemetry(Status.RUNNING, DEMO_START, [
                (DEMO_START, "state", "warm"), (DEMO_START, "cpu", float("nan")), (DEMO_START, "load", 2)])
            first.update(Status.SUCCEEDED, DEMO_START, {"score": 1.5, "note": "fast"})
            exp.new_trial({"x": 2}).update(Status.SUCCEEDED, DEMO_START, {"score": 2.5, "note": {"runs": [1, 2]}})
    code, out, _ = run(capsys, "results", str(path), "mixed", "-f", "json")
    assert code == 0
    assert [(row["result.note"], row["result.score"]) for row in json.loads(out)] == [("fast", 1.5),
                                                                                      ({"runs": [1, 2]}, 2.5)]
    code, out, _ = run(capsys, "telemetry", str(path), "mixed", "-f", "json")
    rows = json.loads(out)
    assert [(row["metric"], row["value"]) for row in rows] == [("cpu", "NaN"), ("load", 2), ("state", "warm")]
    assert all("value_json" not in row and row["ts"] == "2026-01-01T00:00:00+00:00" for row in rows)


def test_output_file_takes_its_format_from_its_suffix(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                      api: Any, tmp_path: Path) -> None:
    for suffix in ("parquet", "csv", "json"):
        target = tmp_path / f"results.{suffix}"
        code, out, _ = run(capsys, "results", demo_store, EXP, "-o", str(target))
        assert (code, out) == (0, "")
        if suffix == "parquet":
            assert pyarrow.parquet.read_table(target).equals(api.results_table)
        elif suffix == "csv":
            assert _from_csv(target.read_text(), api.results_table).equals(_plain(api.results_table))
        else:
            assert json.loads(target.read_text()) == _json_rows(api.results_table)


def test_results_best_n_and_pareto(capsys: pytest.CaptureFixture[str], demo_store: str, api: Any) -> None:
    code, out, _ = run(capsys, "results", demo_store, EXP, "--best", "3", "-f", "json")
    assert code == 0
    best = json.loads(out)
    succeeded = sorted((row["result.latency_ms"], row["trial_id"]) for row in api.results_table.to_pylist()
                       if row["status"] == "SUCCEEDED")
    assert [(row["result.latency_ms"], row["trial_id"]) for row in best] == succeeded[:3]
    code, out, _ = run(capsys, "results", demo_store, EXP, "--pareto", "-f", "json")
    assert [row["trial_id"] for row in json.loads(out)] == api.best().column("trial_id").to_pylist()
    code, out, _ = run(capsys, "results", demo_store, EXP, "--best", "2")
    assert [int(row[0]) for row in _data_rows(out)] == [trial_id for _, trial_id in succeeded[:2]]


def test_telemetry_filters_stats_and_buckets_equal_the_api(capsysbinary: pytest.CaptureFixture[bytes],
                                                           demo_store: str, api: Any) -> None:
    since, until = DEMO_START + timedelta(seconds=3), DEMO_START + timedelta(seconds=4, milliseconds=500)
    filters = ["--trial", "2", "3", "--metric", "cpu_pct", "--since", since.isoformat(), "--until", until.isoformat()]

    def parquet(*extra: str) -> pa.Table:
        data = run_bytes(capsysbinary, "telemetry", demo_store, EXP, *filters, *extra, "-f", "parquet")
        return pyarrow.parquet.read_table(io.BytesIO(data))

    raw = parquet()
    assert raw.equals(api.telemetry_table([2, 3], metrics=["cpu_pct"], start=since, end=until))
    assert raw.num_rows == 150 and set(raw.column("trial_id").to_pylist()) == {2}
    assert parquet("--stats").equals(api.telemetry_summary([2, 3], metrics=["cpu_pct"], start=since, end=until))
    buckets = parquet("--bucket", "500ms")
    assert buckets.equals(api.telemetry_downsample(timedelta(milliseconds=500), [2, 3], metrics=["cpu_pct"],
                                                   start=since, end=until))
    assert buckets.column("count").to_pylist() == [50, 50, 50]


def test_raw_telemetry_streams_out_in_batches_equal_to_the_api_table(
        capsys: pytest.CaptureFixture[str], demo_store: str, api: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "TELEMETRY_BATCH_ROWS", 1000)  # 4,800 points: five batches
    expected = api.telemetry_table()
    code, out, _ = run(capsys, "telemetry", demo_store, EXP, "-f", "csv")
    assert code == 0 and out.count("experiment_id") == 1  # one header
    assert _from_csv(out, expected).equals(_plain(expected))
    code, out, _ = run(capsys, "telemetry", demo_store, EXP, "-f", "json")
    assert json.loads(out) == _json_rows(expected)
    assert run(capsys, "telemetry", demo_store, EXP, "-o", str(tmp_path / "points.parquet"))[0] == 0
    written = pyarrow.parquet.ParquetFile(tmp_path / "points.parquet")
    assert written.metadata.num_row_groups == 5
    assert written.read().equals(expected, check_metadata=True)
    code, out, _ = run(capsys, "telemetry", demo_store, EXP, "--metric", "nope", "-f", "json")
    assert (code, out) == (0, "[]\n")


def test_telemetry_stats_as_text(capsys: pytest.CaptureFixture[str], demo_store: str, api: Any) -> None:
    code, out, _ = run(capsys, "telemetry", demo_store, EXP, "--stats", "--trial", "1")
    assert code == 0
    summary = api.telemetry_summary(1).to_pylist()
    rows = _data_rows(out)
    assert [(int(r[0]), r[1], int(r[2])) for r in rows] == [(1, s["metric"], s["count"]) for s in summary]
    assert out.splitlines()[2].index("200") > out.splitlines()[0].index("count")  # numbers right-aligned


@pytest.mark.parametrize(("text", "width"), [("1s", timedelta(seconds=1)), ("500ms", timedelta(milliseconds=500)),
                                             ("5m", timedelta(minutes=5)), ("1h", timedelta(hours=1)),
                                             ("250us", timedelta(microseconds=250))])
def test_bucket_widths(text: str, width: timedelta) -> None:
    assert bucket_width(text) == width


def test_export_then_import_into_a_fresh_store_round_trips(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                           api: Any, tmp_path: Path) -> None:
    dataset, copy = tmp_path / "dataset", tmp_path / "copy.duckdb"
    code, out, err = run(capsys, "export", demo_store, EXP, str(dataset))
    assert (code, err) == (0, "")  # no progress bar when stderr is not a terminal
    assert f"exported experiment '{EXP}'" in out
    code, out, err = run(capsys, "import", str(copy), str(dataset))
    assert (code, err) == (0, "")
    assert f"imported 1 experiment(s) from the Parquet datasets in {dataset}: {EXP}" in out
    with Storage(copy, read_only=True) as storage:
        imported = storage.experiments[EXP]
        ignore = ["tunable_config_id"]  # remapped to the new store's ids
        assert imported.results_table.drop_columns(ignore).equals(api.results_table.drop_columns(ignore))
        assert imported.telemetry_table().equals(api.telemetry_table())


def test_import_of_a_store_file_reports_what_it_added(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                      api: Any, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    code, out, _ = run(capsys, "import", str(copy), demo_store)
    assert code == 0
    assert "new: 1 experiment(s), 12 trial(s), 12 config(s), 4800 telemetry point(s)" in out
    code, out, _ = run(capsys, "import", str(copy), demo_store)  # again: nothing new
    assert "new: 0 experiment(s), 0 trial(s), 0 config(s), 0 telemetry point(s)" in out
    with Storage(copy, read_only=True) as storage:
        assert storage.experiments[EXP].results_table.equals(api.results_table)


def test_compact_rewrites_a_copy_of_the_store_keeping_its_results(capsys: pytest.CaptureFixture[str],
                                                                   demo_store: str, api: Any, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(demo_store, copy)
    code, out, _ = run(capsys, "compact", str(copy))
    assert code == 0 and re.fullmatch(rf"compacted {re.escape(str(copy))}: [\d.]+ MB -> [\d.]+ MB\n", out)
    with Storage(copy, read_only=True) as storage:
        assert storage.experiments[EXP].results_table.equals(api.results_table)
    code, _, err = run(capsys, "compact", str(tmp_path / "missing.duckdb"))
    assert code == 1 and "no such file" in err and not (tmp_path / "missing.duckdb").exists()


def test_sql_answers_a_select(capsys: pytest.CaptureFixture[str], demo_store: str, api: Any) -> None:
    code, out, _ = run(capsys, "sql", demo_store, "SELECT status, count(*) AS trials FROM trial GROUP BY status "
                                                  "ORDER BY status", "-f", "csv")
    assert code == 0
    counted = pyarrow.csv.read_csv(io.BytesIO(out.encode())).to_pylist()
    statuses = [t.status.name for t in api.trials.values()]
    assert {row["status"]: row["trials"] for row in counted} == {s: statuses.count(s) for s in set(statuses)}
    code, out, _ = run(capsys, "sql", demo_store, "SHOW TABLES")
    assert code == 0 and re.search(r"^trial_telemetry$", out, re.M)


def test_sql_results_of_any_type_come_out_in_every_format(capsys: pytest.CaptureFixture[str],
                                                          demo_store: str) -> None:
    query = ("SELECT [1, 2] AS l, {'a': 1} AS s, MAP {'k': 2} AS m, 'ab'::BLOB AS b, INTERVAL 1 DAY AS i, "
             "1.50::DECIMAL(4, 2) AS d, DATE '2026-01-02' AS day, NULL::INTEGER[] AS n")
    code, out, _ = run(capsys, "sql", demo_store, query, "-f", "csv")
    assert code == 0
    assert out.splitlines()[1] == '"[1, 2]","{""a"": 1}","[[""k"", 2]]","6162","[0, 1, 0]",1.50,2026-01-02,'
    code, out, _ = run(capsys, "sql", demo_store, query, "-f", "json")
    assert json.loads(out) == [{"l": [1, 2], "s": {"a": 1}, "m": [["k", 2]], "b": "6162", "i": [0, 1, 0],
                                "d": "1.50", "day": "2026-01-02", "n": None}]
    code, out, _ = run(capsys, "sql", demo_store, query)
    assert code == 0 and out.splitlines()[2].startswith("[1,2]  {\"a\":1}")


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header, after checking its signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_plot_writes_pngs_that_open_at_the_asked_size(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                      tmp_path: Path) -> None:
    image = pytest.importorskip("matplotlib.image")  # the [plot] extra; the [test] extra installs it
    telemetry, results = tmp_path / "telemetry.png", tmp_path / "results.png"
    assert run(capsys, "plot", demo_store, EXP, "--metric", "cpu_pct", "latency_ms", "--trial", "1", "2",
               "--since", "2026-01-01T00:00:00+00:00", "-o", str(telemetry)) == (0, f"wrote {telemetry}\n", "")
    assert run(capsys, "plot", demo_store, EXP, "--x", "config.threads", "--y", "result.latency_ms",
               "--size", "640x480", "-o", str(results))[:2] == (0, f"wrote {results}\n")
    assert _png_size(telemetry) == (960, 540) and _png_size(results) == (640, 480)
    assert image.imread(telemetry).shape[:2] == (540, 960) and image.imread(results).shape[:2] == (480, 640)


def test_plot_passes_every_option_to_the_plot_module(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def recorder(kind: str) -> Any:
        def record(experiment: Any, path: str, **options: Any) -> Path:
            calls.append((kind, experiment.experiment_id, path, options))
            return Path(path)
        return record

    monkeypatch.setattr(mlos_store.plot, "plot_telemetry", recorder("telemetry"))
    monkeypatch.setattr(mlos_store.plot, "plot_results", recorder("results"))
    png = str(tmp_path / "t.png")
    assert run(capsys, "plot", demo_store, EXP, "--metric", "cpu_pct", "--trial", "1", "2", "-o", png,
               "--since", "2026-01-01T00:00:00+00:00")[:2] == (0, f"wrote {png}\n")
    assert run(capsys, "plot", demo_store, EXP, "--x", "config.threads", "--y", "result.latency_ms", "-o", png,
               "--size", "640x480")[0] == 0
    assert calls == [
        ("telemetry", EXP, png, {"metrics": ["cpu_pct"], "trial_ids": [1, 2], "since": DEMO_START, "until": None,
                                 "size_px": (960, 540)}),
        ("results", EXP, png, {"x": "config.threads", "y": "result.latency_ms", "size_px": (640, 480)}),
    ]


def test_plot_refusals_exit_1_and_write_nothing(capsys: pytest.CaptureFixture[str], demo_store: str,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = str(tmp_path / "p.png")
    code, _, err = run(capsys, "plot", demo_store, EXP, "--metric", "nope", "-o", target)
    assert code == 1 and len(err.splitlines()) == 1 and "nope" in err
    code, _, err = run(capsys, "plot", demo_store, EXP, "--x", "config.nope", "--y", "result.latency_ms", "-o", target)
    assert code == 1 and len(err.splitlines()) == 1 and "config.nope" in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an interpreter without matplotlib sees
    code, _, err = run(capsys, "plot", demo_store, EXP, "--metric", "cpu_pct", "-o", target)
    assert code == 1 and len(err.splitlines()) == 1 and "pip install 'mlos_store[plot]'" in err
    assert list(tmp_path.iterdir()) == []


def test_a_cli_read_waits_its_turn_beside_a_running_writer(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    path = tmp_path / "live.duckdb"
    with Storage(path) as storage:  # shared mode, read-write: a runner keeps working meanwhile
        exp = storage.experiment(experiment_id="live", trial_id=1, root_env_config="env", description="d",
                                 tunables={"x": 1}, opt_targets={"y": "min"})
        with exp:
            exp.new_trial({"x": 2})
            code, out, _ = run(capsys, "trials", str(path), "live", "-f", "json")
            assert code == 0 and [row["status"] for row in json.loads(out)] == ["PENDING"]
            exp.new_trial({"x": 3}).update(Status.RUNNING, DEMO_START)
            code, out, _ = run(capsys, "trials", str(path), "live", "-f", "json")
            assert [row["status"] for row in json.loads(out)] == ["PENDING", "RUNNING"]


# ---------------------------------------------------------------- refusals and usage


@pytest.mark.parametrize(("argv", "message"), [
    (["trials", "{missing}", EXP], "cannot open .* read-only: no such file"),
    (["trials", "{store}", "nope"], r"no experiment 'nope' in .* \(stored: 'demo-latency'\)"),
    (["results", "{store}", "nope", "--best", "1"], "no experiment 'nope'"),
    (["info", "{text}"], "not an mlos_store database"),
    (["sql", "{store}", "SELEC 1"], "does not parse"),
    (["sql", "{store}", "SELECT nope FROM trial"], "the query failed: .*nope"),
    (["sql", "{store}", "INSERT INTO store_info VALUES ('a', 'b')"], "only a read statement .* got INSERT"),
    (["sql", "{store}", "UPDATE trial SET trial_runner_id = 1"], "got UPDATE"),
    (["sql", "{store}", "DROP TABLE trial_telemetry"], "got DROP"),
    (["sql", "{store}", "ATTACH '{attached}' AS other"], "got ATTACH"),
    (["sql", "{store}", "COPY trial TO '{copied}'"], "got COPY"),
    (["sql", "{store}", "SELECT 1; DROP TABLE trial"], "exactly one statement, got 2"),
    # user SQL sees the store's tables only: no file outside it can be read or listed
    (["sql", "{store}", "SELECT * FROM read_text('{text}')"], "file system operations are disabled"),
    (["sql", "{store}", "SELECT * FROM read_csv('{text}')"], "file system operations are disabled"),
    (["sql", "{store}", "SELECT * FROM glob('{tmp}/*')"], "file system operations are disabled"),
    (["export", "{store}", EXP, "{text}"], "is a file, not a folder"),
    (["import", "{store}", "{missing}"], "no such file or folder"),
])
def test_refusals_exit_1_with_one_line_and_leave_the_store_alone(
        capsys: pytest.CaptureFixture[str], demo_store: str, tmp_path: Path, argv: list[str], message: str) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a store\n")
    names = {"store": demo_store, "missing": str(tmp_path / "missing.duckdb"), "text": str(text),
             "attached": str(tmp_path / "attached.duckdb"), "copied": str(tmp_path / "copied.csv"),
             "tmp": str(tmp_path)}
    before = _digest(demo_store)
    code, out, err = run(capsys, *[a.format(**names) for a in argv])
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert re.match(rf"mlos-store: error: .*{message}", err), err
    assert "Traceback" not in err
    assert _digest(demo_store) == before
    assert text.read_text() == "not a store\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing attached, copied or created


def test_parquet_to_a_terminal_is_refused(capsys: pytest.CaptureFixture[str], demo_store: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["results", demo_store, EXP, "-f", "parquet"]) == 1
    assert terminal.getvalue() == ""
    assert capsys.readouterr().err == "mlos-store: error: parquet output is binary and stdout is a terminal: " \
                                      "use -o FILE\n"


def _sub_commands() -> list[str]:
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(commands.choices)


def test_every_command_is_covered_by_help() -> None:
    assert _sub_commands() == sorted(["info", "experiments", "trials", "results", "telemetry", "export", "import",
                                      "compact", "sync", "plot", "sql", "serve", "demo"])


@pytest.mark.parametrize("command", [[], *[[c] for c in _sub_commands()]])
def test_help_of_every_command_exits_0(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith(f"usage: mlos-store {' '.join(command)}".rstrip())


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["trials"], ["results", "s.duckdb", EXP, "--best", "0"],
    ["results", "s.duckdb", EXP, "--best", "2", "--pareto"], ["telemetry", "s.duckdb", EXP, "--bucket", "fast"],
    ["telemetry", "s.duckdb", EXP, "--stats", "--bucket", "1s"], ["telemetry", "s.duckdb", EXP, "--since", "noon"],
    ["trials", "s.duckdb", EXP, "--status", "DONE"], ["plot", "s.duckdb", EXP, "-o", "p.png"],
    ["plot", "s.duckdb", EXP, "--metric", "m", "--x", "config.a", "--y", "result.b", "-o", "p.png"],
    ["plot", "s.duckdb", EXP, "--x", "config.a", "-o", "p.png"], ["results", "s.duckdb", EXP, "-f", "xml"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert "usage: mlos-store" in err and "error:" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- output and progress


def test_text_cells_are_cut_with_an_ellipsis_and_numbers_right_aligned() -> None:
    table = pa.table({"name": ["x" * 100, "y"], "n": [5, 12345], "f": [0.5, None]})
    lines = render_text(table).splitlines()
    assert lines[0].split() == ["name", "n", "f"]
    assert lines[2].startswith("x" * (MAX_CELL - 1) + "…  ")
    assert lines[2].endswith("    5  0.5") and lines[3].endswith("12345")
    assert render_text(table.slice(0, 0)).splitlines()[-1] == "(no rows)"


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = ProgressBar("export", stream)
        for done in range(4):
            bar(done, 3)
    assert pipe.getvalue() == ""
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 4 and drawn.endswith(f"\rexport [{'#' * 30}] 3/3\n")
    assert f"\rexport [{'#' * 10}{'.' * 20}] 1/3" in drawn


def test_export_and_import_report_progress(demo_store: str, api: Any, tmp_path: Path) -> None:
    calls: dict[str, list[tuple[int, int]]] = {"export": [], "parquet": [], "store": []}
    api.export_parquet(tmp_path / "dataset", progress=lambda d, t: calls["export"].append((d, t)))
    with Storage(tmp_path / "a.duckdb") as storage:
        storage.import_parquet(tmp_path / "dataset", progress=lambda d, t: calls["parquet"].append((d, t)))
    with Storage(tmp_path / "b.duckdb") as storage:
        storage.import_store(demo_store, progress=lambda d, t: calls["store"].append((d, t)))
    for name, steps in calls.items():
        total = steps[0][1]
        assert steps == [(done, total) for done in range(total + 1)], name
    assert calls["export"][-1] == calls["parquet"][-1] == (9, 9)  # one step per table


@pytest.mark.filterwarnings("ignore::mlos_store.MissingObjectiveWarning")  # trial 5 lacks throughput on purpose
def test_ranked_orders_by_the_objectives_in_turn() -> None:
    with Storage() as storage:
        exp = storage.experiment(experiment_id="two", trial_id=1, root_env_config="env", description="d",
                                 tunables={"x": 0}, opt_targets={"latency": "min", "throughput": "max"})
        with exp:
            scored = [(1.0, 5), (0.5, 1), (1.0, 9), (float("nan"), 20), (0.2, None)]
            for x, (latency, throughput) in enumerate(scored):
                metrics = {"latency": latency} if throughput is None else {"latency": latency,
                                                                           "throughput": throughput}
                exp.new_trial({"x": x}).update(Status.SUCCEEDED, DEMO_START, metrics)
            exp.new_trial({"x": 9}).update(Status.FAILED, DEMO_START, {"latency": 0.1, "throughput": 99})
        data = storage.experiments["two"]
        assert data.ranked().column("trial_id").to_pylist() == [2, 3, 1]  # NaN, missing, failed left out
        assert data.ranked({"throughput": "max"}).column("trial_id").to_pylist() == [4, 3, 1, 2]


def test_engine_runs_user_queries_only_read_only(tmp_path: Path, demo_store: str) -> None:
    engine = Engine(tmp_path / "rw.duckdb")
    try:
        with pytest.raises(InvalidValueError, match="only on a store opened read-only"):
            engine.fetch_user_query("SELECT 1")
    finally:
        engine.close()
    reader = Engine(demo_store, read_only=True)
    try:
        assert reader.fetch_user_query("SELECT count(*) AS n FROM trial").to_pylist() == [{"n": 12}]
        with pytest.raises(QueryError, match="does not parse"):
            reader.fetch_user_query("SELECT FROM WHERE")
    finally:
        reader.close()


# ---------------------------------------------------------------- entry points


def test_console_script_and_python_m_are_wired(demo_store: str) -> None:
    script = Path(sys.executable).parent / "mlos-store"
    assert script.exists(), "the console script is not installed (pip install -e .)"
    done = subprocess.run([str(script), "trials", demo_store, EXP, "--status", "FAILED", "-f", "json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert {row["status"] for row in json.loads(done.stdout)} == {"FAILED"}
    refused = subprocess.run([sys.executable, "-m", "mlos_store", "sql", demo_store, "DELETE FROM trial"],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == "mlos-store: error: only a read statement (SELECT) may run here, got DELETE; " \
                             "nothing was run\n"
