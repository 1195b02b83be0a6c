"""An engine's life in its process: open (create, upgrade), reopen after unpickling, fork, close, exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from typing import Any, Self

import duckdb

from ..catalog import Catalog, load_catalog
from ..errors import NotAStoreError, StoreBusyError, StoreUnavailableError
from .files import check_duckdb_file
from .migrations import Migrations
from .modes import DEFAULT_LINGER, DEFAULT_TIMEOUT

#: Open engines of this process by what opened them, so objects unpickled here share one.
_OPEN_ENGINES: weakref.WeakValueDictionary[tuple[Any, ...], Lifecycle] = weakref.WeakValueDictionary()
#: Connections inherited across fork: never closed (closing would write to the parent's file).
_INHERITED: list[Any] = []
#: Open shared engines of this process, which let go of their file before the process forks.
_SHARED_ENGINES: weakref.WeakSet[Lifecycle] = weakref.WeakSet()
#: Open file engines of this process, closed at interpreter exit (see _close_at_exit).
_CLOSED_AT_EXIT: weakref.WeakSet[Lifecycle] = weakref.WeakSet()


class Lifecycle(Migrations):
    """Opens the store on creation and keeps the process-wide registries of open engines."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 catalog: Catalog | None = None, mode: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, linger: float = DEFAULT_LINGER) -> None:
        super().__init__(path, read_only=read_only, catalog=catalog, mode=mode, timeout=timeout, linger=linger)
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
               linger: float) -> Self:
        """The engine an unpickled object uses: one per process for the same store and settings."""
        key = (path, read_only, id(catalog), mode, timeout, linger)
        engine = _OPEN_ENGINES.get(key)
        if not isinstance(engine, cls) or engine.closed or engine._pid != os.getpid():
            engine = cls(path, read_only=read_only, catalog=catalog, mode=mode, timeout=timeout, linger=linger)
            _OPEN_ENGINES[key] = engine
        return engine

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as the way to reopen the store, so a worker process reconnects on arrival."""
        if self.in_memory:
            raise StoreUnavailableError("an in-memory store cannot be pickled: another process cannot reach it; "
                                        "use a store file")
        catalog = None if self.catalog is load_catalog() else self.catalog
        return (type(self).reopen, (self.file, self.read_only, catalog, self.mode, self.timeout, self.linger))

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

    def _check_process(self) -> None:
        """Reconnect if this is a child forked after the store was opened (its lock may be held by a dead thread)."""
        if self._pid != os.getpid():
            self._lock = threading.RLock()
            with self._lock:
                self._forget_parent()

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
