"""The SQL catalog (schema files and named queries) and the engine that runs it."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import mlos_store
from mlos_store import InvalidValueError, QueryError, StoreError
from mlos_store.catalog import (
    ENGINE_METHOD_KINDS,
    KINDS,
    Catalog,
    Migration,
    Query,
    load_catalog,
    load_catalog_from,
    parse_queries,
)
from mlos_store.engine import Engine
from mlos_store.errors import CatalogError
from mlos_store.lake import DATASETS
from mlos_store.parquet import tables
from mlos_store.telemetry import STORED_FLOAT_POINTS, bulk_telemetry_rows, telemetry_rows
from mlos_store.values import NAMED_VALUES_SCHEMA

PACKAGE_DIR = Path(mlos_store.__file__).resolve().parent
SQL_DIR = PACKAGE_DIR.parent / "sql"
CATALOG = load_catalog()
QUERIES = CATALOG.queries
T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")
#: Import query -> the lake dataset whose rows it reads.
IMPORT_SOURCES = {t.insert.name: t.folder for t in tables(CATALOG) if t.insert.name.startswith("import_")} | {
    "import_tunable_config_insert": "tunable_param"}

#: A typed value for every parameter name the catalog uses.
DUMMY_PARAMS = {
    "bucket_us": 1_000_000,
    "completed_only": True,
    "config_hash": "0" * 64,
    "config_id": 1,
    "config_ids": [1],
    "description": "d",
    "directions": ["min"],
    "end": T0,
    "experiment_id": "exp",
    "experiment_ids": ["exp"],
    "exported_before": 0,
    "first_trial_id": 1,
    "first_ts": T0,
    "from_rowid": 0,
    "source_store_id": "s",
    "telemetry_from": 0,
    "telemetry_rows": 0,
    "from_status": "PENDING",
    "git_commit": None,
    "git_repo": None,
    "last_trial_id": -1,
    "merged_experiment_id": "other",
    "merged_experiment_ids": ["other"],
    "metric": "m",
    "metrics": ["m"],
    "name": "n",
    "path": ":memory:",
    "root_env_config": "env.jsonc",
    "runner_assigned": None,
    "start": T0,
    "status": "PENDING",
    "statuses": ["PENDING"],
    "timestamp": T0,
    "to_rowid": 1,
    "to_status": "RUNNING",
    "trial_id": 1,
    "trial_ids": [1],
    "trial_runner_id": 1,
    "ts": T0,
    "ts_created": T0,
    "ts_start": T0,
    "version": 99,
}


def _incoming(query: Query) -> pa.Table:
    """An empty Arrow table shaped as the ingest query reads it."""
    if query.name in ("telemetry_insert", "telemetry_append", "telemetry_append_if_state"):
        return telemetry_rows([], "test")
    if query.name == "telemetry_append_floats_if_state":  # the caller's table, typed as stored
        return STORED_FLOAT_POINTS.empty_table()
    if query.name in ("telemetry_insert_many", "telemetry_insert_many_in_order"):
        return bulk_telemetry_rows(pa.table({"trial_id": pa.array([], pa.int64()), "ts": pa.array([], UTC_US),
                                             "metric": pa.array([], pa.string()),
                                             "value": pa.array([], pa.float64())}), "test")
    if query.name in IMPORT_SOURCES:  # an import reads the rows of its dataset's documented schema
        rows = DATASETS[IMPORT_SOURCES[query.name]].empty_table()
        if query.name == "import_telemetry_insert":  # parquet numbers the rows it reads (a point's first value)
            rows = rows.append_column("row_idx", pa.array([], pa.int64()))
        return rows
    if query.name == "objective_insert":
        return pa.table({"optimization_target": pa.array([], pa.string()),
                         "optimization_direction": pa.array([], pa.string()),
                         "ordinal": pa.array([], pa.int32())})
    return NAMED_VALUES_SCHEMA.empty_table()


#: Queries that read a store file being imported, attached as import_source (by import_store_attach).
READS_SOURCE = {name for name, query in QUERIES.items()
                if "import_source" in query.sql and name != "import_store_attach"}
#: Statements DuckDB cannot prepare: running them is the check.
UNPREPARABLE = ("SET ", "ATTACH ", "DETACH ")


@pytest.fixture(scope="module")
def source_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty store file to attach as import_source."""
    path = tmp_path_factory.mktemp("source") / "source.duckdb"
    Engine(path).close()
    return str(path)


#: The list parameters of a :rows query: one per column of the rows it stores.
ROW_COLUMNS = frozenset(NAMED_VALUES_SCHEMA.names)


def _params(query: Query, source_store: str) -> dict[str, object]:
    if query.kind == "rows":
        return {**{p: DUMMY_PARAMS[p] for p in query.params - ROW_COLUMNS}, **{c: [] for c in ROW_COLUMNS}}
    return {p: source_store if p == "path" else DUMMY_PARAMS[p] for p in query.params}


def _scalar_params(params: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in params.items() if name not in ROW_COLUMNS}


@pytest.fixture
def migrated() -> Iterator[duckdb.DuckDBPyConnection]:
    """A bare DuckDB connection with every schema file applied."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for migration in CATALOG.migrations:
        con.execute(migration.sql)
    yield con
    con.close()


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = Engine(None)
    yield eng
    eng.close()


def _insert_experiment(engine: Engine, experiment_id: str) -> None:
    engine.execute(CATALOG.experiment_insert, experiment_id=experiment_id, description="d",
                   root_env_config="env.jsonc", git_repo=None, git_commit=None, first_trial_id=1)


def _stored(engine: Engine, experiment_id: str) -> bool:
    return engine.fetch_one(CATALOG.experiment_get, experiment_id=experiment_id) is not None


# ---------------------------------------------------------------- the package catalog


def test_catalog_loads_with_queries_and_migrations() -> None:
    assert isinstance(CATALOG, Catalog)
    assert CATALOG.schema_version == len(CATALOG.migrations) >= 1
    assert [m.version for m in CATALOG.migrations] == list(range(1, CATALOG.schema_version + 1))
    assert CATALOG.trial_insert is QUERIES["trial_insert"]
    assert "trial_insert" in CATALOG


def test_catalog_is_parsed_once() -> None:
    assert load_catalog() is CATALOG


def test_unknown_query_attribute_names_it() -> None:
    with pytest.raises(AttributeError, match="no named query 'trial_frobnicate'"):
        CATALOG.trial_frobnicate  # noqa: B018


def test_catalog_matches_sql_folder() -> None:
    headers = re.findall(r"^--\s*name:\s*(\w+)", "\n".join(
        p.read_text() for p in sorted((SQL_DIR / "queries").glob("*.sql"))), flags=re.MULTILINE)
    assert sorted(headers) == sorted(QUERIES)
    assert [f"{m.version:04d}_{m.name}.sql" for m in CATALOG.migrations] == sorted(
        p.name for p in (SQL_DIR / "schema").glob("*.sql"))


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_has_known_kind_doc_and_source(name: str) -> None:
    query = QUERIES[name]
    assert query.kind in KINDS
    assert query.doc.strip()
    assert not query.doc.startswith("name:")
    assert re.fullmatch(r"sql/queries/\w+\.sql:\d+", query.source)
    assert not query.sql.rstrip().endswith(";")


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_params_are_its_placeholders(name: str) -> None:
    query = QUERIES[name]
    assert query.params == frozenset(re.findall(r"\$(\w+)", query.sql))
    assert query.params <= DUMMY_PARAMS.keys() | (ROW_COLUMNS if query.kind == "rows" else set())


def test_placeholders_ignore_quoted_text_and_comments() -> None:
    queries = parse_queries(
        "-- name: q :one\n-- Doc.\nSELECT '$not_a', \"$not_b\", $yes -- $not_c\nFROM t WHERE x = $also;\n",
        "f.sql",
    )
    assert queries[0].params == frozenset({"yes", "also"})


#: The turn of a shared store (attach, use, leave, detach): statements that cannot be
#: prepared or run inside a transaction; each is checked by running a whole turn.
TURN = ["store_attach", "store_attach_read_only", "store_use", "store_leave", "store_detach"]
#: Compaction's statements name the two files it attaches, in one sequence: checked by running a compaction.
COMPACTION = sorted(name for name in QUERIES if name.startswith("compaction_"))
TRANSACTIONAL_QUERIES = sorted(set(QUERIES) - set(TURN) - set(COMPACTION))


def test_a_compaction_runs_every_compaction_statement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlos_store.engine.connection import Connection

    ran: list[str] = []
    real_run = Connection._run

    def spy(self: Connection, con: duckdb.DuckDBPyConnection, query: Query, params: dict[str, object]) -> object:
        ran.append(query.name)
        return real_run(self, con, query, params)

    engine = Engine(tmp_path / "store.duckdb")
    monkeypatch.setattr(Connection, "_run", spy)
    try:
        engine.compact()
    finally:
        engine.close()
    assert COMPACTION and set(COMPACTION) <= set(ran)


@pytest.mark.parametrize("name", TURN)
def test_turn_statements_run_on_a_store_file(name: str, tmp_path: Path) -> None:
    path = str(tmp_path / "store.duckdb")
    Engine(path, mode="exclusive").close()
    con = duckdb.connect()
    try:
        attach = name if name.startswith("store_attach") else "store_attach"
        con.execute(QUERIES[attach].sql, {"path": path})
        for step in ("store_use", "store_leave", "store_detach"):
            con.execute(QUERIES[step].sql)
        assert con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'store'").fetchone() == (0,)
    finally:
        con.close()


@pytest.mark.parametrize("name", TRANSACTIONAL_QUERIES)
def test_query_prepares_against_migrated_schema(name: str, migrated: duckdb.DuckDBPyConnection,
                                                source_store: str) -> None:
    query = QUERIES[name]
    if name in READS_SOURCE:
        migrated.execute(QUERIES["import_store_attach"].sql, {"path": source_store})
    if query.sql.lstrip().upper().startswith(UNPREPARABLE):
        migrated.execute(query.sql, _params(query, source_store) or None)
        return
    if query.kind == "ingest":
        migrated.register("incoming", _incoming(query))
    migrated.execute(f"PREPARE checked AS {query.sql}")


#: The :value lookup that finds no row on an empty store; every other query must run cleanly on one
#: (no statement relies on a foreign key: a parent row is the caller's own, written or read in the
#: same transaction, see sql/schema/0005_no_indexes.sql).
MISSING_ON_EMPTY_STORE = {"tunable_config_id_by_hash"}


@pytest.mark.parametrize("name", TRANSACTIONAL_QUERIES)
def test_query_binds_typed_parameters(name: str, migrated: duckdb.DuckDBPyConnection, source_store: str) -> None:
    query = QUERIES[name]
    if query.kind == "ingest":
        migrated.register("incoming", _incoming(query))
    if name in READS_SOURCE:
        migrated.execute(QUERIES["import_store_attach"].sql, {"path": source_store})
    params = _params(query, source_store)
    migrated.begin()
    try:
        migrated.execute(query.sql, params or None).fetchall()
    finally:
        migrated.rollback()


class _Rollback(Exception):
    """Raised to leave a transaction block without committing."""


def run_by_kind(engine: Engine, query: Query, source_store: str) -> None:
    """Run ``query`` through the engine method of its kind with typed dummy parameters.

    A query in READS_SOURCE needs ``source_store`` attached first (outside the transaction).
    Also used on upgraded store files (tests/test_upgrade.py).
    """
    params = _params(query, source_store)
    run: Callable[[], object] = {
        "arrow": lambda: engine.fetch_table(query, **params),
        "one": lambda: engine.fetch_one(query, **params),
        "value": lambda: engine.fetch_value(query, **params),
        "count": lambda: engine.count(query, **params),
        "none": lambda: engine.execute(query, **params),
        "ingest": lambda: engine.ingest(query, _incoming(query), **params),
        "rows": lambda: engine.insert_rows(query, NAMED_VALUES_SCHEMA.empty_table(), **_scalar_params(params)),
    }[query.kind]
    run()


@pytest.mark.parametrize("name", TRANSACTIONAL_QUERIES)
def test_query_runs_through_engine_kind(name: str, engine: Engine, source_store: str) -> None:
    expected: type[Exception] = _Rollback
    match: str | None = None
    if name in MISSING_ON_EMPTY_STORE:
        expected, match = QueryError, rf"{name} .*returned 0 rows, expected one"
    if name in READS_SOURCE:
        engine.execute(QUERIES["import_store_attach"], path=source_store)
    with pytest.raises(expected, match=match), engine.transaction():
        run_by_kind(engine, QUERIES[name], source_store)
        raise _Rollback
    assert engine.fetch_one(CATALOG.store_format_version) == ("mlos_store", CATALOG.schema_version)


def test_ingest_queries_read_incoming() -> None:
    for query in QUERIES.values():
        assert (query.kind == "ingest") == bool(re.search(r"\bincoming\b", query.sql)), query.name


def test_schema_sql_has_one_migration_table() -> None:
    assert "CREATE TABLE schema_migration" in CATALOG.migrations[0].sql


# ---------------------------------------------------------------- parse errors


def test_duplicate_query_name_is_refused_naming_both_places() -> None:
    first = parse_queries("-- name: q :one\n-- Doc.\nSELECT 1;\n", "sql/queries/a.sql")
    second = parse_queries("\n-- name: q :value\n-- Doc.\nSELECT 2;\n", "sql/queries/b.sql")
    with pytest.raises(CatalogError, match=r"sql/queries/b\.sql:2: query name 'q' already defined at "
                                           r"sql/queries/a\.sql:1"):
        Catalog(first + second, [])


def test_duplicate_query_name_in_one_file_is_refused() -> None:
    queries = parse_queries("-- name: q :one\n-- Doc.\nSELECT 1;\n\n-- name: q :one\n-- Doc.\nSELECT 2;\n",
                            "x.sql")
    with pytest.raises(CatalogError, match=r"x\.sql:5: query name 'q' already defined at x\.sql:1"):
        Catalog(queries, [])


def test_unknown_kind_is_refused_with_file_and_line() -> None:
    with pytest.raises(CatalogError, match=r"^x\.sql:4: unknown query kind :many"):
        parse_queries("-- name: a :one\n-- Doc.\nSELECT 1;\n-- name: b :many\nSELECT 2;\n", "x.sql")


def test_statement_before_header_is_refused_with_file_and_line() -> None:
    with pytest.raises(CatalogError, match=r"^x\.sql:2: statement before any '-- name:' header"):
        parse_queries("-- a comment is fine\nSELECT 1;\n-- name: a :one\nSELECT 2;\n", "x.sql")


def test_header_without_statement_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"^x\.sql:1: query 'a' has no statement"):
        parse_queries("-- name: a :one\n-- Doc only.\n-- name: b :one\nSELECT 2;\n", "x.sql")


def test_two_statements_under_one_header_are_refused() -> None:
    with pytest.raises(CatalogError, match=r"^x\.sql:1: query 'a' holds more than one statement"):
        parse_queries("-- name: a :none\n-- Doc.\nDELETE FROM t;\nDELETE FROM u;\n", "x.sql")


def test_ingest_query_not_reading_incoming_is_refused() -> None:
    queries = parse_queries("-- name: a :ingest\n-- Doc.\nINSERT INTO t SELECT 1;\n", "x.sql")
    with pytest.raises(CatalogError, match=r"x\.sql:1: ingest query 'a' never reads 'incoming'"):
        Catalog(queries, [])


def test_query_without_doc_line_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"^x\.sql:4: query 'b' has no doc line"):
        parse_queries("-- name: a :one\n-- Doc.\nSELECT 1;\n-- name: b :one\nSELECT 2;\n", "x.sql")


@pytest.mark.parametrize("name", ["queries", "migrations", "schema_version", "with_queries", "__init__"])
def test_query_named_like_a_catalog_attribute_is_refused(name: str) -> None:
    queries = parse_queries(f"-- name: {name} :value\n-- Doc.\nSELECT 1;\n", "x.sql")
    with pytest.raises(CatalogError, match=rf"^x\.sql:1: query name '{name}' is taken by the catalog's own "
                                           rf"attribute Catalog\.{name}"):
        Catalog(queries, [])


def test_parsed_query_keeps_name_kind_doc_and_params() -> None:
    [query] = parse_queries(
        "-- name: trial_get :one\n-- First line.\n-- Second line.\nSELECT *\nFROM trial\nWHERE id = $trial_id;\n",
        "x.sql",
    )
    assert (query.name, query.kind, query.doc, query.params, query.source) == (
        "trial_get", "one", "First line. Second line.", frozenset({"trial_id"}), "x.sql:1")
    assert query.sql == "SELECT *\nFROM trial\nWHERE id = $trial_id"
    assert str(query) == "trial_get (x.sql:1)"


def _catalog_folder(root: Path, schema: dict[str, str], queries: dict[str, str]) -> Path:
    (root / "schema").mkdir(parents=True)
    (root / "queries").mkdir()
    for name, text in schema.items():
        (root / "schema" / name).write_text(text)
    for name, text in queries.items():
        (root / "queries" / name).write_text(text)
    return root


def test_gap_in_migration_numbering_is_refused_naming_file(tmp_path: Path) -> None:
    root = _catalog_folder(tmp_path / "sql", {"0001_core.sql": "CREATE TABLE a (x INTEGER);",
                                              "0003_later.sql": "CREATE TABLE b (x INTEGER);"}, {})
    with pytest.raises(CatalogError, match=r"0003_later\.sql"):
        load_catalog_from(root)


def test_gap_in_migration_numbering_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"0003_later\.sql: .* without gaps; expected 0002 here"):
        Catalog([], [Migration(1, "core", ""), Migration(3, "later", "")])


def test_misnamed_schema_file_is_refused(tmp_path: Path) -> None:
    root = _catalog_folder(tmp_path / "sql", {"core.sql": "CREATE TABLE a (x INTEGER);"}, {})
    with pytest.raises(CatalogError, match=r"schema file 'core\.sql' is not named NNNN_name\.sql"):
        load_catalog_from(root)


def test_duplicate_across_query_files_is_refused_at_load(tmp_path: Path) -> None:
    root = _catalog_folder(tmp_path / "sql", {"0001_core.sql": "CREATE TABLE t (x INTEGER);"}, {
        "a.sql": "-- name: t_get :one\n-- Doc.\nSELECT x FROM t;\n",
        "b.sql": "-- name: t_get :value\n-- Doc.\nSELECT count(*) FROM t;\n",
    })
    with pytest.raises(CatalogError, match=r"sql/queries/b\.sql:1: query name 't_get' already defined at "
                                           r"sql/queries/a\.sql:1"):
        load_catalog_from(root)


def test_catalog_error_in_folder_names_file_and_line(tmp_path: Path) -> None:
    root = _catalog_folder(tmp_path / "sql", {"0001_core.sql": "CREATE TABLE t (x INTEGER);"}, {
        "t.sql": "-- name: t_get :one\n-- Doc.\nSELECT x FROM t;\n\n-- name: t_all :many\nSELECT x FROM t;\n",
    })
    with pytest.raises(CatalogError, match=r"sql/queries/t\.sql:5: unknown query kind :many"):
        load_catalog_from(root)


def test_copy_of_package_folder_loads_same_catalog(tmp_path: Path) -> None:
    root = tmp_path / "sql"
    shutil.copytree(SQL_DIR, root)
    copy = load_catalog_from(root)
    assert copy.queries == QUERIES
    assert copy.migrations == CATALOG.migrations


# ---------------------------------------------------------------- engine calls


def test_engine_refuses_missing_parameters(engine: Engine) -> None:
    with pytest.raises(QueryError, match=r"experiment_next_trial_id \(sql/queries/experiment\.sql:\d+\): "
                                         r"missing parameters \['first_trial_id'\], unexpected \[\]"):
        engine.fetch_value(CATALOG.experiment_next_trial_id, experiment_id="exp")


def test_engine_refuses_extra_parameters(engine: Engine) -> None:
    with pytest.raises(QueryError, match=r"experiment_get .*missing parameters \[\], unexpected \['trial_id'\]"):
        engine.fetch_one(CATALOG.experiment_get, experiment_id="exp", trial_id=1)


def test_engine_refuses_parameters_for_query_without_any(engine: Engine) -> None:
    with pytest.raises(QueryError, match=r"store_probe .*unexpected \['x'\]"):
        engine.fetch_one(CATALOG.store_probe, x=1)


@pytest.mark.parametrize(("method", "query_name", "kind"), [
    ("fetch_table", "experiment_get", "one"),
    ("fetch_one", "objective_list", "arrow"),
    ("fetch_value", "trial_advance", "count"),
    ("count", "experiment_insert", "none"),
    ("execute", "trial_insert", "value"),
])
def test_engine_refuses_query_of_wrong_kind(engine: Engine, method: str, query_name: str, kind: str) -> None:
    query = QUERIES[query_name]
    params = {p: DUMMY_PARAMS[p] for p in query.params}
    with pytest.raises(QueryError, match=rf"{query_name} .* is :{kind}, not :"):
        getattr(engine, method)(query, **params)
    assert not _stored(engine, "exp")


def test_engine_refuses_ingest_of_non_ingest_query(engine: Engine) -> None:
    with pytest.raises(QueryError, match=r"experiment_insert .* is :none, not :ingest"):
        engine.ingest(CATALOG.experiment_insert, NAMED_VALUES_SCHEMA.empty_table(), experiment_id="exp")


def test_engine_binds_values_never_splices_them(engine: Engine) -> None:
    hostile = "x'); DROP TABLE experiment; --"
    _insert_experiment(engine, hostile)
    assert engine.fetch_one(CATALOG.experiment_get, experiment_id=hostile) == ("d", "env.jsonc", 1)


def test_engine_translates_constraint_violation(engine: Engine) -> None:
    with pytest.raises(InvalidValueError, match="experiment_insert .*violated a constraint.*CHECK"):
        _insert_experiment(engine, "")


def test_engine_translates_duckdb_errors(engine: Engine) -> None:
    with pytest.raises(QueryError, match=r"experiment_next_trial_id .*failed"):
        engine.fetch_value(CATALOG.experiment_next_trial_id, experiment_id="exp", first_trial_id="not a number")


def test_engine_returns_utc_timestamps(engine: Engine) -> None:
    table = engine.fetch_table(CATALOG.telemetry_list, experiment_id="exp", trial_ids=None,
                               metrics=None, start=None, end=None)
    assert table.schema.field("ts").type.tz == "UTC"


def test_engine_stream_does_not_block_other_calls(engine: Engine) -> None:
    for i in range(3):
        _insert_experiment(engine, f"exp{i}")
    reader = engine.stream(CATALOG.objective_list, batch_size=1, experiment_id="exp0")
    assert isinstance(reader, pa.RecordBatchReader)
    assert _stored(engine, "exp1")
    assert reader.read_all().num_rows == 0


#: Counts up to $n rows, then fails inside DuckDB: after the first batches when $n is large.
(FAILING_LATE,) = parse_queries(
    "-- name: failing_late :arrow\n-- Rows 0..$n-1, then a DuckDB error.\n"
    "SELECT CASE WHEN i < $n THEN i ELSE error('stream broke at ' || i::VARCHAR) END AS i\n"
    "FROM range(300000) AS t(i);\n",
    "test.sql",
)


class _CursorSpy:
    """Stands in for the engine's connection and keeps every cursor it hands out."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.cursors: list[duckdb.DuckDBPyConnection] = []

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        self.cursors.append(cursor)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _is_closed(cursor: duckdb.DuckDBPyConnection) -> bool:
    try:
        cursor.execute("SELECT 1").fetchall()
    except duckdb.ConnectionException:
        return True
    return False


@pytest.fixture
def cursor_spy(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> _CursorSpy:
    spy = _CursorSpy(engine._connection())
    monkeypatch.setattr(engine, "_connection", lambda: spy)
    return spy


def test_engine_stream_closes_its_cursor_once_exhausted(engine: Engine, cursor_spy: _CursorSpy) -> None:
    reader = engine.stream(FAILING_LATE, batch_size=1000, n=300_000)
    (cursor,) = cursor_spy.cursors
    first = reader.read_next_batch()
    assert first.num_rows > 0 and first.column(0)[0].as_py() == 0
    rest = sum(batch.num_rows for batch in reader)
    assert first.num_rows + rest == 300_000
    assert _is_closed(cursor)


def test_engine_stream_error_before_the_first_batch_is_a_query_error(engine: Engine,
                                                                     cursor_spy: _CursorSpy) -> None:
    with pytest.raises(QueryError, match=r"failing_late \(test\.sql:1\) failed: .*stream broke at 0"):
        engine.stream(FAILING_LATE, batch_size=1000, n=0).read_all()
    (cursor,) = cursor_spy.cursors
    assert _is_closed(cursor)
    assert engine.fetch_one(CATALOG.experiment_get, experiment_id="none") is None  # the engine still works


def test_engine_stream_error_while_reading_is_a_query_error(engine: Engine, cursor_spy: _CursorSpy) -> None:
    # One thread, so rows are produced in order and the error is reached only after the first batches
    # (with several, a thread may reach row 250000 before the first batch is out: a flaky test).
    cursor_spy.execute("SET threads = 1")
    reader = engine.stream(FAILING_LATE, batch_size=1000, n=250_000)
    assert reader.read_next_batch().num_rows > 0  # the stream started fine
    with pytest.raises(QueryError, match=r"failing_late \(test\.sql:1\) failed: .*stream broke at 250000") as info:
        reader.read_all()
    assert isinstance(info.value, StoreError)
    (cursor,) = cursor_spy.cursors
    assert _is_closed(cursor)
    assert engine.fetch_one(CATALOG.experiment_get, experiment_id="none") is None  # the engine still works


# ---------------------------------------------------------------- transactions


def test_exception_in_transaction_rolls_back_everything(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), engine.transaction():
        _insert_experiment(engine, "a")
        _insert_experiment(engine, "b")
        raise RuntimeError("boom")
    assert not _stored(engine, "a")
    assert not _stored(engine, "b")


def test_nested_transaction_joins_outer_one(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), engine.transaction():
        _insert_experiment(engine, "outer")
        with engine.transaction():
            _insert_experiment(engine, "inner")
        assert _stored(engine, "inner")
        raise RuntimeError("boom")
    assert not _stored(engine, "outer")
    assert not _stored(engine, "inner")


def test_exception_in_nested_block_rolls_back_outer_writes(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), engine.transaction():
        _insert_experiment(engine, "outer")
        with engine.transaction():
            _insert_experiment(engine, "inner")
            raise RuntimeError("boom")
    assert not _stored(engine, "outer")
    assert not _stored(engine, "inner")


def test_transaction_commits_when_block_succeeds(engine: Engine) -> None:
    with engine.transaction():
        _insert_experiment(engine, "a")
        with engine.transaction():
            _insert_experiment(engine, "b")
    assert _stored(engine, "a") and _stored(engine, "b")


def test_engine_is_usable_after_rollback(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), engine.transaction(), engine.transaction():
        raise RuntimeError("boom")
    with engine.transaction():
        _insert_experiment(engine, "after")
    with pytest.raises(RuntimeError, match="again"), engine.transaction():
        raise RuntimeError("again")
    assert _stored(engine, "after")


def test_failed_query_rolls_back_its_transaction(engine: Engine) -> None:
    _insert_experiment(engine, "kept")
    with pytest.raises(InvalidValueError, match="experiment_insert"), engine.transaction():
        _insert_experiment(engine, "fresh")
        _insert_experiment(engine, "")  # refused by a CHECK
    assert not _stored(engine, "fresh")
    assert _stored(engine, "kept")


def test_transaction_returning_normally_means_stored(engine: Engine) -> None:
    """A query error swallowed inside the block must not turn into a silent loss at commit.

    As documented on ``Engine.transaction``: the whole transaction is rolled back and the
    outermost block raises instead of reporting a commit.
    """
    _insert_experiment(engine, "before")
    with pytest.raises(QueryError, match="caught and ignored.*rolled back") as info:
        with engine.transaction():
            _insert_experiment(engine, "kept")
            with contextlib.suppress(InvalidValueError):
                _insert_experiment(engine, "")  # refused by a CHECK
    assert isinstance(info.value, StoreError)
    assert not _stored(engine, "kept")
    assert _stored(engine, "before")
    with engine.transaction():  # the engine is usable afterwards
        _insert_experiment(engine, "after")
    assert _stored(engine, "after")


def test_swallowed_exception_of_nested_block_does_not_commit_its_writes(engine: Engine) -> None:
    """A nested block that raised is not committed, even if the outer block catches the error."""
    with pytest.raises(QueryError, match="caught and ignored.*rolled back"):
        with engine.transaction():
            _insert_experiment(engine, "outer")
            with contextlib.suppress(RuntimeError), engine.transaction():
                _insert_experiment(engine, "inner")
                raise RuntimeError("boom")
    assert not _stored(engine, "inner")
    assert not _stored(engine, "outer")
    with engine.transaction():  # the engine is usable afterwards
        _insert_experiment(engine, "after")
    assert _stored(engine, "after")


# ---------------------------------------------------------------- module boundaries


def _package_modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py")) + sorted(SQL_DIR.rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and node.value in ("duckdb", "_duckdb"):
            roots.add("duckdb")  # importlib.import_module("duckdb") and the like
    return roots


def test_only_engine_imports_duckdb() -> None:
    importers = {
        path.relative_to(PACKAGE_DIR.parent).as_posix()
        for path in _package_modules()
        if {"duckdb", "_duckdb"} & _imported_roots(ast.parse(path.read_text(), str(path)))
    }
    assert importers and all(path.startswith("mlos_store/engine/") for path in importers), importers


#: SQL as this project writes it (upper-case keywords), plus phrases no English message uses in any case.
_SQL_TEXT = re.compile(
    r"\bSELECT\b[\s\S]+\bFROM\b|\bUPDATE\s+\w+\s+SET\b|\bSET\s+\w+\s*="
    r"|\bPRAGMA\s+\w+|\bATTACH\s+'|\bCOPY\s+\w+\s+(?:TO|FROM)\b"
    r"|^\s*(?:BEGIN|COMMIT|ROLLBACK|CHECKPOINT)(?:\s+TRANSACTION)?\s*;?\s*$"
    r"|(?i:\binsert\s+into\s+\w+|\bdelete\s+from\s+\w+"
    r"|\b(?:create|drop|alter)\s+(?:or\s+replace\s+)?(?:table|view|index|sequence|macro)\s+\w+)",
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _sql_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        and _SQL_TEXT.search(node.value)
    ]


def test_sql_text_detector_finds_sql() -> None:
    for text in ("SELECT x FROM t", "insert into t values (1)", "UPDATE trial SET status = 1",
                 "DELETE FROM t", "CREATE TABLE t (x INTEGER)", "SET TimeZone = 'UTC'", "COMMIT",
                 "PRAGMA version", "ATTACH 'f' AS x"):
        assert _SQL_TEXT.search(text), text
    for text in ("select the best trial", "experiment {id!r} is stored", "update the trial first"):
        assert not _SQL_TEXT.search(text), text


def test_no_module_outside_engine_holds_sql_text() -> None:
    found = [
        literal
        for path in _package_modules()
        if path.name != "catalog.py"
        for literal in _sql_literals(path)
    ]
    assert found == []


def test_every_named_query_is_used_by_the_package() -> None:
    """A query no code runs is dead SQL: it would rot unseen."""
    source = "\n".join(path.read_text() for path in PACKAGE_DIR.rglob("*.py"))
    unused = [name for name in CATALOG.queries if not re.search(rf"\.{name}\b", source)]
    assert unused == []


#: What ``catalog.<name>`` reads besides queries.
CATALOG_ATTRIBUTES = frozenset(dir(CATALOG))


#: How package code names the store's catalog: a local ``sql`` or ``catalog``, or ``<x>._sql`` / ``<x>.catalog``.
def _is_catalog(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id in ("sql", "catalog")) or (
        isinstance(node, ast.Attribute) and node.attr in ("_sql", "catalog"))


def _query_names(node: ast.expr, local: dict[str, set[str]]) -> set[str]:
    """The catalog query names an expression may evaluate to: ``sql.x``, ``a if c else b``, a local."""
    if isinstance(node, ast.Attribute) and _is_catalog(node.value) and node.attr not in CATALOG_ATTRIBUTES:
        return {node.attr}
    if isinstance(node, ast.IfExp):
        return _query_names(node.body, local) | _query_names(node.orelse, local)
    if isinstance(node, ast.Name):
        return local.get(node.id, set())
    return set()


def _engine_calls(source: str, filename: str) -> list[tuple[str, str, str]]:
    """``(where, engine method, query name)`` for each query handed straight to an engine method.

    A query held in a local variable first (``query = sql.a if c else sql.b``) counts as each value it may take.
    """
    calls: list[tuple[str, str, str]] = []
    for function in ast.walk(ast.parse(source, filename)):
        if not isinstance(function, (ast.FunctionDef, ast.Lambda)):
            continue
        local: dict[str, set[str]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                local.setdefault(node.targets[0].id, set()).update(_query_names(node.value, {}))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                    node.func.attr in ENGINE_METHOD_KINDS):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    calls.extend((f"{filename}:{node.lineno}", node.func.attr, name)
                                 for name in _query_names(arg, local))
    return sorted(set(calls))


def _catalog_references(source: str, filename: str) -> list[tuple[str, str]]:
    """``(where, name)`` for every ``<catalog>.<name>`` that is no attribute of Catalog itself.

    A query is never called, so ``sql.add_argument(...)`` (an argparse parser named sql) is no reference.
    """
    tree = ast.parse(source, filename)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return [(f"{filename}:{node.lineno}", node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and id(node) not in called and _is_catalog(node.value)
            and node.attr not in CATALOG_ATTRIBUTES]


def _package_sources() -> list[tuple[str, str]]:
    return [(path.read_text(), path.relative_to(PACKAGE_DIR.parent).as_posix()) for path in _package_modules()]


def test_every_catalog_reference_in_the_package_names_a_query() -> None:
    """A misspelt query name fails here, not when its line first runs."""
    references = [ref for source, name in _package_sources() for ref in _catalog_references(source, name)]
    assert len(references) > 100
    assert [(where, name) for where, name in references if name not in QUERIES] == []


def test_every_query_handed_to_an_engine_method_has_a_kind_it_runs() -> None:
    calls = [call for source, name in _package_sources() for call in _engine_calls(source, name)]
    assert {method for _, method, _ in calls} == set(ENGINE_METHOD_KINDS)  # every method's calls are seen
    misfits = [f"{where}: {method}({name}) but {name} is :{QUERIES[name].kind}" for where, method, name in calls
               if name in QUERIES and QUERIES[name].kind not in ENGINE_METHOD_KINDS[method]]
    assert misfits == []


def test_contract_scan_finds_a_misspelt_name_and_a_wrong_kind() -> None:
    source = ("def f(self, engine, sql):\n"
              "    engine.fetch_one(self._sql.trial_insrt, x=1)\n"
              "    query = sql.trial_insert if x else sql.experiment_list\n"
              "    engine.count(query)\n")
    assert [name for _, name in _catalog_references(source, "f.py") if name not in QUERIES] == ["trial_insrt"]
    assert [(m, n, QUERIES[n].kind) for _, m, n in _engine_calls(source, "f.py") if n in QUERIES] == [
        ("count", "experiment_list", "arrow"), ("count", "trial_insert", "value")]


def test_engine_methods_refuse_the_kinds_the_catalog_maps() -> None:
    """The engine's own run-time check (``self._expect(query, kind)``) agrees with ENGINE_METHOD_KINDS."""
    expected: dict[str, set[str]] = {}
    for path in sorted((PACKAGE_DIR / "engine").glob("*.py")):
        for function in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(function, ast.FunctionDef) and not function.name.startswith("_"):
                for node in ast.walk(function):
                    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                            and node.func.attr == "_expect" and isinstance(node.args[1], ast.Constant)):
                        expected.setdefault(function.name, set()).add(str(node.args[1].value))
    public = {method: kinds for method, kinds in ENGINE_METHOD_KINDS.items() if not method.startswith("_")}
    assert expected == public


def test_with_queries_adds_named_queries_and_keeps_names_unique() -> None:
    store = load_catalog()
    extended = store.with_queries("-- name: extra_count :value\n-- How many trials.\nSELECT count(*) FROM trial;\n",
                                  "extra.sql")
    assert extended.extra_count.kind == "value" and "extra_count" not in store
    assert extended.migrations == store.migrations and set(store.queries) < set(extended.queries)
    with pytest.raises(CatalogError, match="'trial_insert' already defined"):
        store.with_queries("-- name: trial_insert :none\n-- Again.\nSELECT 1;\n", "again.sql")


#: SHA-256 of each shipped schema file. Store files outlive the code: a migration already applied to
#: someone's file must never change (a new one is appended instead), so editing one fails here.
#: A new migration is pinned in the same commit that adds it.
SHIPPED_MIGRATIONS = {
    "0001_core.sql": "2743e34992fdc52bf4ab08a1a13bccde9f329657ab3958d7cec5933d7e4714e7",
    "0002_merge.sql": "e58f722cb7ac86aae0b2a6de8dfb3558bcd8d047b601a8b6d23414737f35840a",
    "0003_trial_id_exhaustion.sql": "663fed02e1f162361b28db4534bfcc05b78da2ae1d83e89a3917445a8e9d78d7",
    "0004_objective_losses.sql": "8817289bec09c9b51ec13cb65700a48020a55863ad517a23a6fed7820bff6091",
    "0005_no_indexes.sql": "221789ebd74fcf2d9806d51fa5ef620d580821bf9420375824a2ce81199474d1",
    "0006_sync.sql": "ad3707bd5a9798bd2bf4876239729bbdce82b1ffb406e82842c37a398cf9fd32",
    "0007_config_hash_key.sql": "f21e434c5e696e9afdc5b0fa2108ddcc7d9cf425763785bf521c26fbfa24dc44",
}


def test_shipped_migrations_are_never_edited() -> None:
    files = sorted((SQL_DIR / "schema").glob("*.sql"))
    hashes = {file.name: hashlib.sha256(file.read_bytes()).hexdigest() for file in files}
    assert hashes == SHIPPED_MIGRATIONS


def test_every_export_query_gives_its_lake_dataset_schema_exactly() -> None:
    """The documented layout (lake.DATASETS, written into _mlos_store.json) is what the export queries give,
    so an export never casts (and so never changes) a value."""
    engine = Engine(None)
    try:
        for name, schema in DATASETS.items():
            params = {"from_rowid": 0, "to_rowid": 1} if name == "telemetry" else {}
            rows = engine.fetch_table(QUERIES[f"export_{name}"], experiment_id="exp", **params)
            assert rows.schema.remove_metadata() == schema, name
    finally:
        engine.close()
