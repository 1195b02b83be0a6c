"""The library's exceptions.

Each also inherits the builtin that code written for mlos_bench catches in
that case, so ``except KeyError`` or ``except ValueError`` keeps working.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error mlos_store raises on purpose."""


class NotAStoreError(StoreError, ValueError):
    """The path names a file that is not an mlos_store database; it was not touched."""


class SchemaVersionError(StoreError, RuntimeError):
    """The database was written by another schema version and cannot be used as is."""


class UnknownObjectError(StoreError, KeyError):
    """An experiment, trial or config id that is not stored."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidValueError(StoreError, ValueError):
    """A value, name or config that cannot be stored as given."""


class ObjectiveConflictError(StoreError, ValueError):
    """Objectives that differ from the ones stored for the experiment."""


class TunableConflictError(StoreError, ValueError):
    """Tunables whose types differ from the ones stored for the experiment."""


class TrialConflictError(StoreError, ValueError):
    """A trial id that another trial already holds in the store being imported into."""


class IllegalTransitionError(StoreError, ValueError):
    """A status change the trial life cycle does not allow (e.g. RUNNING to READY)."""


class TrialEndedError(IllegalTransitionError, RuntimeError):
    """A change to a trial that has already ended."""


class ConcurrentChangeError(StoreError, RuntimeError):
    """Another writer changed the same trial between reading and writing it."""


class StoreUnavailableError(StoreError, OSError):
    """The database file cannot be opened (locked by another process, unreadable, ...)."""


class ExperimentStateError(StoreError, RuntimeError):
    """An experiment used outside its context, or entered twice."""


class StoreClosedError(StoreError, RuntimeError):
    """The storage was closed."""


class QueryError(StoreError, RuntimeError):
    """A named query failed in DuckDB; the message names the query and its file."""


class CatalogError(StoreError, RuntimeError):
    """The SQL catalog is malformed (a bug in the package, found when it loads)."""


class MissingDependencyError(StoreError, ImportError):
    """A convenience needs an optional extra that is not installed (e.g. pandas for ``*_df``)."""


class StoreBusyError(StoreUnavailableError, TimeoutError):
    """Another process held the store file for longer than the configured timeout."""


class CheckpointWarning(UserWarning):
    """A change was stored (in the store's write-ahead log) but could not be written into the file itself.

    The call that made it succeeded; the next use of the store replays the
    log, and a later checkpoint (when there is room on the disk again)
    writes it into the file. Retrying the call would store it twice.
    """


class CompactionWarning(UserWarning):
    """A shared store's automatic compaction failed (say, no room for the copy).

    The call that ended the turn succeeded, the store file is exactly as it
    was, and the next attempt waits until the file has grown further;
    ``Storage.compact()`` can be run by hand once the cause is gone.
    """
