"""The OS lock that lets several processes take turns on one store file.

DuckDB lets one process at a time open a file read-write and has no busy
timeout: a second opener fails at once. Processes that open, write and close
in turn, retrying on that failure, were measured to lose committed
transactions (a later opener saved over them). So every process using a
store file in the shared mode first takes a ``flock`` on ``<store>.lock``
and holds it for as long as it has the file attached: exclusive for a
writer, shared for a read-only reader. The kernel drops the lock when a
process dies, so a killed process never leaves the store locked.

A process waiting for the lock says so by holding a shared ``flock`` on
``<store>.wait`` while it waits; the holder checks that file after each
operation (and while idle) and lets go of the store as soon as anyone waits.

``flock`` locks belong to an open file, not to a process, so two stores
opened on the same file in one process exclude each other too. For the same
reason a child forked while a lock is held would keep it (its descriptors
share the parent's open file) after the parent died: every gate closes its
copies in a forked child, which does not unlock the parent's (and no
descriptor survives an ``exec``: all are opened ``O_CLOEXEC``).
"""

from __future__ import annotations

import errno
import os
import threading
import time
import weakref

try:
    import fcntl
except ImportError:  # no flock (Windows): only exclusive stores
    fcntl = None  # type: ignore[assignment]

#: Whether this platform has ``flock``, which the shared mode needs.
FLOCK_AVAILABLE = fcntl is not None

#: How long one who let go for a waiter leaves it the lock, and how often it looks meanwhile (seconds).
COURTESY, COURTESY_PAUSE = 0.05, 0.0005


#: Errors of opening a file for writing where nobody may write: a read-only opener goes without lock files.
_WRITE_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


class LockTimeout(Exception):
    """The lock stayed busy until the deadline."""


def write_denied(exc: OSError) -> bool:
    """Whether ``exc`` says files here cannot be written (permissions, a read-only file system)."""
    return exc.errno in _WRITE_DENIED


class FileGate:
    """The ``<store>.lock`` / ``<store>.wait`` pair of one store file, for one opener."""

    def __init__(self, store_path: str, *, read_only: bool) -> None:
        self.lock_path = store_path + ".lock"
        self.wait_path = store_path + ".wait"
        self.created: list[str] = []
        self._flags = os.O_RDWR | os.O_CLOEXEC
        self._held_fd: int | None = None
        self._pending_fd: int | None = None  # the descriptor of a lock being taken
        self._wait_fd = self._open(self.wait_path, read_only)
        try:
            os.close(self._open(self.lock_path, read_only))
        except OSError:
            self.close(remove_created=True)  # a refused open leaves nothing behind
            raise
        _GATES.add(self)

    def _open(self, path: str, read_only: bool) -> int:
        """Open (creating if needed) a lock file; a read-only opener may use an existing one read-only."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            self.created.append(path)
            return fd
        except FileExistsError:
            pass
        try:
            return os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            if not read_only or not write_denied(exc):
                raise
            self._flags = os.O_RDONLY | os.O_CLOEXEC
            return os.open(path, self._flags)

    @property
    def held(self) -> bool:
        return self._held_fd is not None

    def acquire_after_yielding(self, *, shared: bool, deadline: float) -> None:
        """Take the lock again just after letting go of it for a waiting opener.

        Without this the one that let go, already running, would usually
        take the lock back before the woken waiter is scheduled. It leaves
        the lock to a waiter for up to ``COURTESY`` seconds.
        """
        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        courtesy_ends = min(time.monotonic() + COURTESY, deadline)
        while time.monotonic() < courtesy_ends:
            fd = self._open_pending()
            if not _try_flock(fd, operation | fcntl.LOCK_NB):
                self._close_pending()
                break  # the waiter has it: queue up behind it
            if not self.others_waiting():
                self._held_fd, self._pending_fd = fd, None
                return
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._close_pending()
            time.sleep(COURTESY_PAUSE)
        self.acquire(shared=shared, deadline=deadline)

    def acquire(self, *, shared: bool, deadline: float) -> None:
        """Take the lock (shared for readers), waiting until ``deadline`` (monotonic) at most.

        Each turn locks a descriptor of its own. A busy lock is waited for
        by a blocking ``flock`` in a helper thread, so the kernel hands it
        over the moment the holder lets go (polling would add its sleep to
        every hand-over); on timeout the helper gives the lock back as soon
        as it gets it, on its own descriptor, which nothing else uses.
        """
        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        fd = self._open_pending()
        if _try_flock(fd, operation | fcntl.LOCK_NB):
            self._held_fd, self._pending_fd = fd, None
            return
        fcntl.flock(self._wait_fd, fcntl.LOCK_SH)  # tell the holder someone waits
        try:
            if not _BlockingWaiter(fd, operation).wait(deadline - time.monotonic()):
                self._pending_fd = None  # the waiter closes it once it gets the lock
                raise LockTimeout(self.lock_path)
        finally:
            fcntl.flock(self._wait_fd, fcntl.LOCK_UN)
        self._held_fd, self._pending_fd = fd, None

    def _open_pending(self) -> int:
        """A descriptor of the lock file for a lock being taken, known to the gate should the process fork."""
        self._pending_fd = os.open(self.lock_path, self._flags)
        return self._pending_fd

    def _close_pending(self) -> None:
        fd, self._pending_fd = self._pending_fd, None
        if fd is not None:
            os.close(fd)

    def release(self) -> None:
        if self._held_fd is not None:
            fd, self._held_fd = self._held_fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read_note(self) -> str:
        """The note the lock file holds (empty if none), read while the lock is held.

        The lock file's content plays no part in locking; holders keep one
        short note about the store file in it (its size after the last
        compaction), which every holder can read for the cost of one read.
        """
        if self._held_fd is None:
            return ""
        return os.pread(self._held_fd, _NOTE_LIMIT, 0).decode("ascii", errors="replace")

    def write_note(self, text: str) -> None:
        """Replace the lock file's note; only the exclusive holder writes it."""
        if self._held_fd is None:
            raise RuntimeError(f"{self.lock_path}: the note is written only while the lock is held")
        data = text.encode("ascii")[:_NOTE_LIMIT]
        os.ftruncate(self._held_fd, 0)
        os.pwrite(self._held_fd, data, 0)

    def others_waiting(self) -> bool:
        """Whether another opener is waiting for this lock right now."""
        if not _try_flock(self._wait_fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
            return True
        fcntl.flock(self._wait_fd, fcntl.LOCK_UN)
        return False

    def close(self, *, remove_created: bool = False) -> None:
        """Release and close; ``remove_created`` deletes the lock files this opener created."""
        self.release()
        _GATES.discard(self)
        if self._wait_fd != _CLOSED:
            fd, self._wait_fd = self._wait_fd, _CLOSED
            os.close(fd)
        if remove_created:
            for path in self.created:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def abandon(self) -> None:
        """Forget the descriptors inherited from a parent across fork: close this process's copies only.

        Closing a copy does not unlock (only the parent's ``LOCK_UN``, or its
        last copy closing, does), so the parent's lock lives on while the
        parent does, and dies with it. Safe to call again.
        """
        _GATES.discard(self)
        for fd in (self._held_fd, self._pending_fd, self._wait_fd):
            if fd is not None and fd != _CLOSED:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._held_fd = self._pending_fd = None
        self._wait_fd = _CLOSED


#: The longest note the lock file keeps (bytes).
_NOTE_LIMIT = 64
#: The descriptor number of a gate whose descriptors are closed.
_CLOSED = -1
#: Every open gate of this process, whose descriptors a forked child closes at once.
_GATES: weakref.WeakSet[FileGate] = weakref.WeakSet()


def _abandon_inherited_gates() -> None:
    """In a forked child: let go of every gate's descriptors, so a parent that dies leaves nothing locked."""
    for gate in list(_GATES):
        gate.abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_abandon_inherited_gates)


class _BlockingWaiter:
    """A blocking ``flock`` in a daemon thread; the descriptor is the waiter's until it succeeds."""

    def __init__(self, fd: int, operation: int) -> None:
        self._fd = fd
        self._operation = operation
        self._got = threading.Event()
        self._given_up = False
        self._guard = threading.Lock()
        threading.Thread(target=self._block, name="mlos_store lock waiter", daemon=True).start()

    def _block(self) -> None:
        fcntl.flock(self._fd, self._operation)
        with self._guard:
            if self._given_up:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            else:
                self._got.set()

    def wait(self, seconds: float) -> bool:
        """Whether the lock was taken within ``seconds``; if not, it will be given back once taken."""
        if self._got.wait(max(seconds, 0.0)):
            return True
        with self._guard:
            self._given_up = not self._got.is_set()
            return not self._given_up


def _try_flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
