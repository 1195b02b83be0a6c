"""Compaction: the store's rows copied into a fresh file that then replaces it.

A file written turn by turn keeps free and partly used blocks (each turn's
checkpoint writes new blocks; DuckDB reuses freed ones but never shrinks a
file), so it ends up larger than the same rows written in bulk, and a turn
on it costs a little more. DuckDB's own remedy is a copy; this runs it
safely under the store's OS lock, when asked (``Storage.compact()``) and by
itself at the end of a shared writer's turn once the file has grown loose.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import duckdb

from ..errors import CompactionWarning, InvalidValueError, QueryError, StoreError, StoreUnavailableError
from .lifecycle import Lifecycle

#: The fresh file is built beside the store under this suffix, then renamed over it.
COMPACTING_SUFFIX = ".compacting"
#: A shared store compacts itself at the end of a writer's turn once its file is this many times its size
#: after the last compaction: the copy then costs, spread over the turns that grew the file, a constant
#: share of each (a store that only grows is copied a bounded number of times per doubling).
AUTO_COMPACT_GROWTH = 1.4
#: Below this size a file is left as it is: an empty store is about 5 MB of one block per table, and
#: the few turns that fit below it leave little to gain.
AUTO_COMPACT_MIN_BYTES = 8 << 20
#: Above this size a file is compacted only when asked: the copy would keep other processes waiting
#: for seconds, past their timeout for the largest files.
AUTO_COMPACT_MAX_BYTES = 256 << 20
#: How the lock file's note gives the store file's size after its last compaction.
_NOTE_PREFIX = "compacted_bytes="


class Compacted(NamedTuple):
    """A compaction's result: the store's size in bytes before (with its write-ahead log) and after."""

    bytes_before: int
    bytes_after: int


class Compaction(Lifecycle):
    """Replaces a store file by a compact copy of its rows, holding the file's OS lock exclusively."""

    def compact(self) -> Compacted:
        """Copy every row into a freshly created file and rename it over the store.

        Other processes wait (as for any turn) while it runs. It is safe to
        kill at any point: before the rename the store is untouched (a
        leftover ``.compacting`` file is removed by the next compaction),
        after it the new file is complete (synced before the rename).
        Refused inside a transaction or while a stream is open, on a store
        opened read-only or in memory, and on a file whose write-ahead log
        could not be checkpointed (a full disk: free space first).
        """
        self._check_compactable()
        self._check_process()
        with self._lock:
            if self._depth or self._streams:
                raise QueryError("compact() cannot run inside a transaction or while a stream is open")
            before = _size(self.file) + _size(self.file + ".wal")
            with self._file_released():
                self._replace_with_copy()
                self._note_compacted_size()
            return Compacted(before, _size(self.file))

    def _after_turn(self) -> None:
        """Compact the file if a shared writer's turns have left it loose; a failure only warns.

        The turn's call has succeeded and its changes are in the file: a
        failed copy leaves the file as it was, so the call must not fail.
        """
        if not self._auto_compaction_due():
            return
        try:
            self._replace_with_copy()
        except (StoreError, OSError, duckdb.Error) as exc:
            warnings.warn(f"{self.path!r}: the automatic compaction failed and the store was left as it was "
                          f"(it is tried again once the file has grown further): {exc}",
                          CompactionWarning, stacklevel=4)
        self._note_compacted_size()

    def _auto_compaction_due(self) -> bool:
        """Whether this writer, at the end of its turn, should compact the file it holds the lock of."""
        if self.read_only or self._gate is None or not self._gate.held:
            return False
        if os.path.exists(self.file + ".wal"):
            return False  # the turn's checkpoint failed (a full disk): a copy could not be made either
        size = _size(self.file)
        if not AUTO_COMPACT_MIN_BYTES < size <= AUTO_COMPACT_MAX_BYTES:
            return False
        return size > AUTO_COMPACT_GROWTH * self._noted_compacted_size()

    def _noted_compacted_size(self) -> int:
        """The file's size after its last compaction, as the lock file notes it (0 if never noted)."""
        note = self._gate.read_note() if self._gate is not None else ""
        digits = note[len(_NOTE_PREFIX):] if note.startswith(_NOTE_PREFIX) else ""
        return int(digits) if digits.isdigit() else 0

    def _note_compacted_size(self) -> None:
        """Note the file's size now as its size after compaction, which the next compaction is measured by."""
        if self._gate is not None and self._gate.held and not self.read_only:
            with contextlib.suppress(OSError):
                self._gate.write_note(f"{_NOTE_PREFIX}{_size(self.file)}")

    def _check_compactable(self) -> None:
        if self.in_memory:
            raise InvalidValueError("an in-memory store has no file to compact")
        if self.read_only:
            raise InvalidValueError(f"cannot compact {self.path!r}: it is open read-only")

    @contextlib.contextmanager
    def _file_released(self) -> Iterator[None]:
        """The block runs holding the OS lock exclusively while this engine has let go of the file."""
        if self.shared:
            self._take_gate("use")
            if self._attached:
                self._detach()
            try:
                yield
            finally:
                if self._gate is not None:
                    self._gate.release()
            return
        self._con_or_raise().close()  # exclusive: the OS lock stays held from open to close
        self._con = None
        try:
            yield
        finally:
            self._con = self._connect(read_only=False)

    def _replace_with_copy(self) -> None:
        if os.path.exists(self.file + ".wal"):
            raise StoreUnavailableError(
                f"cannot compact {self.path!r}: its write-ahead log could not be moved into the file (is the "
                "disk full?); nothing was changed")
        target = self.file + COMPACTING_SUFFIX
        for leftover in (target, target + ".wal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)  # from a compaction killed before its rename
        try:
            self._create_empty_store(target)
            self._copy_rows(target)
            _sync(target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(target)
            raise
        os.replace(target, self.file)
        _sync(os.path.dirname(self.file))

    def _create_empty_store(self, target: str) -> None:
        try:
            con = self._configured(duckdb.connect(target))
        except duckdb.Error as exc:
            raise StoreUnavailableError(f"cannot compact {self.path!r}: cannot create {target!r}: {exc}") from exc
        self._migrate(con, from_version=0)
        con.close()

    def _copy_rows(self, target: str) -> None:
        """On a private connection: every row into ``target``, its sequences moved on, the counts compared."""
        sql = self.catalog
        con = self._connect_memory()
        try:
            self._run(con, sql.compaction_attach_source, {"path": self.file})
            self._run(con, sql.compaction_attach_target, {"path": target})
            for query in (sql.compaction_use_target, sql.compaction_clear_target_info,
                          sql.compaction_clear_target_migrations, sql.compaction_copy,
                          sql.compaction_advance_config_ids, sql.compaction_advance_status_seq):
                self._run(con, query, {}).fetchall()
            counts = self._run(con, sql.compaction_row_counts, {}).fetchall()
            differ = [f"{table}: {source} rows, copied {copied}"
                      for table, source, copied in counts if source != copied]
            if differ:
                raise QueryError(f"compacting {self.path!r} copied the wrong rows ({'; '.join(differ)}); "
                                 "the store was left as it was")
            self._run(con, sql.compaction_leave_target, {})
            self._run(con, sql.compaction_detach_source, {})
            self._run(con, sql.compaction_detach_target, {})
        finally:
            con.close()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _sync(path: str) -> None:
    """Make a file's content, or a directory's entries, durable before the next step relies on them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
