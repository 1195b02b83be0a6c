"""The DuckDB connection layer: the only module that imports duckdb.

It opens (and creates, and migrates) a database, runs named queries from the
catalog with bound parameters, ingests Arrow data, nests transactions and
translates DuckDB's exceptions into the library's own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import stat
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa

from .catalog import Catalog, Query, load_catalog
from .errors import (
    CheckpointWarning,
    InvalidValueError,
    NotAStoreError,
    QueryError,
    SchemaVersionError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
)
from .locking import FLOCK_AVAILABLE, FileGate, LockTimeout, write_denied

STORE_FORMAT = "mlos_store"
MEMORY = ":memory:"
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8

ArrowInput: TypeAlias = "pa.Table | pa.RecordBatch | pa.RecordBatchReader"

#: Connection modes of a file store (an in-memory store is always private).
SHARED, EXCLUSIVE = "shared", "exclusive"
MODES = (SHARED, EXCLUSIVE)
#: Seconds to wait for a store another process holds before raising StoreBusyError.
DEFAULT_TIMEOUT = 30.0
#: Seconds a shared store keeps the file after an operation while nobody waits for it.
DEFAULT_LINGER = 0.5
#: Seconds between two looks of an idle holder for processes waiting for the file.
_WATCH_INTERVAL = 0.002
#: While another process waits, a turn still lasts this long (seconds) if its holder keeps
#: working: handing the file over costs a checkpoint and an attach (tens of ms here), so
#: back-to-back operations share one turn. An idle holder lets go within _WATCH_INTERVAL.
QUANTUM = 0.05
#: A holder that has not started another operation for this long (seconds) is done for now.
PAUSE = 0.01
_ATTACH_FIRST_PAUSE, _ATTACH_LONGEST_PAUSE = 0.005, 0.1
#: DuckDB's words (2.0.1) for a commit made durable before the checkpoint that followed it failed.
_DURABLE_COMMIT = "COMMIT succeeded and is durable"
#: Seconds a fork waits for another thread's operation on a shared store to end before forking anyway.
_FORK_WAIT = 5.0
#: Open engines of this process by what opened them, so objects unpickled here share one.
_OPEN_ENGINES: weakref.WeakValueDictionary[tuple[Any, ...], Engine] = weakref.WeakValueDictionary()
#: Connections inherited across fork: never closed (closing would write to the parent's file).
_INHERITED: list[Any] = []
#: Open shared engines of this process, which let go of their file before the process forks.
_SHARED_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
#: Open file engines of this process, closed at interpreter exit (see _close_at_exit).
_CLOSED_AT_EXIT: weakref.WeakSet[Engine] = weakref.WeakSet()


#: What a path that is not a regular file names, by ``stat.S_IFMT``.
_FILE_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device"}


def check_duckdb_file(path: str, shown: str | None = None) -> None:
    """Refuse, without opening it in DuckDB, a file that is not a DuckDB database (named ``shown`` if given).

    Anything but a regular file is refused before it is opened: reading a
    FIFO's header would block until someone writes to it.
    """
    shown = path if shown is None else shown
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
        if kind == stat.S_IFDIR:
            raise NotAStoreError(f"{shown!r} is a directory, not an mlos_store database")
        if kind != stat.S_IFREG:
            raise NotAStoreError(f"{shown!r} is {_FILE_KINDS.get(kind, 'not a regular file')}, "
                                 "not an mlos_store database; it was left untouched")
        with open(path, "rb") as file:
            header = file.read(_MAGIC_OFFSET + len(_DUCKDB_MAGIC))
    except OSError as exc:
        raise StoreUnavailableError(f"cannot open {shown!r}: {exc.strerror or exc}") from exc
    if header[_MAGIC_OFFSET:] != _DUCKDB_MAGIC:
        raise NotAStoreError(
            f"{shown!r} is not an mlos_store database (not a DuckDB file); it was left untouched"
        )


def resolved_store_path(path: str) -> str:
    """The absolute path of a store file, fixed once when it is opened.

    The OS lock files and DuckDB must name the same file on every turn, even
    after the process changes directory; and DuckDB reads a backslash as
    ``/`` where the OS does not, so a store path with one is refused here.
    """
    if os.sep == "/" and "\\" in path:
        raise InvalidValueError(f"{path!r}: a backslash in a store path is refused: DuckDB would read it as '/' "
                                "and the lock files would guard another file; rename the file or use '/'")
    return os.path.abspath(path)


class Engine:
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

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 catalog: Catalog | None = None, mode: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, linger: float = DEFAULT_LINGER) -> None:
        self.catalog = catalog or load_catalog()
        #: The path as given, which messages show; ``file`` is the file it names, resolved when opened.
        self.path = MEMORY if path is None or str(path) == MEMORY else os.fspath(path)
        self.file = MEMORY if self.in_memory else resolved_store_path(self.path)
        self.read_only = read_only
        self.mode = _checked_mode(mode, self.in_memory)
        self.timeout = _checked_seconds(timeout, "timeout")
        self.linger = _checked_seconds(linger, "linger")
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
        self._con = self._open_shared() if self.shared else self._open()
        if not self.in_memory:
            _OPEN_ENGINES.setdefault(self._reopen_key(), self)
            _CLOSED_AT_EXIT.add(self)
        if self.shared:
            _SHARED_ENGINES.add(self)

    def _reopen_key(self) -> tuple[Any, ...]:
        catalog = None if self.catalog is load_catalog() else self.catalog
        return (self.file, self.read_only, id(catalog), self.mode, self.timeout, self.linger)

    @classmethod
    def reopen(cls, path: str, read_only: bool, catalog: Catalog | None, mode: str, timeout: float,
               linger: float) -> Engine:
        """The engine an unpickled object uses: one per process for the same store and settings."""
        key = (path, read_only, id(catalog), mode, timeout, linger)
        engine = _OPEN_ENGINES.get(key)
        if engine is None or engine.closed or engine._pid != os.getpid():
            engine = cls(path, read_only=read_only, catalog=catalog, mode=mode, timeout=timeout, linger=linger)
            _OPEN_ENGINES[key] = engine
        return engine

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as the way to reopen the store, so a worker process reconnects on arrival."""
        if self.in_memory:
            raise StoreUnavailableError("an in-memory store cannot be pickled: another process cannot reach it; "
                                        "use a store file")
        catalog = None if self.catalog is load_catalog() else self.catalog
        return (Engine.reopen, (self.file, self.read_only, catalog, self.mode, self.timeout, self.linger))

    # ------------------------------------------------------------ opening

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    @property
    def shared(self) -> bool:
        return self.mode == SHARED

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self.in_memory or not os.path.exists(self.file):
            if self.read_only:
                raise NotAStoreError(
                    "an in-memory store cannot be opened read-only: it would always be empty"
                    if self.in_memory else f"cannot open {self.path!r} read-only: no such file"
                )
        if not self.in_memory:  # take the OS lock too, so shared openers wait for us instead of failing
            self._gate = self._new_gate()
            self._take_gate("open")
        try:
            return self._open_file_or_memory()
        except BaseException as exc:
            self._drop_gate(refused=not isinstance(exc, StoreBusyError))
            raise

    def _open_file_or_memory(self) -> duckdb.DuckDBPyConnection:
        if self.in_memory or not os.path.exists(self.file):
            con = self._connect(read_only=False)
            self._migrate(con, from_version=0)
            return con
        check_duckdb_file(self.file, self.path)
        version = self._inspect()
        self._check_upgradable(version)
        con = self._connect(read_only=self.read_only)
        self._migrate(con, from_version=version)
        return con

    def _check_upgradable(self, version: int) -> None:
        if version < self.catalog.schema_version and self.read_only:
            raise SchemaVersionError(
                f"{self.path!r} has schema version {version}, this mlos_store needs "
                f"{self.catalog.schema_version}: open it once read-write to upgrade it"
            )

    def _open_shared(self) -> duckdb.DuckDBPyConnection:
        """A private in-memory connection; the store file is checked, created or migrated in a first turn."""
        if self.read_only and not os.path.exists(self.file):
            raise NotAStoreError(f"cannot open {self.path!r} read-only: no such file")
        con = self._connect_memory()
        try:
            self._gate = self._new_gate()
            self._take_gate("open")
            self._con = con
            self._first_turn()
        except BaseException as exc:
            self._con = None
            self._drop_gate(refused=not isinstance(exc, StoreBusyError))
            con.close()
            raise
        self._end_turn()
        return con

    def _first_turn(self) -> None:
        """Holding the gate: refuse what is not a store, create or upgrade it, and attach it."""
        version = 0
        if os.path.exists(self.file):
            check_duckdb_file(self.file, self.path)
            self._attach(read_only=True)
            try:
                version = self._inspect_attached()
            finally:
                self._detach()
        elif self.read_only:
            raise NotAStoreError(f"cannot open {self.path!r} read-only: no such file")
        self._check_upgradable(version)
        self._attach(read_only=self.read_only)
        self._migrate(self._con_or_raise(), from_version=version, close_on_failure=False)

    def _new_gate(self) -> FileGate | None:
        """The OS lock files beside the store; a read-only opener in a read-only directory goes without
        (and so does every opener on a platform without ``flock``, where only exclusive stores exist)."""
        self._check_directory_writable()
        if not FLOCK_AVAILABLE:
            return None
        try:
            return FileGate(self.file, read_only=self.read_only)
        except OSError as exc:
            if self.read_only and write_denied(exc):
                return None  # nobody can write a store where nobody may write (permissions, a read-only mount)
            raise StoreUnavailableError(
                f"cannot open {self.path!r}: cannot create its lock file beside it ({exc})"
            ) from exc

    def _take_gate(self, action: str) -> None:
        if self._gate is None or self._gate.held:
            return
        deadline = time.monotonic() + self.timeout
        try:
            if self._yielded:
                self._gate.acquire_after_yielding(shared=self.read_only, deadline=deadline)
            else:
                self._gate.acquire(shared=self.read_only, deadline=deadline)
            self._yielded = False
        except LockTimeout:
            raise self._busy(action, "another process held it") from None

    def _busy(self, action: str, why: str) -> StoreBusyError:
        prefix = f"cannot open {self.path!r}" if action == "open" else f"store {self.path!r} is busy"
        return StoreBusyError(
            f"{prefix}: {why} for more than {self.timeout:g} s (the timeout); nothing was changed, try again later"
        )

    def _check_directory_writable(self) -> None:
        """A read-write store needs its directory writable: DuckDB writes a ``.wal`` file beside it."""
        folder = os.path.dirname(self.file)
        if not self.read_only and os.path.isdir(folder) and not os.access(folder, os.W_OK):
            raise StoreUnavailableError(
                f"cannot open {self.path!r} read-write: Permission denied to write in its directory {folder!r} "
                "(DuckDB writes a .wal file beside the store); open it with read_only=True to read it"
            )

    def _drop_gate(self, *, refused: bool) -> None:
        """Close the lock files; after a refused open, remove the ones this open created.

        Nobody else had them before this open created them, and whoever
        opened them since is refused the same way.
        """
        if self._gate is not None:
            self._gate.close(remove_created=refused)
            self._gate = None

    def _inspect(self) -> int:
        """The schema version of an existing file, read without writing to it."""
        con = self._connect(read_only=True)
        try:
            return self._probe(con)
        finally:
            con.close()

    def _inspect_attached(self) -> int:
        return self._probe(self._con_or_raise())

    def _probe(self, con: duckdb.DuckDBPyConnection) -> int:
        """The schema version of the open database; refuses one that is not a store or is too new."""
        object_count, has_store_info = self._fetch_row(con, self.catalog.store_probe)
        if object_count == 0:
            return 0  # an empty DuckDB database: made a store like a new file
        if not has_store_info:
            raise NotAStoreError(
                f"{self.path!r} is a DuckDB database but not an mlos_store database "
                f"({object_count} foreign objects); it was left untouched"
            )
        store_format, version = self._fetch_row(con, self.catalog.store_format_version)
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

    # ------------------------------------------------------------ turns (shared mode)

    def _attach(self, *, read_only: bool) -> None:
        """Attach the file and make it the default database, retrying while a foreign process holds it.

        A process outside this protocol (DuckDB itself, another tool) may
        hold DuckDB's own lock on the file: wait for it like for the gate.
        """
        con = self._con_or_raise()
        query = self.catalog.store_attach_read_only if read_only else self.catalog.store_attach
        deadline, pause = time.monotonic() + self.timeout, _ATTACH_FIRST_PAUSE
        while True:
            try:
                self._run(con, query, {"path": self.file})
                break
            except QueryError as exc:
                if "lock" not in str(exc).lower():
                    raise StoreUnavailableError(f"cannot open {self.path!r}: {exc.__cause__ or exc}") from exc
                if time.monotonic() + pause > deadline:
                    raise self._busy("open", "a process outside mlos_store held its DuckDB lock") from exc
                time.sleep(pause)
                pause = min(pause * 2, _ATTACH_LONGEST_PAUSE)
        self._run(con, self.catalog.store_use, {})
        self._attached = True
        self._turn_started = time.monotonic()

    def _detach(self) -> None:
        con = self._con_or_raise()
        self._attached = False
        try:
            self._run(con, self.catalog.store_leave, {})  # fails too once DuckDB gave the database up
            self._run(con, self.catalog.store_detach, {})
        except QueryError as exc:
            self._detach_failed(exc)

    def _detach_failed(self, exc: QueryError) -> None:
        """A DETACH whose checkpoint failed (a full disk): warn, never raise, and make sure the file is let go.

        Every transaction before it committed to the write-ahead log, which
        the next attach replays, so the calls that made them succeeded: an
        error would have a runner retry and store them twice. DuckDB 2.0.1
        detaches the file even so; were it still attached, a fresh private
        connection replaces this one, which drops DuckDB's hold on the file.
        """
        self._warn_checkpoint_failed(exc.__cause__ or exc)
        con = self._con_or_raise()
        with contextlib.suppress(StoreError):
            if not self._fetch_row(con, self.catalog.store_attached)[0]:
                return
        self._start_afresh(con)

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

    def _begin_turn(self) -> None:
        """Hold the file for the coming operation: take the gate and attach, unless already held."""
        if self._attached:
            return
        self._take_gate("use")
        try:
            self._attach(read_only=self.read_only)
        except BaseException:
            if self._gate is not None:
                self._gate.release()
            raise

    def _end_turn(self) -> None:
        """After an operation: let go if another process waits and the turn is over, else keep a while.

        With ``linger`` 0 every operation is a turn of its own.
        """
        self._last_use = now = time.monotonic()
        if self.linger == 0:
            self._let_go()
            return
        if now - self._turn_started >= QUANTUM and self._gate is not None and self._gate.others_waiting():
            self._yielded = True
            self._let_go()
        elif self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch, name=f"mlos_store turn {self.path}", daemon=True)
            self._watcher.start()

    def _let_go(self) -> None:
        """End the turn: detach the file (DuckDB checkpoints it) and release the OS lock."""
        if self._attached:
            try:
                self._detach()
            finally:
                if self._gate is not None:
                    self._gate.release()

    def _watch(self) -> None:
        """While the file is held between operations, let go once ``linger`` has passed, or sooner
        when someone waits and the holder has paused (``PAUSE``) or its turn is over (``QUANTUM``)."""
        while True:
            time.sleep(_WATCH_INTERVAL)
            with self._lock:
                if not self._attached or self._con is None:
                    return
                if self._depth or self._streams:
                    continue
                now = time.monotonic()
                idle, turn = now - self._last_use, now - self._turn_started
                waited_for = (idle >= PAUSE or turn >= QUANTUM) and self._gate is not None \
                    and self._gate.others_waiting()
                if idle >= self.linger or waited_for:
                    self._yielded = waited_for
                    with contextlib.suppress(duckdb.Error, StoreError):
                        self._let_go()
                    return

    def _let_go_before_fork(self) -> None:
        """Detach the file before this process forks: DuckDB would refuse the child's own attach of it.

        Not possible inside an open transaction; the child then cannot
        use the store until the parent's transaction ends and it reopens.
        """
        if self._lock.acquire(timeout=min(self.timeout, _FORK_WAIT)):
            try:
                if self._depth == 0 and self._streams == 0 and self._con is not None:
                    with contextlib.suppress(duckdb.Error, StoreError):
                        self._let_go()
            finally:
                self._lock.release()

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

    def _migrate(self, con: duckdb.DuckDBPyConnection, *, from_version: int, close_on_failure: bool = True) -> None:
        """Apply each schema file past ``from_version``, each in one transaction.

        On failure the file keeps the last version fully applied and is
        released (the connection closed, or the file detached) before the
        error propagates.
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
                if close_on_failure:
                    con.close()
                else:
                    with contextlib.suppress(duckdb.Error, StoreError):
                        self._detach()
                raise

    # ------------------------------------------------------------ running

    def _check_process(self) -> None:
        """Reconnect if this is a child forked after the store was opened (its lock may be held by a dead thread)."""
        if self._pid != os.getpid():
            self._lock = threading.RLock()
            with self._lock:
                self._forget_parent()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        return self._con_or_raise()

    def _con_or_raise(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreClosedError(f"the store {self.path!r} is closed")
        return self._con

    def _forget_parent(self) -> None:
        """In a child forked from the process that opened this engine: reconnect on our own.

        The inherited connection and lock belong to the parent; they are
        left alone (closing the connection here could write to the file
        the parent holds) and this process opens the store afresh.
        """
        if self._con is not None:
            _INHERITED.append(self._con)
        if self._gate is not None:
            self._gate.abandon()
        self._con, self._gate, self._attached, self._watcher = None, None, False, None
        self._depth, self._streams, self._aborted, self._pid = 0, 0, False, os.getpid()
        self._con = self._open_shared() if self.shared else self._open()

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
            if _database_lost(exc):
                self._start_afresh(self._con_or_raise())
            if _DURABLE_COMMIT in str(exc):  # a statement of its own, stored, but its result is lost
                raise QueryError(f"{what} was stored, but its result is lost: the checkpoint DuckDB ran after "
                                 f"it failed: {exc}") from exc
            if isinstance(exc, duckdb.ConstraintException):
                raise InvalidValueError(f"{what} violated a constraint: {exc}") from exc
            raise QueryError(f"{what} failed: {exc}") from exc

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

    def fetch_one(self, query: Query, **params: Any) -> tuple[Any, ...] | None:
        """Run a ``:one`` query: its only row, or None."""
        self._expect(query, "one")
        with self._session() as con:
            rows = self._run(con, query, params).fetchall()
        if len(rows) > 1:
            raise QueryError(f"query {query} returned {len(rows)} rows, expected at most one")
        return rows[0] if rows else None

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

    def ingest(self, query: Query, data: ArrowInput, **params: Any) -> None:
        """Run an ``:ingest`` query over Arrow rows visible to it as ``incoming``."""
        self._expect(query, "ingest")
        with self._session() as con:
            con.register("incoming", data)
            try:
                self._run(con, query, params).fetchall()
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

    @contextlib.contextmanager
    def _source_turn(self, path: str) -> Iterator[None]:
        """Hold another store file's OS lock shared (where ``flock`` exists and its lock files can be made)."""
        gate = None
        if FLOCK_AVAILABLE:
            try:
                gate = FileGate(path, read_only=True)
            except OSError as exc:
                if not write_denied(exc):  # where nobody may write, nobody can write the file either
                    raise
        if gate is None:
            yield
            return
        try:
            gate.acquire(shared=True, deadline=time.monotonic() + self.timeout)
        except LockTimeout:
            gate.close()
            raise StoreBusyError(
                f"cannot read {path!r}: another process held it for more than {self.timeout:g} s "
                "(the timeout); nothing was changed, try again later"
            ) from None
        try:
            yield
        finally:
            gate.close()

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
            if _DURABLE_COMMIT in str(exc):  # stored: the checkpoint DuckDB ran after the commit failed
                self._warn_checkpoint_failed(exc)
                self._start_afresh(con)
                return
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            if _database_lost(exc):  # a checkpoint in place of the log failed: nothing stored, nothing usable
                self._start_afresh(con)
            raise QueryError(f"commit failed, nothing was stored: {exc}") from exc

    @staticmethod
    def _expect(query: Query, kind: str) -> None:
        if query.kind != kind:
            raise QueryError(f"query {query} is :{query.kind}, not :{kind}")

    def close(self) -> None:
        """Release the file (detaching it first in shared mode) and close the connection."""
        if self._pid != os.getpid():  # a forked child: the parent's connection and lock are not ours
            self._lock = threading.RLock()
            if self._gate is not None:
                self._gate.abandon()
            if self._con is not None:
                _INHERITED.append(self._con)
            self._con, self._gate, self._attached = None, None, False
            return
        with self._lock:
            if self._con is None:
                return
            try:
                if self.shared:
                    self._let_go()
            finally:
                self._con.close()
                self._con = None
                self._drop_gate(refused=False)

    @property
    def closed(self) -> bool:
        return self._con is None


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


def _database_lost(exc: duckdb.Error) -> bool:
    """Whether DuckDB gave the database up after ``exc`` (a failed checkpoint): it must be opened again.

    A fatal error for a database of its own; an I/O or commit error naming
    the invalidation for an attached one (never a catalog error, whose
    message may quote any name a query used).
    """
    text = str(exc)
    return isinstance(exc, duckdb.FatalException) or (
        isinstance(exc, (duckdb.IOException, duckdb.TransactionException))
        and (_DURABLE_COMMIT in text or "has been invalidated" in text))


def _checked_mode(mode: str | None, in_memory: bool) -> str:
    """The connection mode: shared for a file unless asked otherwise; an in-memory store is private."""
    if mode is None:
        return SHARED if FLOCK_AVAILABLE and not in_memory else EXCLUSIVE
    if mode not in MODES:
        raise InvalidValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if in_memory and mode == SHARED:
        raise InvalidValueError("an in-memory store cannot be shared between processes: use a store file")
    if mode == SHARED and not FLOCK_AVAILABLE:
        raise InvalidValueError("the shared mode needs flock, which this platform lacks: use mode='exclusive'")
    return mode


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


def _checked_seconds(seconds: float, what: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
        raise InvalidValueError(f"{what} must be a finite number of seconds >= 0, got {seconds!r}")
    return float(seconds)


def _before_fork() -> None:
    for engine in list(_SHARED_ENGINES):
        if engine._pid == os.getpid():
            engine._let_go_before_fork()


@atexit.register
def _close_at_exit() -> None:
    """Close (so DuckDB checkpoints) every store file still open, however it was opened (a Storage,
    or an Experiment or Trial unpickled in a worker): mlos_bench never closes its storage, and a
    store left open keeps its last writes in the ``.wal`` file beside it."""
    for engine in list(_CLOSED_AT_EXIT):
        if engine._pid == os.getpid():
            with contextlib.suppress(Exception):  # at exit nobody is left to tell; the WAL still holds the data
                engine.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)
