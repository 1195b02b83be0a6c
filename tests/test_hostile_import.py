"""Imports from sources that are crafted, damaged or odd: refused clearly, with this store unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import T0, store_contents

from mlos_store import InvalidValueError, NotAStoreError, Status, Storage
from mlos_store.catalog import load_catalog
from mlos_store.cli import main
from mlos_store.parquet import tables

TUNABLES = {"x": 0, "mode": "a"}
OPT = {"score": "min"}
SEC = timedelta(seconds=1)


def _fill(storage: Storage, experiment_id: str = "exp", xs: tuple[int, ...] = (1, 2)) -> None:
    """One experiment, a SUCCEEDED trial per x with results, history and telemetry."""
    with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env", description="d",
                            tunables=TUNABLES, opt_targets=OPT) as exp:
        for x in xs:
            trial = exp.new_trial({**TUNABLES, "x": x}, ts_start=T0, config={"rep": x})
            trial.update(Status.RUNNING, T0)
            trial.update_telemetry(Status.RUNNING, T0, [(T0 + i * SEC, "lat", float(i * x)) for i in range(3)]
                                   + [(T0, "neg0", -0.0)])
            trial.update(Status.SUCCEEDED, T0 + 5 * SEC, {"score": float(x)})


def _store_file(tmp_path: Path, name: str = "source", **fill: Any) -> Path:
    path = tmp_path / f"{name}.duckdb"
    with Storage(path) as storage:
        _fill(storage, **fill)
    return path


def _craft(path: Path, *statements: str) -> None:
    """Change a store file behind mlos_store's back, as a hostile sender would."""
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[Storage]:
    with Storage(tmp_path / "dest.duckdb") as storage:
        _fill(storage, "here", (7,))
        yield storage


def _refused(dest: Storage, error: type[Exception], message: str, call: Callable[[], Any]) -> None:
    """``call`` raises ``error`` matching ``message`` and leaves every row of ``dest`` as it was."""
    before = store_contents(dest)
    with pytest.raises(error, match=message):
        call()
    assert store_contents(dest) == before


def _cli_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line `mlos-store` prints on stderr for a refused command (exit code 1)."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- item 11: crafted store files


HOSTNAME_VIEW = (
    "CREATE VIEW trial_telemetry AS SELECT experiment_id, trial_id, ts, metric, value_kind, value, value_int, "
    "(SELECT content FROM read_text('/etc/hostname')) AS value_text FROM stolen"
)


@pytest.mark.parametrize(("statements", "named"), [
    (("ALTER TABLE trial_telemetry RENAME TO stolen", HOSTNAME_VIEW), "unexpected view 'main.trial_telemetry'"),
    (("CREATE VIEW huge AS SELECT * FROM range(1000000000000)",), "unexpected view 'main.huge'"),
    (("CREATE MACRO value_kind_fits2(a) AS a",), "unexpected macro 'main.value_kind_fits2'"),
    (("CREATE TABLE extra (x INTEGER)",), "unexpected table 'main.extra'"),
    (("DROP VIEW completed_trial", "CREATE VIEW completed_trial AS SELECT * FROM trial, range(1000000000000)"),
     "unexpected view 'main.completed_trial'"),
])
def test_a_store_file_with_other_objects_is_refused_before_any_is_read(
        tmp_path: Path, dest: Storage, statements: tuple[str, ...], named: str) -> None:
    source = _store_file(tmp_path)
    _craft(source, *statements)
    _refused(dest, NotAStoreError, f"is not an mlos_store database as this mlos_store makes them .*{named}.*"
             "none of its tables was read and nothing was imported", lambda: dest.import_store(source))


def test_crafted_marker_tables_are_refused_before_they_are_read(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path)
    _craft(source, "ALTER TABLE store_info RENAME TO info0", "CREATE TABLE store_info (key VARCHAR, value VARCHAR)",
           "INSERT INTO store_info FROM info0")
    _refused(dest, NotAStoreError, "unexpected table 'main.info0'.*none of its tables was read",
             lambda: dest.import_store(source))


def test_a_crafted_store_file_gives_one_line_in_the_cli(tmp_path: Path, dest: Storage,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = _store_file(tmp_path)
    _craft(source, "ALTER TABLE trial_telemetry RENAME TO stolen", HOSTNAME_VIEW)
    path = dest.path
    dest.close()
    assert "unexpected view 'main.trial_telemetry'" in _cli_line(capsys, "import", str(path), str(source))


# ---------------------------------------------------------------- item 15: sources that are not regular files


def _unblocking(fifo: Path, call: Callable[[], Any]) -> Callable[[], Any]:
    """``call``, failing the test (not hanging it) if it blocks on opening ``fifo``."""
    def guarded() -> Any:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                outcome["error"] = exc

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(10)
        if worker.is_alive():
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # a writer lets the blocked reader go on
            os.close(fd)
            worker.join(10)
            pytest.fail(f"opening {fifo} blocked")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")
    return guarded


def test_a_fifo_as_store_file_is_refused_without_opening_it(tmp_path: Path, dest: Storage,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.duckdb"
    os.mkfifo(fifo)
    _refused(dest, NotAStoreError,
             "'.*pipe.duckdb' is a FIFO, not an mlos_store database; it was left untouched",
             _unblocking(fifo, lambda: dest.import_store(fifo)))
    path = dest.path
    dest.close()
    assert "is a FIFO" in _unblocking(fifo, lambda: _cli_line(capsys, "import", str(path), str(fifo)))()


def test_a_fifo_as_the_write_ahead_log_of_a_store_file_is_refused(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path)
    wal = Path(f"{source}.wal")
    os.mkfifo(wal)
    _refused(dest, NotAStoreError, r"cannot import '.*source.duckdb.wal': not a regular file",
             _unblocking(wal, lambda: dest.import_store(source)))


# ---------------------------------------------------------------- item 6: config hashes are checked, not trusted


def _config_hash_of_x(storage: Storage, x: int) -> str:
    """The stored hash of the config whose tunable x is ``x``."""
    with storage.engine.transaction():
        row = storage.engine._connection().execute(
            "SELECT c.config_hash FROM tunable_config c JOIN tunable_param p USING (config_id) "
            "WHERE p.tunable_name = 'x' AND p.value_int = $x", {"x": x}).fetchone()
    assert row is not None
    return str(row[0])


def _x_of_trials(storage: Storage, experiment_id: str) -> list[int]:
    with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env", description="d",
                            tunables=TUNABLES, opt_targets=OPT) as exp:
        return [exp.load_tunable_config(c)["x"] for c in exp.load_table().column("tunable_config_id").to_pylist()]


def test_a_store_file_whose_config_hash_was_forged_is_refused(tmp_path: Path, dest: Storage) -> None:
    """The source's x=999 config carries the hash of this store's x=7 config: its trial must not read x=7."""
    source = _store_file(tmp_path, xs=(7,))
    forged = _config_hash_of_x(dest, 7)
    _craft(source, "UPDATE tunable_param SET value = 999, value_int = 999 WHERE tunable_name = 'x'")
    _refused(dest, InvalidValueError, f"config 1 is stored with the hash '{forged}', which is not the hash of its "
             "values .*nothing was imported", lambda: dest.import_store(source))
    assert _x_of_trials(dest, "here") == [7]


# ---------------------------------------------------------------- item 5: each point stored once, no orphans


def _telemetry(storage: Storage, experiment_id: str = "exp") -> list[tuple[Any, ...]]:
    with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env", description="d",
                            tunables=TUNABLES, opt_targets=OPT) as exp:
        return [tuple(map(repr, row.values())) for row in exp.telemetry_table().to_pylist()]


def test_points_a_store_file_holds_twice_are_imported_once_with_the_first_value(tmp_path: Path,
                                                                                 dest: Storage) -> None:
    source = _store_file(tmp_path)
    with Storage(source, read_only=True) as original:
        expected = _telemetry(original)
    _craft(source, "INSERT INTO trial_telemetry SELECT * FROM trial_telemetry",
           "INSERT INTO trial_telemetry SELECT * REPLACE (value + 100 AS value) FROM trial_telemetry "
           "WHERE value_kind = 'float'")
    assert dest.import_store(source).new_telemetry_points == len(expected) == 8
    assert _telemetry(dest) == expected


# ---------------------------------------------------------------- Parquet exports: helpers


def _lake(tmp_path: Path, experiment_id: str = "exp", xs: tuple[int, ...] = (1, 2)) -> Path:
    """A finished export of one filled experiment."""
    with Storage() as storage:
        _fill(storage, experiment_id, xs)
        storage.get_experiment_by_id(experiment_id).export_parquet(tmp_path / "lake")  # type: ignore[union-attr]
    return tmp_path / "lake"


def _part(lake: Path, table: str) -> Path:
    """The one file of a table (telemetry of all trials too: one file, not one per trial)."""
    [part] = (lake / table).rglob("*.parquet")
    return part


def _manifest(lake: Path) -> Path:
    [manifest] = (lake / "_mlos_store").rglob("*.json")
    return manifest


def _rewrite(lake: Path, part: Path, rows: pa.Table) -> None:
    """Replace a part file by ``rows``, its manifest kept consistent (as a careless or hostile writer would)."""
    pq.write_table(rows, part)
    manifest = json.loads(_manifest(lake).read_text())
    for listed in manifest["datasets"].values():
        for entry in listed["files"]:
            if lake / entry["path"] == part:
                entry["rows"] = rows.num_rows
        listed["rows"] = sum(entry["rows"] for entry in listed["files"])
    _manifest(lake).write_text(json.dumps(manifest))


def _with_parts(lake: Path, table: str, *, add: dict[str, pa.Table]) -> None:
    """Add part files (path relative to the table's source folder of the experiment) and list them in the manifest."""
    manifest = json.loads(_manifest(lake).read_text())
    [folder] = (lake / table).glob("experiment_key=*/source=*")
    for relative, rows in add.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, folder / relative)
        manifest["datasets"][table]["files"].append(
            {"path": (folder / relative).relative_to(lake).as_posix(), "rows": rows.num_rows})
        manifest["datasets"][table]["rows"] += rows.num_rows
    _manifest(lake).write_text(json.dumps(manifest))


# ---------------------------------------------------------------- item 3: unfinished or damaged exports


KILLED_EXPORT = """
import os, sys
from mlos_store import Storage
with Storage(sys.argv[1]) as storage:
    exp = storage.get_experiment_by_id("exp")
    exp.export_parquet(sys.argv[2], progress=lambda done, total: os._exit(9) if done == int(sys.argv[3]) else None)
"""


def _killed_export(tmp_path: Path, lake: Path, after_tables: int) -> None:
    store = tmp_path / "killed.duckdb"
    if not store.exists():
        with Storage(store) as storage:
            _fill(storage)
    done = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(store), str(lake), str(after_tables)],
                          check=False)
    assert done.returncode == 9


@pytest.mark.parametrize("after_tables", [1, 5, 7])
def test_an_export_killed_part_way_is_refused(tmp_path: Path, dest: Storage, after_tables: int) -> None:
    lake = tmp_path / "lake"
    _killed_export(tmp_path, lake, after_tables)
    _refused(dest, InvalidValueError,
             r"cannot import '.*lake': the experiment folder\(s\) 'exp-[0-9a-f]{16}/.*' have no "
             "manifest: an export that did not finish; export the experiment again; nothing was imported",
             lambda: dest.import_parquet(lake))
    _refused(dest, InvalidValueError, "have no manifest", lambda: dest.import_parquet(lake, ["exp"]))


def test_a_re_export_killed_part_way_leaves_the_last_finished_export_and_the_next_one_cleans_up(
        tmp_path: Path) -> None:
    """The killed export renamed new files into place but wrote no manifest: imports read the last finished
    export exactly; the next export removes the stray files and covers everything."""
    lake = tmp_path / "lake"
    with Storage(tmp_path / "killed.duckdb") as storage:
        _fill(storage)
        storage.get_experiment_by_id("exp").export_parquet(lake)  # type: ignore[union-attr]
        before = _telemetry(storage)
        _fill(storage, "exp", (3,))  # a new trial: every table but the experiment's own changes
    _killed_export(tmp_path, lake, 7)
    assert len(list((lake / "trial").rglob("*.parquet"))) == 2, "the killed export left its new trial file"
    with Storage() as target:
        target.import_parquet(lake)
        assert _telemetry(target) == before
    with Storage(tmp_path / "killed.duckdb") as storage:
        storage.get_experiment_by_id("exp").export_parquet(lake)  # type: ignore[union-attr]
        after = _telemetry(storage)
    assert len(list((lake / "trial").rglob("*.parquet"))) == 1
    with Storage() as target:
        target.import_parquet(lake)
        assert _telemetry(target) == after != before


def test_a_truncated_part_file_is_a_clear_error(tmp_path: Path, dest: Storage,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path)
    part = _part(lake, "trial")
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    _refused(dest, InvalidValueError, r"/trial/experiment_key=exp-[0-9a-f]{16}/source=.*/part-[0-9a-f]{16}.parquet' "
             "is not a whole Parquet file \\(truncated or damaged: .*\\); nothing was imported",
             lambda: dest.import_parquet(lake))
    path = dest.path
    dest.close()
    assert "is not a whole Parquet file" in _cli_line(capsys, "import", str(path), str(lake))


def test_a_part_file_with_other_rows_than_its_manifest_says_is_refused(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    part = _part(lake, "trial_status")
    pq.write_table(pq.read_table(part).slice(0, 2), part)
    _refused(dest, InvalidValueError, r"trial_status/.*\.parquet' holds 2 rows, its manifest says 6; "
             "nothing was imported", lambda: dest.import_parquet(lake))


def test_a_damaged_manifest_is_refused(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    _manifest(lake).write_text('{"format": "mlos_store lake", "layout_version": 2')
    _refused(dest, InvalidValueError, "the manifest '_mlos_store/.*/exp-.*json' cannot be read",
             lambda: dest.import_parquet(lake))
    _manifest(lake).write_text(json.dumps({"format": "mlos_store lake", "layout_version": 99}))
    _refused(dest, InvalidValueError, "has layout version 99, this mlos_store reads layout 2",
             lambda: dest.import_parquet(lake))


# ---------------------------------------------------------------- item 16: any experiment id through a lake


@pytest.mark.parametrize("experiment_id", ["__HIVE_DEFAULT_PARTITION__", "界" * 30, "..", "a/b=c%2F", "A", "a"])
def test_any_experiment_id_survives_export_and_import(tmp_path: Path, experiment_id: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake(tmp_path, experiment_id)
    with Storage() as target:
        assert target.import_parquet(lake) == [experiment_id]
        assert _telemetry(target, experiment_id) == [(repr(experiment_id), *row[1:]) for row in _telemetry_of(
            experiment_id)]
    assert main(["import", str(tmp_path / "cli.duckdb"), str(lake)]) == 0
    assert capsys.readouterr().out.endswith(f": {experiment_id}\n")


def _telemetry_of(experiment_id: str) -> list[tuple[str, ...]]:
    with Storage() as storage:
        _fill(storage, experiment_id)
        return _telemetry(storage, experiment_id)


def test_ids_that_differ_only_by_case_or_by_dropped_characters_keep_their_own_folders(tmp_path: Path) -> None:
    with Storage() as storage:
        for experiment_id in ("A", "a", "a/b", "a_b"):
            _fill(storage, experiment_id)
            storage.get_experiment_by_id(experiment_id).export_parquet(tmp_path / "lake")  # type: ignore[union-attr]
    with Storage() as target:
        assert target.import_parquet(tmp_path / "lake") == ["A", "a", "a/b", "a_b"]


# ---------------------------------------------------------------- item 15: part files that are not regular files


def test_a_fifo_among_the_part_files_is_refused_without_opening_it(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    part = _part(lake, "trial_result")
    part.unlink()
    os.mkfifo(part)
    _refused(dest, NotAStoreError, r"trial_result/.*\.parquet': not a regular file; it was not opened",
             _unblocking(part, lambda: dest.import_parquet(lake)))


def test_a_fifo_as_manifest_is_refused_without_opening_it(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    manifest = _manifest(lake)
    manifest.unlink()
    os.mkfifo(manifest)
    _refused(dest, NotAStoreError, "json': not a regular file; it was not opened",
             _unblocking(manifest, lambda: dest.import_parquet(lake)))


# ---------------------------------------------------------------- item 6 (Parquet): config hashes checked


def test_an_export_whose_config_values_do_not_match_their_hash_is_refused(tmp_path: Path, dest: Storage) -> None:
    """The export's trial ran x=999 but carries the hash of x=7, a config this store holds."""
    lake = _lake(tmp_path, xs=(7,))
    part = _part(lake, "tunable_param")
    rows = pq.read_table(part)
    x = pc.equal(rows.column("tunable_name"), "x")
    rows = rows.set_column(rows.column_names.index("value_int"), "value_int",
                           pc.if_else(x, pa.scalar(999, pa.int64()), rows.column("value_int")))
    rows = rows.set_column(rows.column_names.index("value"), "value",
                           pc.if_else(x, pa.scalar(999.0), rows.column("value")))
    _rewrite(lake, part, rows)
    _refused(dest, InvalidValueError, f"config 1 is stored with the hash '{_config_hash_of_x(dest, 7)}', which is "
             "not the hash of its values", lambda: dest.import_parquet(lake))


def test_trials_whose_config_hash_the_export_holds_no_values_for_are_refused(tmp_path: Path,
                                                                              dest: Storage) -> None:
    lake = _lake(tmp_path, xs=(8,))
    part = _part(lake, "trial")
    rows = pq.read_table(part)
    forged = pa.array([_config_hash_of_x(dest, 7)] * rows.num_rows)
    _rewrite(lake, part, rows.set_column(rows.column_names.index("config_hash"), "config_hash", forged))
    _refused(dest, InvalidValueError, "trials of 'exp' use config hashes the export holds no values for",
             lambda: dest.import_parquet(lake))


# ---------------------------------------------------------------- item 5 (Parquet): once each, no orphans


def test_rows_an_export_holds_twice_are_imported_once(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    with Storage() as original:
        _fill(original)
        expected = _telemetry(original)
        expected_results = original.get_experiment_by_id("exp").load()  # type: ignore[union-attr]
    for table in ("trial", "trial_param", "trial_status", "trial_result", "objective", "experiment_tunable",
                  "tunable_param", "experiment"):
        part = _part(lake, table)
        rows = pq.read_table(part)
        _rewrite(lake, part, pa.concat_tables([rows, rows]))
    part = _part(lake, "telemetry")
    rows = pq.read_table(part)
    shifted = rows.set_column(rows.column_names.index("value"), "value", pc.add(rows.column("value"), 100.0))
    _rewrite(lake, part, pa.concat_tables([rows, shifted, rows]))
    with Storage() as target:
        target.import_parquet(lake)
        assert _telemetry(target) == expected
        assert target.get_experiment_by_id("exp").load() == expected_results  # type: ignore[union-attr]


def test_telemetry_of_a_trial_the_export_lacks_is_refused(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    points = pq.read_table(_part(lake, "telemetry")).filter(pc.field("trial_id") == 1)
    moved = points.set_column(points.schema.get_field_index("trial_id"), "trial_id",
                              pa.array([99] * points.num_rows, pa.int64()))
    _with_parts(lake, "telemetry", add={"part-of-trial-99.parquet": moved})
    _refused(dest, InvalidValueError, r"experiment 'exp' has rows of trials its trial table lacks \(4 telemetry "
             r"row\(s\) of trial 99\); nothing was imported", lambda: dest.import_parquet(lake))


def test_the_manifest_names_the_layout_the_id_and_every_table_with_its_files_and_rows(tmp_path: Path) -> None:
    lake = _lake(tmp_path, "exp/1")
    manifest = json.loads(_manifest(lake).read_text())
    assert (manifest["format"], manifest["layout_version"], manifest["experiment_id"]) == (
        "mlos_store lake", 2, "exp/1")
    assert list(manifest["datasets"]) == [t.folder for t in tables(load_catalog())]
    assert manifest["datasets"]["telemetry"]["rows"] == 8
    [telemetry] = manifest["datasets"]["telemetry"]["files"]
    assert telemetry["path"].startswith("telemetry/experiment_key=exp_1-") and telemetry["rows"] == 8
    assert manifest["high_water_marks"]["max_trial_id"] == 2
    assert not list(lake.rglob(".*")), "no temporary file is left behind"


def test_telemetry_a_store_file_holds_for_a_trial_it_lacks_is_refused(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path)
    _craft(source, "INSERT INTO trial_telemetry SELECT * REPLACE (99 AS trial_id) FROM trial_telemetry "
                   "WHERE trial_id = 1")
    _refused(dest, InvalidValueError, r"it holds rows without their trial or config \(4 telemetry row\(s\) of "
             "'exp' trial 99\\); nothing was imported", lambda: dest.import_store(source))


def test_a_config_listed_under_two_hashes_is_refused(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path, xs=(7,))
    part = _part(lake, "tunable_param")
    rows = pq.read_table(part)
    hashes = rows.column("config_hash").to_pylist()
    _rewrite(lake, part, rows.set_column(rows.column_names.index("config_hash"), "config_hash",
                                         pa.array(hashes[:-1] + ["0" * 64])))
    _refused(dest, InvalidValueError, "config 1 is stored with two hashes; nothing was imported",
             lambda: dest.import_parquet(lake))


def test_an_export_without_its_experiment_record_is_refused(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    part = _part(lake, "experiment")
    _rewrite(lake, part, pq.read_table(part).slice(0, 0))
    _refused(dest, InvalidValueError, "json.: the export of .exp. holds no experiment record; nothing was imported",
             lambda: dest.import_parquet(lake))


# ---------------------------------------------------------------- item 9 through an import


def test_a_lake_with_timestamps_past_year_9999_is_refused(tmp_path: Path, dest: Storage) -> None:
    """Stored, such a point would break every read of it; refused as update_telemetry refuses it."""
    lake = _lake(tmp_path)
    part = _part(lake, "telemetry")
    rows = pq.read_table(part)
    far = pa.array([253402300800 * 1_000_000] * rows.num_rows, pa.int64()).cast(rows.schema.field("ts").type)
    _rewrite(lake, part, rows.set_column(rows.schema.get_field_index("ts"), "ts", far))
    _refused(dest, InvalidValueError, r"telemetry column 'ts' row 0 holds 253402300800000000 .*outside years 1 "
             "to 9999", lambda: dest.import_parquet(lake))


def test_a_store_file_with_timestamps_past_year_9999_is_refused(tmp_path: Path, dest: Storage) -> None:
    source = _store_file(tmp_path)
    _craft(source, "UPDATE trial_telemetry SET ts = TIMESTAMPTZ '12000-01-01 00:00:00+00' WHERE trial_id = 2")
    _refused(dest, InvalidValueError, r"timestamps outside years 1 to 9999, which no read could return "
             r"\(trial_telemetry.ts 12000-01-01 00:00:00\+00 \('exp' trial 2\), .*nothing was imported",
             lambda: dest.import_store(source))


# ---------------------------------------------------------------- rows the API never stores (every import path)


def test_a_lake_with_an_empty_metric_name_is_refused(tmp_path: Path, dest: Storage) -> None:
    lake = _lake(tmp_path)
    part = _part(lake, "telemetry")
    rows = pq.read_table(part)
    _rewrite(lake, part, rows.set_column(rows.column_names.index("metric"), "metric", pa.array([""] * rows.num_rows)))
    _refused(dest, InvalidValueError, "trial_telemetry: empty metric name", lambda: dest.import_parquet(lake))


def test_a_lake_with_values_of_a_tunable_the_experiment_never_declared_is_refused(tmp_path: Path,
                                                                                  dest: Storage) -> None:
    lake = _lake(tmp_path)
    part = _part(lake, "experiment_tunable")
    rows = pq.read_table(part)
    _rewrite(lake, part, rows.filter(pc.not_equal(rows.column("tunable_name"), "x")))
    _refused(dest, InvalidValueError, "tunable_param: tunable x not declared by the experiment",
             lambda: dest.import_parquet(lake))
