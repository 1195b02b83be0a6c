"""The shared mode's turns: a process holds the file (its OS lock, then DuckDB's attach) for a while.

A turn starts with the OS lock (``locking.FileGate``) and an ATTACH of the
file to the private in-memory connection, and ends with a DETACH (DuckDB
checkpoints the file) and the lock's release. Back-to-back operations share
one turn; a watcher thread lets go when the holder idles or someone waits.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import duckdb

from ..errors import QueryError, StoreBusyError, StoreError, StoreUnavailableError
from ..locking import FLOCK_AVAILABLE, FileGate, LockTimeout, write_denied
from .connection import Connection

#: Seconds between two looks of an idle holder for processes waiting for the file.
_WATCH_INTERVAL = 0.002
#: While another process waits, a turn still lasts this long (seconds) if its holder keeps
#: working: handing the file over costs a checkpoint and an attach (tens of ms here), so
#: back-to-back operations share one turn. An idle holder lets go within _WATCH_INTERVAL.
QUANTUM = 0.05
#: A holder that has not started another operation for this long (seconds) is done for now.
PAUSE = 0.01
_ATTACH_FIRST_PAUSE, _ATTACH_LONGEST_PAUSE = 0.005, 0.1
#: Seconds a fork waits for another thread's operation on a shared store to end before forking anyway.
_FORK_WAIT = 5.0


class Turns(Connection):
    """Taking and handing over the file in the shared mode; reading another store file in its own turn."""

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
            if not self._fetch_row(con, self.catalog.store_attached).attached:
                return
        self._start_afresh(con)

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
        """End the turn: detach the file (DuckDB checkpoints it), tidy it, and release the OS lock."""
        if self._attached:
            try:
                self._detach()
                self._after_turn()
            finally:
                if self._gate is not None:
                    self._gate.release()

    def _after_turn(self) -> None:
        """Upkeep of the file between turns, while this process still holds the OS lock and nobody has the
        file attached (the compaction layer compacts a file that has grown loose)."""

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
