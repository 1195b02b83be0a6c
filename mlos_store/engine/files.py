"""What a store file is: a regular file with DuckDB's header, named by one resolved path."""

from __future__ import annotations

import os
import stat

from ..errors import InvalidValueError, NotAStoreError, StoreUnavailableError

STORE_FORMAT = "mlos_store"
MEMORY = ":memory:"
_DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8

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
