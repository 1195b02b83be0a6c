"""One DuckDB connection with the session settings every query relies on, and DuckDB's errors as ours.

The bottom layer of the engine: the state every other layer shares, running
one named query with its parameters checked, and the translation of DuckDB's
exceptions (including a database DuckDB gave up after a failed checkpoint).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import duckdb

from ..catalog import Catalog, Query, load_catalog
from ..errors import CheckpointWarning, InvalidValueError, QueryError, StoreClosedError, StoreUnavailableError
from ..locking import FileGate
from .files import MEMORY, resolved_store_path
from .modes import DEFAULT_LINGER, DEFAULT_TIMEOUT, SHARED, checked_mode, checked_seconds

#: DuckDB's words (2.0.1) for a commit made durable before the checkpoint that followed it failed.
DURABLE_COMMIT = "COMMIT succeeded and is durable"


class Row(tuple[Any, ...]):
    """The row of a ``:one`` query, read by column name (``row.status``) as its SELECT names them:
    a column added or moved in the SQL cannot shift the values a caller reads."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._fields.index(name)]
        except ValueError:
            raise AttributeError(f"the row has no column {name!r}; its columns: {', '.join(self._fields)}") from None


def row_type(cursor: duckdb.DuckDBPyConnection) -> type[Row]:
    """The Row class of the result ``cursor`` holds, named by its columns."""
    return _row_type_named(tuple(column[0] for column in cursor.description or ()))


@functools.cache
def _row_type_named(names: tuple[str, ...]) -> type[Row]:
    """One Row class per column list, made once."""
    return type("Row", (Row,), {"__slots__": (), "_fields": names})


class Connection:
    """A store's settings, its connection and the bookkeeping of the layers above (turns, transactions)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 catalog: Catalog | None = None, mode: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, linger: float = DEFAULT_LINGER) -> None:
        self.catalog = catalog or load_catalog()
        #: The path as given, which messages show; ``file`` is the file it names, resolved when opened.
        self.path = MEMORY if path is None or str(path) == MEMORY else os.fspath(path)
        self.file = MEMORY if self.in_memory else resolved_store_path(self.path)
        self.read_only = read_only
        self.mode = checked_mode(mode, self.in_memory)
        self.timeout = checked_seconds(timeout, "timeout")
        self.linger = checked_seconds(linger, "linger")
        self._lock = threading.RLock()
        self._depth = 0
        self._aborted = False  # an error happened inside the open transaction
        self._pid = os.getpid()
        self._gate: FileGate | None = None
        self._attached = False  # shared mode: the file is attached (and the gate held)
        self._last_use = self._turn_started = 0.0
        self._yielded = False  # the last turn ended because another process waited
        self._streams = 0  # shared mode: open streams, which keep the turn
        self._watcher: threading.Thread | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    @property
    def shared(self) -> bool:
        return self.mode == SHARED

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(self.file, read_only=read_only)
        except duckdb.Error as exc:
            raise StoreUnavailableError(f"cannot open {self.path!r}: {exc}") from exc
        return self._configured(con)

    def _connect_memory(self) -> duckdb.DuckDBPyConnection:
        """The private in-memory connection of a shared store, to which the file is attached in turns."""
        return self._configured(duckdb.connect())

    def _configured(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """``con`` with the session settings every query relies on, or closed if they fail."""
        try:
            self._configure(con)
        except BaseException:
            con.close()
            raise
        return con

    def _configure(self, con: duckdb.DuckDBPyConnection) -> None:
        self._run(con, self.catalog.session_use_utc, {})
        self._run(con, self.catalog.session_no_replacement_scans, {})

    def _fetch_row(self, con: duckdb.DuckDBPyConnection, query: Query) -> Row:
        cursor = self._run(con, query, {})
        row = cursor.fetchone()
        if row is None:
            raise QueryError(f"query {query} returned no row")
        return row_type(cursor)(row)

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
        with self._errors_translated(f"query {query}"):
            yield

    @contextlib.contextmanager
    def _errors_translated(self, what: str) -> Iterator[None]:
        """DuckDB's errors as the library's, naming ``what`` ran; an error dooms the open transaction."""
        try:
            yield
        except duckdb.Error as exc:
            if self._depth:
                self._aborted = True
            if database_lost(exc):
                self._start_afresh(self._con_or_raise())
            if DURABLE_COMMIT in str(exc):  # a statement of its own, stored, but its result is lost
                raise QueryError(f"{what} was stored, but its result is lost: the checkpoint DuckDB ran after "
                                 f"it failed: {exc}") from exc
            if isinstance(exc, duckdb.ConstraintException):
                raise InvalidValueError(f"{what} violated a constraint: {exc}") from exc
            raise QueryError(f"{what} failed: {exc}") from exc

    def _warn_checkpoint_failed(self, exc: BaseException) -> None:
        why = " ".join(str(exc).split())
        warnings.warn(f"{self.path!r}: committed changes are safe in {self.file + '.wal'!r} but could not be "
                      f"written into the store file (its checkpoint failed); the next use of the store replays "
                      f"them: {why}", CheckpointWarning, stacklevel=3)

    def _start_afresh(self, con: duckdb.DuckDBPyConnection) -> None:
        """After DuckDB gave the database up (a checkpoint failed): close the connection, which lets go of
        the file, and open another. A shared store ends its turn (the next one attaches the file again and
        replays its log); an exclusive one reopens the file at once."""
        if self.shared:
            self._attached = False
            self._con = self._connect_memory()
        with contextlib.suppress(duckdb.Error):
            con.close()
        if not self.shared:
            self._con = self._connect(read_only=self.read_only)
        elif self._gate is not None:
            self._gate.release()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        return self._con_or_raise()

    def _con_or_raise(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreClosedError(f"the store {self.path!r} is closed")
        return self._con

    @staticmethod
    def _expect(query: Query, kind: str) -> None:
        if query.kind != kind:
            raise QueryError(f"query {query} is :{query.kind}, not :{kind}")


def database_lost(exc: duckdb.Error) -> bool:
    """Whether DuckDB gave the database up after ``exc`` (a failed checkpoint): it must be opened again.

    A fatal error for a database of its own; an I/O or commit error naming
    the invalidation for an attached one (never a catalog error, whose
    message may quote any name a query used).
    """
    text = str(exc)
    return isinstance(exc, duckdb.FatalException) or (
        isinstance(exc, (duckdb.IOException, duckdb.TransactionException))
        and (DURABLE_COMMIT in text or "has been invalidated" in text))
