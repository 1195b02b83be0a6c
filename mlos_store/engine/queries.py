"""Running the catalog's named queries: one method per query kind, transactions, streams.

The public face of the engine. Each method checks the query's kind and runs
it in a session (in the shared mode, inside a turn on the file).
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa

from ..catalog import Query
from ..errors import InvalidValueError, QueryError, StoreUnavailableError
from .compaction import Compaction
from .connection import DURABLE_COMMIT, Row, database_lost, row_type
from .files import resolved_store_path

ArrowInput: TypeAlias = "pa.Table | pa.RecordBatch | pa.RecordBatchReader"


class Engine(Compaction):
    """One DuckDB connection to one store, shared by every object using it.

    Calls are serialised by a lock, so experiments and trials of one
    ``Storage`` may be used from several threads.

    A file store has one of two modes. ``"exclusive"`` holds the file from
    open to close, the fastest path for a process that works alone.
    ``"shared"`` (the default for files) lets several processes use the file
    in turn: each operation or transaction runs while this engine holds the
    file's OS lock (``locking.FileGate``) with the file attached to a private
    in-memory connection. After an operation the engine keeps the file while
    nobody waits, for at most ``linger`` seconds, and lets go as soon as
    another process waits. Waiting for the file gives up after ``timeout``
    seconds with StoreBusyError. An open ``stream`` keeps the turn until it
    is read through or dropped.
    """

    @contextlib.contextmanager
    def _session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection for one operation; in shared mode the file is held for it (and its transaction)."""
        self._check_process()
        with self._lock:
            con = self._connection()
            if not self.shared:
                yield con
                return
            self._begin_turn()
            try:
                yield con
            finally:
                if self._depth == 0 and self._streams == 0:
                    self._end_turn()

    def fetch_table(self, query: Query, **params: Any) -> pa.Table:
        """Run an ``:arrow`` query and return its whole result."""
        self._expect(query, "arrow")
        with self._session() as con, self._translated(query, params):
            return con.sql(query.sql, params=params or None).to_arrow_table()

    def fetch_user_query(self, text: str) -> pa.Table:
        """Run one read statement a person wrote (``mlos-store sql``) on a store opened read-only.

        The text is the caller's own, not a query of the catalog, so it is
        held to two locks: DuckDB's parser must find exactly one statement
        and it must be a SELECT (SHOW, DESCRIBE, SUMMARIZE and FROM-first
        queries parse as one); and the store must be open read-only, so the
        file cannot change even if a SELECT found a way to write.
        """
        if not self.read_only:
            raise InvalidValueError(f"a query of your own runs only on a store opened read-only; {self.path!r} is "
                                    "open read-write")
        _check_single_select(text)
        with self._session(), self._sandbox() as con, self._errors_translated("the query"):
            return con.sql(text).to_arrow_table()

    @contextlib.contextmanager
    def _sandbox(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private connection for SQL a person wrote, held to the store: the file attached read-only
        (during this engine's turn), no other file or URL reachable, no extension installed or loaded.

        Its own in-memory database, closed afterwards: DuckDB never lets a
        database take external access back, and the engine's own connection
        needs it (attaching in turns, exports).
        """
        con = self._connect_memory()
        try:
            for query in (self.catalog.session_no_extension_autoinstall, self.catalog.session_no_extension_autoload):
                self._run(con, query, {})
            self._run(con, self.catalog.store_attach_read_only, {"path": self.file})
            self._run(con, self.catalog.store_use, {})
            self._run(con, self.catalog.session_no_external_access, {})
            yield con
        finally:
            con.close()

    def stream(self, query: Query, *, batch_size: int = 1_000_000, **params: Any) -> pa.RecordBatchReader:
        """Run an ``:arrow`` query on its own cursor and stream its batches.

        The stream does not block other calls on this engine while it is read;
        its cursor closes when the stream is exhausted, fails or is dropped.
        A shared store keeps its turn on the file for the stream's life, so
        batches are read lazily with bounded memory; other processes wait
        meanwhile, so read a stream through, or drop it, promptly.
        """
        self._expect(query, "arrow")
        self._check_process()
        with self._lock:
            con = self._connection()
            if self.shared:
                self._begin_turn()
                self._streams += 1
            cursor = con.cursor()
            try:
                self._configure(cursor)
                if self.shared:
                    self._run(cursor, self.catalog.store_use, {})
                with self._translated(query, params):
                    reader = cursor.sql(query.sql, params=params or None).to_arrow_reader(batch_size)
            except BaseException:
                cursor.close()
                if self.shared:
                    self._stream_ended()
                raise
        ended = _Once(cursor.close, self._stream_ended if self.shared else None)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                with self._translated(query, params):
                    yield from reader
            except (pa.ArrowException, OSError) as exc:  # DuckDB errors after the first chunk come through Arrow
                raise QueryError(f"query {query} failed: {exc}") from exc
            finally:
                ended()

        generator = batches()
        weakref.finalize(generator, ended)  # also when the stream is dropped before it was read
        return pa.RecordBatchReader.from_batches(reader.schema, generator)

    def _stream_ended(self) -> None:
        with self._lock:
            self._streams -= 1
            if self._depth == 0 and self._streams == 0 and self._con is not None:
                self._end_turn()

    def fetch_one(self, query: Query, **params: Any) -> Row | None:
        """Run a ``:one`` query: its only row (columns read by name), or None."""
        self._expect(query, "one")
        with self._session() as con:
            cursor = self._run(con, query, params)
            rows, row = cursor.fetchall(), row_type(cursor)  # before the turn's end runs other statements on it
        if len(rows) > 1:
            raise QueryError(f"query {query} returned {len(rows)} rows, expected at most one")
        return row(rows[0]) if rows else None

    def fetch_value(self, query: Query, **params: Any) -> Any:
        """Run a ``:value`` query: the first column of its only row."""
        self._expect(query, "value")
        with self._session() as con:
            rows = self._run(con, query, params).fetchall()
        if len(rows) != 1:
            raise QueryError(f"query {query} returned {len(rows)} rows, expected one")
        return rows[0][0]

    def count(self, query: Query, **params: Any) -> int:
        """Run a ``:count`` statement: how many rows it changed."""
        self._expect(query, "count")
        with self._session() as con:
            rows = self._run(con, query, params).fetchall()
        return int(rows[0][0]) if rows else 0

    def execute(self, query: Query, **params: Any) -> None:
        """Run a ``:none`` query."""
        self._expect(query, "none")
        with self._session() as con:
            self._run(con, query, params).fetchall()

    def ingest(self, query: Query, data: ArrowInput, **params: Any) -> int:
        """Run an ``:ingest`` query over Arrow rows visible to it as ``incoming``: how many rows it wrote."""
        self._expect(query, "ingest")
        with self._session() as con:
            con.register("incoming", data)
            try:
                rows = self._run(con, query, params).fetchall()
                return int(rows[0][0]) if rows else 0
            finally:
                with contextlib.suppress(duckdb.Error):  # fails in an aborted transaction; must not hide why
                    con.unregister("incoming")

    def insert_rows(self, query: Query, rows: pa.Table, **params: Any) -> None:
        """Run a ``:rows`` statement: each column of ``rows`` bound as the list parameter of its name.

        For the handful of rows one call writes (a config's values, a
        trial's results): binding lists avoids registering an Arrow table,
        which costs more than the insert itself at this size.
        """
        self._expect(query, "rows")
        columns = {name: rows.column(name).to_pylist() for name in rows.column_names}
        with self._session() as con:
            self._run(con, query, {**params, **columns}).fetchall()

    @contextlib.contextmanager
    def attached(self, attach: Query, detach: Query, path: str) -> Iterator[None]:
        """Another store file, attached read-only by ``attach`` for the block, then detached.

        Runs outside any transaction (the block opens its own). The file's
        OS lock is held shared for the block, as a read-only store holds it:
        processes using that file in the shared mode let go of it for us
        (waiting at most ``timeout``, then StoreBusyError) and wait while we
        read, so the block sees one consistent state. A file DuckDB itself
        keeps locked (a store held in the exclusive mode beyond the timeout,
        another program, another store of this process) raises
        StoreUnavailableError; this store is left as it was either way.
        """
        self._expect(attach, "none")
        self._expect(detach, "none")
        path = resolved_store_path(path)
        self._check_process()
        with self._lock:
            if self._depth:
                raise QueryError(f"query {attach} cannot run inside a transaction")
            con = self._connection()
            with self._source_turn(path):
                try:
                    with self._translated(attach, {"path": path}):
                        con.execute(attach.sql, {"path": path}).fetchall()
                except QueryError as exc:
                    raise StoreUnavailableError(f"cannot read {path!r}: {exc.__cause__ or exc}") from exc
                try:
                    yield
                finally:
                    self._run(con, detach, {}).fetchall()

    @property
    def in_transaction(self) -> bool:
        """Whether a ``transaction()`` block is open (so nothing in it is committed yet)."""
        return self._depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All calls inside run as one transaction; nested blocks join the outer one.

        An exception leaving any block, or a failed query inside, rolls the
        whole transaction back, even if an outer block catches the error:
        the outermost block then raises instead of reporting a commit.
        """
        with self._session() as con:
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
            if DURABLE_COMMIT in str(exc):  # stored: the checkpoint DuckDB ran after the commit failed
                self._warn_checkpoint_failed(exc)
                self._start_afresh(con)
                return
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            if database_lost(exc):  # a checkpoint in place of the log failed: nothing stored, nothing usable
                self._start_afresh(con)
            raise QueryError(f"commit failed, nothing was stored: {exc}") from exc


class _Once:
    """Calls its functions the first time it is called, never again (a stream's end)."""

    def __init__(self, *calls: Callable[[], None] | None) -> None:
        self._calls: list[Callable[[], None]] | None = [c for c in calls if c is not None]

    def __call__(self) -> None:
        calls, self._calls = self._calls, None
        self._run(calls or [])

    def _run(self, calls: list[Callable[[], None]]) -> None:
        if calls:
            try:
                calls[0]()
            finally:  # a failing call must not skip the next (the turn must end)
                self._run(calls[1:])


def _check_single_select(text: str) -> None:
    """Refuse text that is not exactly one SELECT statement, naming what it is instead."""
    if not isinstance(text, str):
        raise InvalidValueError(f"a query must be text, got {text!r}")
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryError(f"the query does not parse: {exc}") from exc
    if len(statements) != 1:
        raise InvalidValueError(f"give exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise InvalidValueError(f"only a read statement (SELECT) may run here, got {kind.name}; nothing was run")
