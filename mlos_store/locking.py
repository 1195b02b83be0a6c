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
opened on the same file in one process exclude each other too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import time

#: First and largest pause between two tries for a busy lock, in seconds.
FIRST_PAUSE, LONGEST_PAUSE = 0.0005, 0.02


class LockTimeout(Exception):
    """The lock stayed busy until the deadline."""


class FileGate:
    """The ``<store>.lock`` / ``<store>.wait`` pair of one store file, for one opener."""

    def __init__(self, store_path: str, *, read_only: bool) -> None:
        self.lock_path = store_path + ".lock"
        self.wait_path = store_path + ".wait"
        self.created: list[str] = []
        self._lock_fd = self._open(self.lock_path, read_only)
        try:
            self._wait_fd = self._open(self.wait_path, read_only)
        except OSError:
            os.close(self._lock_fd)
            raise
        self._held = False

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
        except PermissionError:
            if not read_only:
                raise
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self, *, shared: bool, deadline: float) -> None:
        """Take the lock (shared for readers), waiting with backoff until ``deadline`` (monotonic)."""
        operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        if _try_flock(self._lock_fd, operation):
            self._held = True
            return
        fcntl.flock(self._wait_fd, fcntl.LOCK_SH)  # tell the holder someone waits
        try:
            pause = FIRST_PAUSE
            while not _try_flock(self._lock_fd, operation):
                now = time.monotonic()
                if now >= deadline:
                    raise LockTimeout(self.lock_path)
                time.sleep(min(pause * random.uniform(0.5, 1.5), deadline - now))
                pause = min(pause * 2, LONGEST_PAUSE)
        finally:
            fcntl.flock(self._wait_fd, fcntl.LOCK_UN)
        self._held = True

    def release(self) -> None:
        if self._held:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._held = False

    def others_waiting(self) -> bool:
        """Whether another opener is waiting for this lock right now."""
        if not _try_flock(self._wait_fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
            return True
        fcntl.flock(self._wait_fd, fcntl.LOCK_UN)
        return False

    def close(self, *, remove_created: bool = False) -> None:
        """Release and close; ``remove_created`` deletes the lock files this opener created."""
        self.release()
        os.close(self._lock_fd)
        os.close(self._wait_fd)
        if remove_created:
            for path in self.created:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def abandon(self) -> None:
        """Forget the lock inherited from a parent across fork: close this copy only.

        The parent's lock lives on in the parent's descriptor.
        """
        self._held = False
        for fd in (self._lock_fd, self._wait_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def _try_flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
