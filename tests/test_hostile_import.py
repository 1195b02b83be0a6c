"""Imports from sources that are crafted, damaged or odd: refused clearly, with this store unchanged."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import T0

from mlos_store import InvalidValueError, NotAStoreError, Status, Storage
from mlos_store.cli import main

TUNABLES = {"x": 0, "mode": "a"}
OPT = {"score": "min"}
SEC = timedelta(seconds=1)


def _fill(storage: Storage, experiment_id: str = "exp", xs: tuple[int, ...] = (1, 2)) -> None:
    """One experiment, a SUCCEEDED trial per x with results, history and telemetry."""
    with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env", description="d",
                            tunables=TUNABLES, opt_targets=OPT) as exp:
        for x in xs:
            trial = exp.new_trial({**TUNABLES, "x": x}, ts_start=T0)
            trial.update(Status.RUNNING, T0)
            trial.update_telemetry(Status.RUNNING, T0, [(T0 + i * SEC, "lat", float(i * x)) for i in range(3)])
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


def _contents(storage: Storage) -> dict[str, list[str]]:
    """Every row of every table of the store, to check that a refusal changed nothing."""
    with storage.engine.transaction():
        con = storage.engine._connection()
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
        return {table: sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall())) for table in tables}


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[Storage]:
    with Storage(tmp_path / "dest.duckdb") as storage:
        _fill(storage, "here", (7,))
        yield storage


def _refused(dest: Storage, error: type[Exception], message: str, call: Callable[[], Any]) -> None:
    """``call`` raises ``error`` matching ``message`` and leaves every row of ``dest`` as it was."""
    before = _contents(dest)
    with pytest.raises(error, match=message):
        call()
    assert _contents(dest) == before


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
    _refused(dest, NotAStoreError, "unexpected table 'main.info0'.*none of its tables was read", lambda: dest.import_store(source))


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
    _refused(dest, NotAStoreError, "cannot import '.*pipe.duckdb': not a regular file; it was not opened and nothing was imported",
             _unblocking(fifo, lambda: dest.import_store(fifo)))
    path = dest.path
    dest.close()
    assert "not a regular file" in _unblocking(fifo, lambda: _cli_line(capsys, "import", str(path), str(fifo)))()


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
        return [tuple(row.values()) for row in exp.telemetry_table().to_pylist()]


def test_points_a_store_file_holds_twice_are_imported_once_with_the_first_value(tmp_path: Path,
                                                                                 dest: Storage) -> None:
    source = _store_file(tmp_path)
    with Storage(source, read_only=True) as original:
        expected = _telemetry(original)
    _craft(source, "INSERT INTO trial_telemetry SELECT * FROM trial_telemetry",
           "INSERT INTO trial_telemetry SELECT * REPLACE (value + 100 AS value) FROM trial_telemetry "
           "WHERE value_kind = 'float'")
    assert dest.import_store(source).new_telemetry_points == len(expected) == 6
    assert _telemetry(dest) == expected
