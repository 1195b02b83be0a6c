"""The store: one DuckDB database (a file, or in memory) holding experiments."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from . import parquet
from .analysis import ExperimentData, experiments
from .engine import DEFAULT_LINGER, DEFAULT_TIMEOUT, Compacted, Engine
from .experiment import Experiment, restore_experiment, shard_first_trial_id
from .import_store import ImportReport, import_store
from .overview import StoreOverview, store_overview
from .progress import ProgressCallback
from .tunables import TunablesLike


class Storage:
    """An mlos_store database; ``None`` or ``":memory:"`` keeps it in memory.

    A file is created with its schema on first use, upgraded if an older
    mlos_store wrote it, and refused (untouched) if it is not a store or a
    newer one wrote it. ``read_only=True`` opens an existing file without
    taking the write lock. Close it (or use ``with``) to release the file.

    ``mode`` says how a file is held (see the docs, "Share one file between processes"):
    ``"shared"`` (the default for files) lets several processes use it in
    turn, each holding it for one operation or transaction and waiting up
    to ``timeout`` seconds (then StoreBusyError) while another holds it;
    ``"exclusive"`` holds it from open to close, the fastest path for a
    process working alone. ``linger`` is how long a shared store keeps the
    file after an operation while no other process waits for it.

    A Storage pickles as its path and settings: a worker process that
    unpickles it (or an experiment or trial of it) opens the file itself.

    A store still open when the interpreter exits is closed then (DuckDB
    checkpoints its write-ahead log into the file), since callers such as
    mlos_bench's launcher never close theirs.

    Args:
        path: The store file, or None / ``":memory:"`` for a private in-memory store.
        read_only: Open an existing file without writing to it (several readers may share it).
        mode: ``"shared"`` (the default for a file) or ``"exclusive"``; an in-memory store is exclusive.
        timeout: Seconds a shared store waits for its turn on the file before StoreBusyError.
        linger: Seconds a shared store keeps the file after an operation while no one waits.

    Raises:
        NotAStoreError: The path is not an mlos_store database (a directory, a FIFO, another DuckDB
            database: left untouched), or is missing with ``read_only=True``.
        SchemaVersionError: A newer mlos_store wrote the file.
        StoreUnavailableError: The file cannot be opened (a missing directory, no permission, held by
            another program); an OSError.
        StoreBusyError: Another process held the file longer than ``timeout`` (shared mode, and the
            exclusive mode's open).
        InvalidValueError: A bad ``mode``, ``timeout`` or ``linger``, or ``mode="shared"`` for an
            in-memory store or on a platform without ``flock``; a backslash in the path.

    Every method of an open store may also raise StoreBusyError (its turn
    did not come within ``timeout``) and, once closed, StoreClosedError.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
                 mode: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 linger: float = DEFAULT_LINGER) -> None:
        self._engine = Engine(path, read_only=read_only, mode=mode, timeout=timeout, linger=linger)

    @classmethod
    def _on(cls, engine: Engine) -> Storage:
        """The Storage of an engine (how an unpickled Storage reconnects)."""
        storage = cls.__new__(cls)
        storage._engine = engine
        return storage

    def __reduce__(self) -> tuple[Any, ...]:
        return (Storage._on, (self._engine,))

    @property
    def path(self) -> str:
        """The path as given (messages show it). A relative one is resolved once, when the store is opened:
        the store keeps using that file, and its lock files, after the process changes directory."""
        return self._engine.path

    @property
    def read_only(self) -> bool:
        """Whether the store was opened with ``read_only=True``."""
        return self._engine.read_only

    @property
    def mode(self) -> str:
        """``"shared"`` or ``"exclusive"`` (an in-memory store is exclusive)."""
        return self._engine.mode

    @property
    def engine(self) -> Engine:
        """The engine that runs the named queries (for the library's own modules and the benchmarks)."""
        return self._engine

    def get_experiment_by_id(self, experiment_id: str, tunables: TunablesLike | None = None,
                             opt_targets: Mapping[str, str] | None = None) -> Experiment | None:
        """The stored experiment ``experiment_id``, or None: a worker's way back to it.

        It keeps its stored description, root_env_config and first trial id;
        ``tunables`` default to the stored ones and ``opt_targets`` to the
        stored objectives. Enter it (``with``) to add trials.

        Args:
            experiment_id: The experiment to restore.
            tunables: Tunables to use instead of the stored ones (their types must fit).
            opt_targets: The objectives the caller expects; checked against the stored ones.

        Returns:
            The experiment, not entered; None when no experiment has that id.

        Raises:
            InvalidValueError: ``experiment_id`` is not a non-empty str.
            ObjectiveConflictError: ``opt_targets`` differ from the stored objectives.
        """
        return restore_experiment(self._engine, experiment_id, tunables, opt_targets)

    def experiment(self, *, experiment_id: str, trial_id: int, root_env_config: str, description: str,
                   tunables: TunablesLike, opt_targets: Mapping[str, str], shard: int = 0) -> Experiment:
        """An experiment of this store, to be entered with ``with`` (same keywords as mlos_bench).

        Nothing is written until it is entered: entering creates it, or
        resumes it if stored (see ``Experiment``).

        Args:
            experiment_id: The experiment's id, any non-empty text.
            trial_id: The first trial id to use; a resumed experiment goes on after its largest one.
            root_env_config: The root environment config's path (recorded, with its git origin).
            description: Free text; a resumed experiment keeps the stored one.
            tunables: The tunables' defaults (a mapping of name to value, or a Tunables).
            opt_targets: Objectives, metric name to ``"min"`` or ``"max"``, in priority order.
            shard: For one experiment run on many machines, each runner's own number (1, 2, ...): its
                trials are numbered from ``shard * 2**40 + trial_id`` on, apart from every other shard's,
                so the runners' store files sync into one central store (``sync``) without conflicts.

        Raises:
            InvalidValueError: A malformed id, text, trial id or objective direction.
        """
        return Experiment(engine=self._engine, schema=self._engine.catalog, tunables=tunables,
                          experiment_id=experiment_id, trial_id=shard_first_trial_id(shard, trial_id),
                          root_env_config=root_env_config,
                          description=description, opt_targets=opt_targets)

    @property
    def experiments(self) -> dict[str, ExperimentData]:
        """Every stored experiment for analysis, by experiment id (no trial data read until asked)."""
        return experiments(self._engine)

    def import_parquet(self, path: str | os.PathLike[str], experiment_ids: Iterable[str] | None = None, *,
                       filesystem: Any = None, progress: ProgressCallback | None = None) -> list[str]:
        """Store the experiments of a Parquet lake ``Experiment.export_parquet`` wrote; returns their ids.

        All of them, or only ``experiment_ids``; one transaction, so a
        refused import stores nothing. It runs the pipeline of
        ``import_store``: config ids are remapped to this store's (matched by
        the hash of their values), and an experiment already stored is
        extended.

        Args:
            path: The lake ``export_parquet`` wrote: a local folder, a URL (``s3://bucket/lake``), or a
                path in ``filesystem``.
            experiment_ids: Only these experiments (default: every one in the lake).
            filesystem: A ``pyarrow.fs.FileSystem`` or an fsspec filesystem ``path`` is in (default: from ``path``).
            progress: Called as ``progress(done, total)`` as tables are read in (``mlos_store.progress``).

        Returns:
            The ids of the imported experiments.

        Raises:
            InvalidValueError: An unknown or layout-1 lake; an experiment folder without a manifest (an export
                that was killed), a file missing, truncated or not regular, columns, Arrow types, row counts
                or config hashes that do not match the layout, manifest and values; an experiment several
                stores exported (import one store's export at a time).
            UnknownObjectError: An id in ``experiment_ids`` the folder does not hold.
        """
        return parquet.import_experiments(self._engine, path, experiment_ids, filesystem=filesystem,
                                          progress=progress)

    def import_store(self, path: str | os.PathLike[str], experiment_ids: Iterable[str] | None = None, *,
                     progress: ProgressCallback | None = None) -> ImportReport:
        """Copy whole experiments (all, or those named) from another store file into this one.

        Trials, configs, results, status history and telemetry, in one
        transaction; importing the same file again adds nothing. A file in
        use by another store is waited for (its turn, up to ``timeout``); the
        rules for locks and for ids that collide are in ``mlos_store.import_store``.

        Args:
            path: Another store file of this schema version.
            experiment_ids: Only these experiments (default: all of the file's).
            progress: Called as ``progress(done, total)`` as tables are copied (``mlos_store.progress``).

        Returns:
            What the import added: experiments, trials, configs, telemetry points.

        Raises:
            TrialConflictError: A trial id of the file is held here by another trial.
            ObjectiveConflictError: An experiment stored here with other objectives.
            TunableConflictError: An experiment stored here with other tunable types.
            NotAStoreError: The file is not a store of this schema version, or holds tables, views or
                macros a store does not have.
            StoreBusyError: The file was held by another store longer than ``timeout``.
            StoreUnavailableError: Another program holds the file.
        """
        return import_store(self._engine, path, experiment_ids, progress=progress)

    def sync(self, path: str | os.PathLike[str], experiment_ids: Iterable[str] | None = None, *,
             progress: ProgressCallback | None = None) -> ImportReport:
        """Bring this store up to date with a runner's store file: what it gained since the last sync.

        New experiments, trials and configs, and the later life of trials
        stored here already: status changes with their history entries, end
        times, results, new telemetry points, runner assignments, new
        merges; one transaction, so no trial is ever seen here ended without
        its results. A stored trial never moves backwards (a stale copy of a
        source cannot undo a newer state), and a sync with nothing new
        changes nothing. Only the source's telemetry rows written since the
        last sync of it are read (a watermark kept here per source store and
        experiment). The same pipeline and refusals as ``import_store``:
        this is ``import_store`` under the name a central store calls it by.
        """
        return import_store(self._engine, path, experiment_ids, progress=progress)

    def overview(self) -> StoreOverview:
        """What the store holds at a glance: schema version, file size, trials by status, telemetry points."""
        return store_overview(self._engine)

    def check_integrity(self) -> dict[str, int]:
        """Each broken guarantee of the stored data (unique ids, no orphan rows, ...) with its row count.

        Empty for a store in order. The schema has no keys (they made a
        file shared between processes slower with every turn): the
        statements keep these guarantees, and this says whether they held,
        e.g. after a crash or on a file written by another tool.
        """
        table = self._engine.fetch_table(self._engine.catalog.store_integrity_violations)
        return dict(zip(table.column("guarantee").to_pylist(), table.column("violations").to_pylist()))

    def compact(self) -> Compacted:
        """Rewrite the file as compactly as a bulk copy of its rows: (bytes before, bytes after).

        A file written a turn at a time (the shared mode) grows to about
        1.4-1.8x the same rows written at once, as each turn's checkpoint
        leaves free and partly used blocks; compacting packs it again.
        Other processes wait meanwhile; every row, id and sequence is kept,
        and a compaction killed part way leaves the store as it was.
        """
        return self._engine.compact()

    def close(self) -> None:
        """Release the file (DuckDB writes its log into it); closing twice does nothing."""
        self._engine.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.path!r}{', read_only=True' if self.read_only else ''}, mode={self.mode!r})"
