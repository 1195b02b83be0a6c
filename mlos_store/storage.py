"""The store: one DuckDB database (a file, or in memory) holding experiments."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from . import parquet
from .analysis import ExperimentData, experiments
from .engine import DEFAULT_LINGER, DEFAULT_TIMEOUT, Engine
from .experiment import Experiment, restore_experiment
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

    ``mode`` says how a file is held (see the README, "Parallel runners"):
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
        return self._engine.read_only

    @property
    def mode(self) -> str:
        """``"shared"`` or ``"exclusive"`` (an in-memory store is exclusive)."""
        return self._engine.mode

    @property
    def engine(self) -> Engine:
        return self._engine

    def get_experiment_by_id(self, experiment_id: str, tunables: TunablesLike | None = None,
                             opt_targets: Mapping[str, str] | None = None) -> Experiment | None:
        """The stored experiment ``experiment_id``, or None: a worker's way back to it.

        It keeps its stored description, root_env_config and first trial id;
        ``tunables`` default to the stored ones and ``opt_targets`` to the
        stored objectives (objectives that differ are refused with
        ObjectiveConflictError). Enter it (``with``) to add trials.
        """
        return restore_experiment(self._engine, experiment_id, tunables, opt_targets)

    def experiment(self, *, experiment_id: str, trial_id: int, root_env_config: str, description: str,
                   tunables: TunablesLike, opt_targets: Mapping[str, str]) -> Experiment:
        """An experiment of this store, to be entered with ``with`` (same keywords as mlos_bench)."""
        return Experiment(engine=self._engine, schema=self._engine.catalog, tunables=tunables,
                          experiment_id=experiment_id, trial_id=trial_id, root_env_config=root_env_config,
                          description=description, opt_targets=opt_targets)

    @property
    def experiments(self) -> dict[str, ExperimentData]:
        """Every stored experiment for analysis, by experiment id (no trial data read until asked)."""
        return experiments(self._engine)

    def import_parquet(self, path: str | os.PathLike[str], experiment_ids: Iterable[str] | None = None, *,
                       filesystem: Any = None, progress: ProgressCallback | None = None) -> list[str]:
        """Store the experiments of a Parquet lake ``Experiment.export_parquet`` wrote; returns their ids.

        All of them, or only ``experiment_ids``; one transaction. ``path`` is
        a local folder, a URL (``s3://bucket/lake``), or a path in
        ``filesystem`` (a ``pyarrow.fs.FileSystem`` or an fsspec one). An
        id already stored is refused (InvalidValueError) and nothing is
        imported; config ids are remapped to this store's. ``progress(done,
        total)`` is called as tables are read in (``mlos_store.progress``).
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
        ``progress(done, total)`` is called as tables are copied (``mlos_store.progress``).
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

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.path!r}{', read_only=True' if self.read_only else ''}, mode={self.mode!r})"
