"""The DuckDB connection layer: the only module that imports duckdb.

It opens (and creates, and migrates) a database, runs named queries from the
catalog with bound parameters, ingests Arrow data, nests transactions and
translates DuckDB's exceptions into the library's own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa

from .catalog import Catalog, Query, load_catalog
from .errors import (
    InvalidValueError,
    NotAStoreError,
    QueryError,
    SchemaVersionError,
    StoreClosedError,
    StoreUnavailableError,
)

STORE_FORMAT = "mlos_store"
MEMORY = ":memory:"
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8

ArrowInput: TypeAlias = "pa.Table | pa.RecordBatch | pa.RecordBatchReader"


class Engine:
    """One DuckDB connection to one store, shared by every object using it.

    Calls are serialised by a lock, so experiments and trials of one
    ``Storage`` may be used from several threads.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 catalog: Catalog | None = None) -> None:
        self.catalog = catalog or load_catalog()
        self.path = MEMORY if path is None or str(path) == MEMORY else os.fspath(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._depth = 0
        self._aborted = False  # an error happened inside the open transaction
        self._con: duckdb.DuckDBPyConnection | None = self._open()

    # ------------------------------------------------------------ opening

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.in_memory or not os.path.exists(self.path):
            if self.read_only:
                raise NotAStoreError(
                    "an in-memory store cannot be opened read-only: it would always be empty"
                    if self.in_memory else f"cannot open {self.path!r} read-only: no such file"
                )
            con = self._connect(read_only=False)
            self._migrate(con, from_version=0)
            return con
        self._check_duckdb_file()
        version = self._inspect()
        if version < self.catalog.schema_version and self.read_only:
            raise SchemaVersionError(
                f"{self.path!r} has schema version {version}, this mlos_store needs "
                f"{self.catalog.schema_version}: open it once read-write to upgrade it"
            )
        con = self._connect(read_only=self.read_only)
        self._migrate(con, from_version=version)
        return con

    def _check_duckdb_file(self) -> None:
        """Refuse, without opening it in DuckDB, a file that is not a DuckDB database."""
        if os.path.isdir(self.path):
            raise NotAStoreError(f"{self.path!r} is a directory, not an mlos_store database")
        with open(self.path, "rb") as file:
            header = file.read(_MAGIC_OFFSET + len(_DUCKDB_MAGIC))
        if header[_MAGIC_OFFSET:] != _DUCKDB_MAGIC:
            raise NotAStoreError(
                f"{self.path!r} is not an mlos_store database (not a DuckDB file); it was left untouched"
            )

    def _inspect(self) -> int:
        """The schema version of an existing file, read without writing to it."""
        con = self._connect(read_only=True)
        try:
            object_count, has_store_info = self._fetch_row(con, self.catalog.store_probe)
            if object_count == 0:
                return 0  # an empty DuckDB database: made a store like a new file
            if not has_store_info:
                raise NotAStoreError(
                    f"{self.path!r} is a DuckDB database but not an mlos_store database "
                    f"({object_count} foreign objects); it was left untouched"
                )
            store_format, version = self._fetch_row(con, self.catalog.store_format_version)
        finally:
            con.close()
        if store_format != STORE_FORMAT:
            raise NotAStoreError(f"{self.path!r} is not an mlos_store database (format {store_format!r})")
        if version is None or version > self.catalog.schema_version:
            raise SchemaVersionError(
                f"{self.path!r} has schema version {version}, newer than this mlos_store knows "
                f"({self.catalog.schema_version}): upgrade mlos_store to open it"
            )
        return int(version)

    def _fetch_row(self, con: duckdb.DuckDBPyConnection, query: Query) -> tuple[Any, ...]:
        row = self._run(con, query, {}).fetchone()
        if row is None:
            raise QueryError(f"query {query} returned no row")
        return row

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise StoreUnavailableError(f"cannot open {self.path!r}: {exc}") from exc
        try:
            self._configure(con)
        except BaseException:
            con.close()
            raise
        return con

    def _configure(self, con: duckdb.DuckDBPyConnection) -> None:
        self._run(con, self.catalog.session_use_utc, {})
        self._run(con, self.catalog.session_no_replacement_scans, {})

    def _migrate(self, con: duckdb.DuckDBPyConnection, *, from_version: int) -> None:
        """Apply each schema file past ``from_version``, each in one transaction.

        On failure the file keeps the last version fully applied and is
        released (the connection closed) before the error propagates.
        """
        for migration in self.catalog.migrations[from_version:]:
            try:
                con.begin()
                try:
                    con.execute(migration.sql)
                except duckdb.Error as exc:
                    raise SchemaVersionError(
                        f"{self.path!r}: schema file {migration.version:04d}_{migration.name}.sql failed, "
                        f"the store stays at version {migration.version - 1}: {exc}"
                    ) from exc
                self._run(con, self.catalog.schema_migration_record,
                          {"version": migration.version, "name": migration.name})
                con.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                con.close()
                raise

    # ------------------------------------------------------------ running

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreClosedError(f"the store {self.path!r} is closed")
        return self._con

    def _run(self, con: duckdb.DuckDBPyConnection, query: Query, params: dict[str, Any]) -> duckdb.DuckDBPyConnection:
        with self._translated(query, params):
            return con.execute(query.sql, params or None)

    @contextlib.contextmanager
    def _translated(self, query: Query, params: dict[str, Any]) -> Iterator[None]:
        """Check the parameters against the query's, and turn DuckDB errors into ours.

        An error inside a transaction dooms it: DuckDB would discard its work
        at COMMIT yet report success, so the engine remembers and refuses.
        """
        given = frozenset(params)
        if given != query.params:
            missing, extra = sorted(query.params - given), sorted(given - query.params)
            raise QueryError(f"query {query}: missing parameters {missing}, unexpected {extra}")
        try:
            yield
        except duckdb.Error as exc:
            if self._depth:
                self._aborted = True
            if isinstance(exc, duckdb.ConstraintException):
                raise InvalidValueError(f"query {query} violated a constraint: {exc}") from exc
            raise QueryError(f"query {query} failed: {exc}") from exc

    def fetch_table(self, query: Query, **params: Any) -> pa.Table:
        """Run an ``:arrow`` query and return its whole result."""
        self._expect(query, "arrow")
        with self._lock, self._translated(query, params):
            return self._connection().sql(query.sql, params=params or None).to_arrow_table()

    def stream(self, query: Query, *, batch_size: int = 1_000_000, **params: Any) -> pa.RecordBatchReader:
        """Run an ``:arrow`` query on its own cursor and stream its batches.

        The stream does not block other calls on this engine while it is read;
        its cursor closes when the stream is exhausted or fails.
        """
        self._expect(query, "arrow")
        with self._lock:
            cursor = self._connection().cursor()
            try:
                self._configure(cursor)
                with self._translated(query, params):
                    reader = cursor.sql(query.sql, params=params or None).to_arrow_reader(batch_size)
            except BaseException:
                cursor.close()
                raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                with self._translated(query, params):
                    yield from reader
            except (pa.ArrowException, OSError) as exc:  # DuckDB errors after the first chunk come through Arrow
                raise QueryError(f"query {query} failed: {exc}") from exc
            finally:
                cursor.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def fetch_one(self, query: Query, **params: Any) -> tuple[Any, ...] | None:
        """Run a ``:one`` query: its only row, or None."""
        self._expect(query, "one")
        with self._lock:
            rows = self._run(self._connection(), query, params).fetchall()
        if len(rows) > 1:
            raise QueryError(f"query {query} returned {len(rows)} rows, expected at most one")
        return rows[0] if rows else None

    def fetch_value(self, query: Query, **params: Any) -> Any:
        """Run a ``:value`` query: the first column of its only row."""
        self._expect(query, "value")
        with self._lock:
            rows = self._run(self._connection(), query, params).fetchall()
        if len(rows) != 1:
            raise QueryError(f"query {query} returned {len(rows)} rows, expected one")
        return rows[0][0]

    def count(self, query: Query, **params: Any) -> int:
        """Run a ``:count`` statement: how many rows it changed."""
        self._expect(query, "count")
        with self._lock:
            rows = self._run(self._connection(), query, params).fetchall()
        return int(rows[0][0]) if rows else 0

    def execute(self, query: Query, **params: Any) -> None:
        """Run a ``:none`` query."""
        self._expect(query, "none")
        with self._lock:
            self._run(self._connection(), query, params).fetchall()

    def ingest(self, query: Query, data: ArrowInput, **params: Any) -> None:
        """Run an ``:ingest`` query over Arrow rows visible to it as ``incoming``."""
        self._expect(query, "ingest")
        with self._lock:
            con = self._connection()
            con.register("incoming", data)
            try:
                self._run(con, query, params).fetchall()
            finally:
                con.unregister("incoming")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All calls inside run as one transaction; nested blocks join the outer one.

        An exception leaving any block, or a failed query inside, rolls the
        whole transaction back, even if an outer block catches the error:
        the outermost block then raises instead of reporting a commit.
        """
        with self._lock:
            con = self._connection()
            if self._depth == 0:
                con.begin()
                self._aborted = False
            self._depth += 1
            try:
                yield
            except BaseException:
                self._aborted = True
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._finish(con)

    def _finish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Commit the outermost transaction, or roll it back if anything failed inside."""
        if self._aborted:
            self._aborted = False
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            if sys.exc_info()[1] is None:
                raise QueryError("an error inside the transaction was caught and ignored; "
                                 "the whole transaction was rolled back, nothing was stored")
            return
        try:
            con.commit()
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            raise QueryError(f"commit failed, nothing was stored: {exc}") from exc

    @staticmethod
    def _expect(query: Query, kind: str) -> None:
        if query.kind != kind:
            raise QueryError(f"query {query} is :{query.kind}, not :{kind}")

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @property
    def closed(self) -> bool:
        return self._con is None
