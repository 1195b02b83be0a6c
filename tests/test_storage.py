"""Opening, creating, refusing, upgrading and closing stores."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from mlos_store import (
    Experiment,
    NotAStoreError,
    SchemaVersionError,
    Status,
    Storage,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
)
from mlos_store.catalog import Catalog, load_catalog, load_catalog_from
from mlos_store.engine import Engine

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
REPO = Path(__file__).resolve().parent.parent


def _experiment(store: Storage, experiment_id: str = "exp") -> Experiment:
    return store.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="env.jsonc",
                            description="storage test", tunables={"x": 0}, opt_targets={"score": "min"})


def _add_succeeded(exp: Experiment, x: int, score: float) -> int:
    trial = exp.new_trial({"x": x})
    trial.update(Status.SUCCEEDED, T0, {"score": score})
    return trial.trial_id


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _schema_versions(path: Path) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [v for (v,) in con.execute("SELECT version FROM schema_migration ORDER BY version").fetchall()]
    finally:
        con.close()


def _run_python(code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=120, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize("path", [None, ":memory:"])
def test_memory_store_creates_no_file(path: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Storage(path) as store:
        assert store.path == ":memory:"
        with _experiment(store) as exp:
            _add_succeeded(exp, 1, 1.0)
    assert list(tmp_path.iterdir()) == []


def test_memory_stores_are_independent() -> None:
    with Storage(None) as first, Storage(":memory:") as second:
        with _experiment(first) as exp:
            _add_succeeded(exp, 1, 1.0)
        with _experiment(second) as other:
            assert other.load() == ([], [], [], [])
            assert other.trial_id == 1


def test_memory_store_refuses_read_only() -> None:
    with pytest.raises(StoreError, match="in-memory store cannot be opened read-only"):
        Storage(None, read_only=True)


# ---------------------------------------------------------------- files


def test_file_store_is_created_with_schema_on_first_use(db_path: Path) -> None:
    assert not db_path.exists()
    Storage(db_path).close()
    assert db_path.is_file()
    assert _schema_versions(db_path) == list(range(1, load_catalog().schema_version + 1))


def test_reopened_file_store_sees_same_trials(db_path: Path) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        ids = [_add_succeeded(exp, x, float(x)) for x in (1, 2, 3)]
        before = exp.load()
    with Storage(db_path) as store, _experiment(store) as exp:
        assert exp.load() == before
        assert exp.load()[0] == ids
        assert exp.trial_id == ids[-1] + 1


def test_missing_parent_directory_is_refused_naming_path(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "store.duckdb"
    with pytest.raises(StoreUnavailableError, match=re.escape(f"cannot open '{path}'")) as info:
        Storage(path)
    assert isinstance(info.value, OSError) and isinstance(info.value, StoreError)
    assert list(tmp_path.iterdir()) == []


def test_storage_accepts_str_and_pathlike(db_path: Path) -> None:
    with Storage(str(db_path)) as store:
        assert store.path == str(db_path)
    with Storage(db_path) as store:
        assert store.path == str(db_path)


# ---------------------------------------------------------------- closing


def test_context_manager_closes_store(db_path: Path) -> None:
    with Storage(db_path) as store:
        pass
    assert store.engine.closed
    with pytest.raises(StoreClosedError, match="is closed"):
        _experiment(store).__enter__()


def test_closed_store_refuses_reads(db_path: Path) -> None:
    store = Storage(db_path)
    exp = _experiment(store)
    with exp:
        _add_succeeded(exp, 1, 1.0)
    store.close()
    with pytest.raises(StoreClosedError, match=str(db_path)):
        exp.load()


def test_close_is_idempotent(db_path: Path) -> None:
    store = Storage(db_path)
    store.close()
    store.close()
    assert store.engine.closed


def test_close_releases_file_for_another_process(db_path: Path) -> None:
    store = Storage(db_path)
    store.close()
    code = """
        import sys, duckdb
        duckdb.connect(sys.argv[1]).execute("CREATE TABLE scratch (x INTEGER)")
    """
    _run_python(code, str(db_path))


def test_open_store_holds_file_against_another_process(db_path: Path) -> None:
    code = """
        import sys, duckdb
        duckdb.connect(sys.argv[1])
    """
    with Storage(db_path, mode="exclusive"):
        proc = _run_python(code, str(db_path), check=False)
    assert proc.returncode != 0
    assert "lock" in proc.stderr.lower()


# ---------------------------------------------------------------- refusing


def _refused_untouched(path: Path, *names: str) -> None:
    """Opening ``path`` raises NotAStoreError naming it, and leaves it byte-for-byte unchanged."""
    before = _snapshot(path)
    with pytest.raises(NotAStoreError, match=str(path)):
        Storage(path)
    assert _snapshot(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(names)


def test_text_file_is_refused_untouched(db_path: Path) -> None:
    db_path.write_text("experiment,trial,score\nexp,1,0.5\n")
    _refused_untouched(db_path, db_path.name)


def test_empty_file_is_refused_untouched(db_path: Path) -> None:
    db_path.touch()
    _refused_untouched(db_path, db_path.name)


def test_short_binary_file_is_refused_untouched(db_path: Path) -> None:
    db_path.write_bytes(b"\x00DUCK")
    _refused_untouched(db_path, db_path.name)


def test_not_a_store_error_is_a_value_error(db_path: Path) -> None:
    db_path.write_text("hello")
    with pytest.raises(ValueError, match="not an mlos_store database"):
        Storage(db_path)


def test_directory_is_refused_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "store.duckdb"
    folder.mkdir()
    (folder / "inside.txt").write_text("keep me")
    with pytest.raises(NotAStoreError, match=f"{folder}.*directory"):
        Storage(folder)
    assert [p.name for p in folder.iterdir()] == ["inside.txt"]
    assert (folder / "inside.txt").read_text() == "keep me"


def test_duckdb_file_with_foreign_tables_is_refused_untouched(db_path: Path) -> None:
    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE measurements (id INTEGER, value DOUBLE)")
    con.execute("INSERT INTO measurements VALUES (1, 2.5)")
    con.close()
    before = _snapshot(db_path)
    with pytest.raises(NotAStoreError, match=f"{db_path}.*DuckDB database but not an mlos_store"):
        Storage(db_path)
    assert _snapshot(db_path) == before
    con = duckdb.connect(str(db_path), read_only=True)
    tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    con.close()
    assert tables == [("measurements",)]


@pytest.mark.parametrize("statement", [
    pytest.param("CREATE VIEW answer AS SELECT 42 AS a", id="view"),
    pytest.param("CREATE SEQUENCE ids START 1", id="sequence"),
    pytest.param("CREATE MACRO twice(x) AS x * 2", id="macro"),
    pytest.param("CREATE TYPE mood AS ENUM ('happy', 'sad')", id="type"),
])
def test_duckdb_file_with_only_one_foreign_object_is_refused_untouched(db_path: Path, statement: str) -> None:
    """Any user object makes a DuckDB file someone's data, not an empty database to turn into a store."""
    con = duckdb.connect(str(db_path))
    con.execute(statement)
    con.close()
    before = _snapshot(db_path)
    for read_only in (False, True):
        with pytest.raises(NotAStoreError, match=f"{re.escape(str(db_path))}.*not an mlos_store"):
            Storage(db_path, read_only=read_only)
    assert _snapshot(db_path) == before


def test_empty_duckdb_file_becomes_a_store(db_path: Path) -> None:
    duckdb.connect(str(db_path)).close()
    with Storage(db_path) as store, _experiment(store) as exp:
        _add_succeeded(exp, 1, 1.0)
    assert _schema_versions(db_path) == list(range(1, load_catalog().schema_version + 1))


def test_duckdb_file_with_foreign_tables_is_refused_read_only(db_path: Path) -> None:
    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE measurements (id INTEGER)")
    con.close()
    before = _snapshot(db_path)
    with pytest.raises(NotAStoreError, match=str(db_path)):
        Storage(db_path, read_only=True)
    assert _snapshot(db_path) == before


def test_newer_schema_version_is_refused_untouched(db_path: Path) -> None:
    Storage(db_path).close()
    current = load_catalog().schema_version
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO schema_migration VALUES ($v, 'from_the_future', now())", {"v": current + 1})
    con.close()
    before = _snapshot(db_path)
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match=f"{db_path}.*version {current + 1}.*\\({current}\\)"):
            Storage(db_path, read_only=read_only)
    assert _snapshot(db_path) == before


def test_schema_version_error_is_a_runtime_error(db_path: Path) -> None:
    Storage(db_path).close()
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO schema_migration VALUES (99, 'from_the_future', now())")
    con.close()
    with pytest.raises(RuntimeError, match="99"):
        Storage(db_path)


# ---------------------------------------------------------------- upgrading


@pytest.fixture
def upgraded_catalog(tmp_path: Path) -> Catalog:
    """The package's catalog plus one more migration that adds a table."""
    root = tmp_path / "sql_v2"
    shutil.copytree(SQL_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (root / "schema" / f"{load_catalog().schema_version + 1:04d}_run_notes.sql").write_text(
        "CREATE TABLE run_note (experiment_id VARCHAR NOT NULL, note VARCHAR NOT NULL);\n"
    )
    catalog = load_catalog_from(root)
    assert catalog.schema_version == load_catalog().schema_version + 1
    return catalog


def test_older_store_is_upgraded_on_read_write_open(db_path: Path, upgraded_catalog: Catalog) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        ids = [_add_succeeded(exp, x, float(x)) for x in (1, 2)]
    old = load_catalog().schema_version
    engine = Engine(db_path, catalog=upgraded_catalog)
    engine.close()
    assert _schema_versions(db_path) == list(range(1, old + 2))
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT name FROM schema_migration WHERE version = $v", {"v": old + 1}).fetchone() == (
        "run_notes",)
    assert con.execute("SELECT count(*) FROM run_note").fetchone() == (0,)
    assert con.execute("SELECT trial_id FROM trial ORDER BY trial_id").fetchall() == [(i,) for i in ids]
    con.close()


def test_upgraded_store_is_refused_by_older_package(db_path: Path, upgraded_catalog: Catalog) -> None:
    Storage(db_path).close()
    Engine(db_path, catalog=upgraded_catalog).close()
    with pytest.raises(SchemaVersionError, match=str(db_path)):
        Storage(db_path)


def test_older_store_is_refused_read_only_untouched(db_path: Path, upgraded_catalog: Catalog) -> None:
    Storage(db_path).close()
    old = load_catalog().schema_version
    before = _snapshot(db_path)
    with pytest.raises(SchemaVersionError, match=f"{db_path}.*version {old}.*needs {old + 1}"):
        Engine(db_path, read_only=True, catalog=upgraded_catalog)
    assert _snapshot(db_path) == before
    assert _schema_versions(db_path) == list(range(1, old + 1))


@pytest.fixture
def broken_catalog(tmp_path: Path) -> Catalog:
    """The package's catalog plus one more migration that fails half-way."""
    root = tmp_path / "sql_bad"
    shutil.copytree(SQL_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (root / "schema" / f"{load_catalog().schema_version + 1:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nALTER TABLE no_such_table ADD COLUMN y INTEGER;\n"
    )
    return load_catalog_from(root)


def test_failed_migration_raises_store_error_and_keeps_old_version(db_path: Path, broken_catalog: Catalog) -> None:
    Storage(db_path).close()
    with pytest.raises(StoreError, match="broken"):
        Engine(db_path, catalog=broken_catalog)
    assert _schema_versions(db_path) == list(range(1, load_catalog().schema_version + 1))
    con = duckdb.connect(str(db_path), read_only=True)
    names = [n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    con.close()
    assert "half_done" not in names


def test_failed_migration_releases_file(db_path: Path, broken_catalog: Catalog) -> None:
    Storage(db_path).close()
    with pytest.raises(SchemaVersionError, match=re.escape(repr(str(db_path)))) as failure:
        Engine(db_path, catalog=broken_catalog)
    assert not isinstance(failure.value, duckdb.Error)
    code = """
        import sys, duckdb
        duckdb.connect(sys.argv[1]).close()
    """
    proc = _run_python(code, str(db_path), check=False)
    del failure
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- a file another process holds

_HOLDER = """
    import sys

    path, how = sys.argv[1], sys.argv[2]
    if how == "duckdb":
        import duckdb
        held = duckdb.connect(path)
    else:
        from mlos_store import Storage
        held = Storage(path, mode="exclusive")
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes stdin
    held.close()
"""


@pytest.mark.parametrize("how", ["duckdb", "mlos_store"])
def test_file_locked_by_another_process_is_refused_as_unavailable(db_path: Path, how: str) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        _add_succeeded(exp, 1, 1.0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_HOLDER), str(db_path), how],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
        for read_only in (False, True):
            with pytest.raises(StoreBusyError, match=re.escape(f"cannot open {str(db_path)!r}")) as info:
                Storage(db_path, read_only=read_only, timeout=0.3)
            assert isinstance(info.value, StoreUnavailableError), read_only
            assert isinstance(info.value, OSError), read_only
            assert isinstance(info.value, StoreError), read_only
            assert not isinstance(info.value, duckdb.Error), read_only
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0
    with Storage(db_path) as store:  # released, and unchanged
        assert _experiment(store).load()[0] == [1]


def test_store_unavailable_and_concurrent_change_errors_are_exported() -> None:
    import mlos_store

    assert {"StoreUnavailableError", "ConcurrentChangeError"} <= set(mlos_store.__all__)
    assert issubclass(mlos_store.StoreUnavailableError, StoreError)
    assert issubclass(mlos_store.StoreUnavailableError, OSError)
    assert issubclass(mlos_store.ConcurrentChangeError, StoreError)
    assert issubclass(mlos_store.ConcurrentChangeError, RuntimeError)


# ---------------------------------------------------------------- read-only


def test_read_only_opens_existing_store_and_reads(db_path: Path) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        ids = [_add_succeeded(exp, x, float(x)) for x in (1, 2)]
        expected = exp.load()
    with Storage(db_path, read_only=True) as store:
        assert store.read_only
        exp = _experiment(store)
        assert exp.load() == expected
        assert exp.load()[0] == ids


def test_read_only_store_can_enter_an_existing_experiment_to_read_it(db_path: Path) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        _add_succeeded(exp, 1, 1.0)
        expected = exp.load()
    before = _snapshot(db_path)
    with Storage(db_path, read_only=True) as store, _experiment(store) as exp:
        assert exp.load() == expected
        assert exp.trial_id == expected[0][-1] + 1
    assert _snapshot(db_path) == before


def test_read_only_refuses_writes_and_changes_nothing(db_path: Path) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        _add_succeeded(exp, 1, 1.0)
    before = _snapshot(db_path)
    with Storage(db_path, read_only=True) as store:
        with pytest.raises(StoreError, match="experiment_insert"):
            _experiment(store, "new_exp").__enter__()
    assert _snapshot(db_path) == before
    with Storage(db_path, read_only=True) as store:
        assert _experiment(store, "new_exp").load() == ([], [], [], [])


def test_read_only_refuses_missing_path(db_path: Path) -> None:
    with pytest.raises(NotAStoreError, match=f"{db_path}.*no such file"):
        Storage(db_path, read_only=True)
    assert not db_path.exists()


# ---------------------------------------------------------------- killed processes


_WRITER = """
    import os, signal, sys, time
    from datetime import datetime, timezone
    from mlos_store import Status, Storage

    path, mode = sys.argv[1], sys.argv[2]
    store = Storage(path)
    exp = store.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc",
                           description="storage test", tunables={"x": 0}, opt_targets={"score": "min"})
    exp.__enter__()
    ts = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    for x in (1, 2, 3):
        exp.new_trial({"x": x}).update(Status.SUCCEEDED, ts, {"score": float(x)})
    if mode == "half":
        with store.engine.transaction():
            exp.new_trial({"x": 4}).update(Status.SUCCEEDED, ts, {"score": 4.0})
            exp.new_trial({"x": 5})
            os._exit(1)
    if mode == "exit":
        os._exit(1)
    print("ready", flush=True)
    time.sleep(600)
"""


def _committed_only(db_path: Path) -> None:
    with Storage(db_path) as store, _experiment(store) as exp:
        trial_ids, configs, scores, status = exp.load()
        assert trial_ids == [1, 2, 3]
        assert configs == [{"x": 1}, {"x": 2}, {"x": 3}]
        assert scores == [{"score": 1.0}, {"score": 2.0}, {"score": 3.0}]
        assert status == [Status.SUCCEEDED] * 3
        assert list(exp.pending_trials(T0.replace(year=2100), running=True)) == []
        assert exp.trial_id == 4


@pytest.mark.parametrize("mode", ["exit", "half"])
def test_process_exiting_without_close_keeps_committed_trials(db_path: Path, mode: str) -> None:
    proc = _run_python(_WRITER, str(db_path), mode, check=False)
    assert proc.returncode == 1, proc.stderr
    _committed_only(db_path)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_process_killed_without_close_keeps_committed_trials(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), str(db_path), "sleep"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout and proc.stderr
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    _committed_only(db_path)
