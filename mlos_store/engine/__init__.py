"""The DuckDB connection layer: the only package that imports duckdb.

It opens (and creates, and migrates) a database, runs named queries from the
catalog with bound parameters, ingests Arrow data, nests transactions and
translates DuckDB's exceptions into the library's own. One class, ``Engine``,
built in layers, each a module a reader finds by name:

- ``files``: what a store file is (DuckDB's header, one resolved path);
- ``modes``: shared or exclusive, timeout and linger;
- ``connection``: the connection, its session settings, one query run, DuckDB's errors as ours;
- ``turns``: the shared mode's turns on the file (OS lock, attach, let go);
- ``migrations``: a file's schema version and the migrations past it;
- ``lifecycle``: open, reopen after unpickling, fork, close, exit;
- ``compaction``: the rows copied into a fresh file that replaces the store;
- ``queries``: ``Engine``, one public method per query kind, transactions, streams.
"""

from .compaction import Compacted
from .connection import Row
from .files import MEMORY, STORE_FORMAT, check_duckdb_file, resolved_store_path
from .modes import DEFAULT_LINGER, DEFAULT_TIMEOUT, EXCLUSIVE, MODES, SHARED
from .queries import ArrowInput, Engine

__all__ = [
    "DEFAULT_LINGER", "DEFAULT_TIMEOUT", "EXCLUSIVE", "MEMORY", "MODES", "SHARED", "STORE_FORMAT",
    "ArrowInput", "Compacted", "Engine", "Row", "check_duckdb_file", "resolved_store_path",
]
