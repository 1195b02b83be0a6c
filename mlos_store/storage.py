"""The store: one DuckDB database (a file, or in memory) holding experiments."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from .analysis import ExperimentData, experiments
from .engine import Engine
from .experiment import Experiment


class Storage:
    """An mlos_store database; ``None`` or ``":memory:"`` keeps it in memory.

    A file is created with its schema on first use, upgraded if an older
    mlos_store wrote it, and refused (untouched) if it is not a store or a
    newer one wrote it. ``read_only=True`` opens an existing file without
    taking the write lock. Close it (or use ``with``) to release the file.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> None:
        self._engine = Engine(path, read_only=read_only)

    @property
    def path(self) -> str:
        return self._engine.path

    @property
    def read_only(self) -> bool:
        return self._engine.read_only

    @property
    def engine(self) -> Engine:
        return self._engine

    def experiment(self, *, experiment_id: str, trial_id: int, root_env_config: str, description: str,
                   tunables: Any, opt_targets: Mapping[str, str]) -> Experiment:
        """An experiment of this store, to be entered with ``with`` (same keywords as mlos_bench)."""
        return Experiment(engine=self._engine, schema=self._engine.catalog, tunables=tunables,
                          experiment_id=experiment_id, trial_id=trial_id, root_env_config=root_env_config,
                          description=description, opt_targets=opt_targets)

    @property
    def experiments(self) -> dict[str, ExperimentData]:
        """Every stored experiment for analysis, by experiment id (no trial data read until asked)."""
        return experiments(self._engine)

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.path!r}{', read_only=True' if self.read_only else ''})"
