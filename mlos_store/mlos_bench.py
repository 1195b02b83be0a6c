"""mlos_store as a storage backend of mlos_bench: its scheduler and launcher run on a store.

``MlosStoreStorage`` subclasses mlos_bench's abstract ``Storage`` (its nested
``Experiment`` and ``Trial`` subclass ``Storage.Experiment`` and
``Storage.Trial``, its analysis classes mlos_bench's ``ExperimentData``,
``TrialData``, ``TunableConfigData`` and ``TunableConfigTrialGroupData``),
so mlos_bench uses it as it uses its own SQL storage. This module only
translates at the boundary: mlos_bench's ``Status`` and ``TunableGroups``
in and out, datetimes in the (pytz) UTC zone mlos_bench asserts,
pandas where mlos_bench returns pandas. What is stored, and how, is
mlos_store's public API (``mlos_store.Storage`` and the objects it gives).

The one intended difference from mlos_bench's SQL storage: values keep
their types (a result stored as ``99.9`` comes back as ``99.9``, not the
text ``"99.9"``).

mlos_bench is an optional extra (``pip install 'mlos_store[mlos-bench]'``);
``import mlos_store`` never imports it, and importing this module without
it raises ``MissingDependencyError``.

``main`` (the ``mlos-store-bench`` command) is mlos_bench's own launcher
and optimization loop, with one change: a ``--storage`` config whose
``class`` is ``mlos_store.mlos_bench.MlosStoreStorage`` is checked by this
module instead of mlos_bench's storage JSON schema, which admits only its
SQL storage.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from . import analysis
from .errors import IllegalTransitionError, InvalidValueError, MissingDependencyError
from .experiment import Experiment as StoreExperiment
from .experiment import shard_first_trial_id
from .storage import Storage as StoreStorage
from .trial import Trial as StoreTrial

try:
    from mlos_bench.config.schemas import ConfigSchema
    from mlos_bench.environments.status import Status
    from mlos_bench.launcher import Launcher
    from mlos_bench.services.base_service import Service
    from mlos_bench.storage.base_experiment_data import ExperimentData
    from mlos_bench.storage.base_storage import Storage
    from mlos_bench.storage.base_trial_data import TrialData
    from mlos_bench.storage.base_tunable_config_data import TunableConfigData
    from mlos_bench.storage.base_tunable_config_trial_group_data import TunableConfigTrialGroupData
    from mlos_bench.tunables.tunable_groups import TunableGroups
    from pytz import UTC as BENCH_UTC  # the zone mlos_bench gives and asserts
except ImportError as exc:  # pragma: no cover - exercised by a test that hides mlos_bench
    raise MissingDependencyError(
        "mlos_store.mlos_bench needs mlos_bench, an optional extra: pip install 'mlos_store[mlos-bench]' "
        f"({exc})"
    ) from exc

if TYPE_CHECKING:
    import pandas

_LOG = logging.getLogger(__name__)

#: The ``class`` of a storage config that selects this backend.
CLASS_NAME = "mlos_store.mlos_bench.MlosStoreStorage"
#: Config keys and the types each takes (``path`` None: in memory).
CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "path": (str, type(None)),
    "mode": (str, type(None)),
    "timeout": (int, float),
    "read_only": (bool,),
    "shard": (int,),
}


def _bench_status(status: Any) -> Status:
    """mlos_bench's Status of the same name as an mlos_store status."""
    return Status[status.name]


def _utc(ts: datetime) -> datetime:
    """The same instant in pytz's UTC, the zone mlos_bench returns and its analysis classes assert."""
    return ts.astimezone(BENCH_UTC)


class MlosStoreStorage(Storage):
    """An mlos_store database as mlos_bench's ``Storage``, built from a storage config.

    ``config`` keys: ``path`` (a store file; absent or None: in memory),
    and ``mode``, ``timeout``, ``read_only`` as ``mlos_store.Storage`` takes
    them; ``shard``: this runner's shard of experiments run on many machines
    (``mlos_store.Storage.experiment``). Any other key is refused
    (InvalidValueError, a ValueError).
    """

    def __init__(self, config: dict[str, Any], global_config: dict[str, Any] | None = None,
                 service: Service | None = None) -> None:
        super().__init__(config, global_config, service)
        options = {key: self._config[key] for key in ("mode", "timeout", "read_only") if key in self._config}
        self._store = StoreStorage(self._config.get("path"), **options)

    def _validate_json_config(self, config: dict[str, Any]) -> None:
        """Check the config against this backend's keys (mlos_bench's schema knows only its SQL storage)."""
        if not isinstance(config, Mapping):
            raise InvalidValueError(f"{type(self).__name__} config must be a mapping, got {config!r}")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise InvalidValueError(
                f"{type(self).__name__} config: unknown keys {unknown} (known: {', '.join(CONFIG_KEYS)})"
            )
        for key, value in config.items():
            if not isinstance(value, CONFIG_KEYS[key]) or (key == "timeout" and isinstance(value, bool)):
                raise InvalidValueError(f"{type(self).__name__} config: {key} = {value!r} has the wrong type")

    @property
    def store(self) -> StoreStorage:
        """The ``mlos_store.Storage`` underneath (Arrow reads, merge, import, the analysis extras)."""
        return self._store

    def update_schema(self) -> None:
        """Nothing to do: a store file is created or upgraded to the current schema when opened."""

    def close(self) -> None:
        self._store.close()

    def __repr__(self) -> str:
        return f"mlos_store:{self._store.path}"

    def experiment(self, *, experiment_id: str, trial_id: int, root_env_config: str, description: str,
                   tunables: TunableGroups, opt_targets: dict[str, Literal["min", "max"]]) -> Storage.Experiment:
        trial_id = shard_first_trial_id(self._config.get("shard", 0), trial_id)
        return MlosStoreStorage.Experiment(store=self._store, tunables=tunables, experiment_id=experiment_id,
                                           trial_id=trial_id, root_env_config=root_env_config,
                                           description=description, opt_targets=opt_targets)

    def get_experiment_by_id(self, experiment_id: str, tunables: TunableGroups,
                             opt_targets: dict[str, Literal["min", "max"]] | None = None
                             ) -> MlosStoreStorage.Experiment | None:
        """The stored experiment, or None (mlos_bench after 0.6.2); enter it to add trials."""
        stored = self._store.get_experiment_by_id(experiment_id, tunables, opt_targets)
        if stored is None:
            return None
        experiment = MlosStoreStorage.Experiment.__new__(MlosStoreStorage.Experiment)
        experiment._restore(stored, tunables)
        return experiment

    @property
    def experiments(self) -> dict[str, ExperimentData]:
        return {eid: MlosStoreExperimentData(data) for eid, data in self._store.experiments.items()}

    class Experiment(Storage.Experiment):
        """mlos_bench's ``Storage.Experiment`` on an mlos_store experiment."""

        def __init__(self, *, store: StoreStorage, tunables: TunableGroups, experiment_id: str, trial_id: int,
                     root_env_config: str, description: str, opt_targets: dict[str, Literal["min", "max"]]) -> None:
            # mlos_bench's constructor asks git about root_env_config's folder (as its SQL storage does).
            super().__init__(tunables=tunables, experiment_id=experiment_id, trial_id=trial_id,
                             root_env_config=root_env_config, description=description, opt_targets=opt_targets)
            self._exp: StoreExperiment = _ProvenancedExperiment(
                engine=store.engine, schema=store.engine.catalog, tunables=tunables, experiment_id=experiment_id,
                trial_id=trial_id, root_env_config=self._root_env_config, description=description,
                opt_targets=opt_targets, git_origin=(self._git_repo, self._git_commit))

        def _restore(self, stored: StoreExperiment, tunables: TunableGroups) -> None:
            """Fill in an experiment restored from the store (without asking git again)."""
            self._tunables = tunables.copy()
            self._trial_id = stored.trial_id
            self._experiment_id = stored.experiment_id
            self._root_env_config = stored.root_env_config
            self._git_repo = self._git_commit = None  # type: ignore[assignment]
            self._description = stored.description
            self._opt_targets = stored.opt_targets  # type: ignore[assignment]
            self._in_context = False
            self._exp = stored

        @property
        def store_experiment(self) -> StoreExperiment:
            """The ``mlos_store.Experiment`` underneath (load_table, telemetry_table, ...)."""
            return self._exp

        def _setup(self) -> None:
            self._exp.__enter__()
            self._trial_id = self._exp.trial_id  # resumes after the largest stored trial id
            self._description = self._exp.description

        def _teardown(self, is_ok: bool) -> None:
            self._exp.__exit__(None, None, None)

        def merge(self, experiment_ids: list[str]) -> None:
            """Merge in other experiments' completed trials (mlos_bench 0.6.2's SQL storage raises instead)."""
            for report in self._exp.merge(experiment_ids):
                _LOG.info("Merged into %s: %s", self._experiment_id, report)

        def load_tunable_config(self, config_id: int) -> dict[str, Any]:
            return self._exp.load_tunable_config(config_id)

        def load_telemetry(self, trial_id: int) -> list[tuple[datetime, str, Any]]:
            return [(_utc(ts), metric, value)
                    for ts, metric, value in self._exp.load_telemetry(trial_id)]

        def load(self, last_trial_id: int = -1
                 ) -> tuple[list[int], list[dict[str, Any]], list[dict[str, Any] | None], list[Status]]:
            """mlos_store's ``load`` (merged trials listed as -2, -3, ...), with mlos_bench's Status."""
            trial_ids, configs, scores, statuses = self._exp.load(last_trial_id)
            return trial_ids, configs, scores, [_bench_status(s) for s in statuses]

        def pending_trials(self, timestamp: datetime, *, running: bool) -> Iterator[Storage.Trial]:
            for trial in self._exp.pending_trials(timestamp, running=running):
                yield self._bench_trial(trial)

        def _new_trial(self, tunables: TunableGroups, ts_start: datetime | None = None,
                       config: dict[str, Any] | None = None) -> Storage.Trial:
            # As mlos_bench's SQL storage: the start time defaults to now, in whole seconds.
            start = (ts_start or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
            trial = self._exp.new_trial(tunables, ts_start=start, config=config)
            self._trial_id = trial.trial_id + 1
            return MlosStoreStorage.Trial(trial, tunables)

        def get_trial_by_id(self, trial_id: int) -> Storage.Trial | None:
            """The stored trial, or None (mlos_bench after 0.6.2)."""
            trial = self._exp.get_trial_by_id(trial_id)
            return None if trial is None else self._bench_trial(trial)

        def _bench_trial(self, trial: StoreTrial) -> MlosStoreStorage.Trial:
            """A stored trial with the experiment's TunableGroups set to its values."""
            return MlosStoreStorage.Trial(trial, self._tunables.copy().assign(dict(trial.tunables)).reset())

    class Trial(Storage.Trial):
        """mlos_bench's ``Storage.Trial`` on an mlos_store trial; its status is read from the store."""

        def __init__(self, trial: StoreTrial, tunables: TunableGroups) -> None:
            super().__init__(tunables=tunables, experiment_id=trial.experiment_id, trial_id=trial.trial_id,
                             tunable_config_id=trial.tunable_config_id,
                             opt_targets=trial.opt_targets)  # type: ignore[arg-type]
            self._trial = trial

        @property
        def store_trial(self) -> StoreTrial:
            return self._trial

        @property
        def status(self) -> Status:
            return _bench_status(self._trial.status)

        @property
        def trial_runner_id(self) -> int | None:
            return self._trial.trial_runner_id

        def set_trial_runner(self, trial_runner_id: int) -> int | None:
            return self._trial.set_trial_runner(trial_runner_id)

        def config(self, global_config: dict[str, Any] | None = None) -> dict[str, Any]:
            return self._trial.config(global_config)

        def add_new_config_data(self, new_config_data: Mapping[str, Any]) -> None:
            self._trial.add_new_config_data(new_config_data)

        def status_history(self) -> list[tuple[datetime, Status]]:
            return [(_utc(ts), _bench_status(s)) for ts, s in self._trial.status_history()]

        def update(self, status: Status, timestamp: datetime,
                   metrics: dict[str, Any] | None = None) -> dict[str, Any] | None:
            metrics = super().update(status, timestamp, metrics)  # mlos_bench's checks and warning
            try:
                self._trial.update(status, timestamp, metrics)  # type: ignore[arg-type]
            except IllegalTransitionError as exc:  # TrialEndedError included
                if status.is_completed():
                    raise
                # mlos_bench's SQL storage keeps a started or ended trial as it is and only warns.
                _LOG.warning("Trial %s :: cannot be updated to: %s (%s)", self, status, exc)
            return metrics

        def update_telemetry(self, status: Status, timestamp: datetime,
                             metrics: list[tuple[datetime, str, Any]]) -> None:
            super().update_telemetry(status, timestamp, metrics)
            self._trial.update_telemetry(status, timestamp, metrics)  # type: ignore[arg-type]


class _ProvenancedExperiment(StoreExperiment):
    """An mlos_store experiment recording the git origin mlos_bench computed, not its own.

    mlos_bench asks git about the config's folder whether or not the file
    is there and stores the path relative to the checkout; mlos_store
    records nothing unless the file exists. The adapter stores what
    mlos_bench's SQL storage would.
    """

    def __init__(self, *, git_origin: tuple[str | None, str | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bench_git_origin = git_origin

    def _git_origin(self) -> tuple[str | None, str | None]:
        return self._bench_git_origin


# ---------------------------------------------------------------- analysis


class MlosStoreExperimentData(ExperimentData):
    """mlos_bench's ``ExperimentData`` of a stored experiment.

    ``default_tunable_config_id`` is mlos_bench's own: the config of the
    first trial whose metadata says ``is_defaults``, else of the first trial.
    """

    def __init__(self, data: analysis.ExperimentData) -> None:
        super().__init__(experiment_id=data.experiment_id, description=data.description,
                         root_env_config=data.root_env_config[0],
                         git_repo=data.git_repo, git_commit=data.git_commit)  # type: ignore[arg-type]
        self._data = data

    @property
    def store_data(self) -> analysis.ExperimentData:
        """mlos_store's view (Arrow tables, ``best``, ``ranked``, telemetry analytics)."""
        return self._data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MlosStoreExperimentData) and other._experiment_id == self._experiment_id

    def __hash__(self) -> int:
        return hash(self._data)

    @property
    def objectives(self) -> dict[str, Literal["min", "max"]]:
        return self._data.objectives  # type: ignore[return-value]

    @property
    def trials(self) -> dict[int, TrialData]:
        return {tid: MlosStoreTrialData(trial) for tid, trial in self._data.trials.items()}

    @property
    def tunable_configs(self) -> dict[int, TunableConfigData]:
        return {cid: MlosStoreTunableConfigData(config) for cid, config in self._data.tunable_configs.items()}

    @property
    def tunable_config_trial_groups(self) -> dict[int, TunableConfigTrialGroupData]:
        return {cid: MlosStoreTunableConfigTrialGroupData(group)
                for cid, group in self._data.tunable_config_trial_groups.items()}

    @property
    def results_df(self) -> pandas.DataFrame:
        return self._data.results_df


class MlosStoreTrialData(TrialData):
    """mlos_bench's ``TrialData`` of a stored trial; the dict forms keep each value's type."""

    def __init__(self, data: analysis.TrialData) -> None:
        super().__init__(experiment_id=data.experiment_id, trial_id=data.trial_id,
                         tunable_config_id=data.tunable_config_id, ts_start=_utc(data.ts_start),
                         ts_end=None if data.ts_end is None else _utc(data.ts_end), status=_bench_status(data.status))
        self._data = data

    def __hash__(self) -> int:
        return hash(self._data)

    @property
    def trial_runner_id(self) -> int | None:
        return self._data.trial_runner_id

    @property
    def tunable_config(self) -> TunableConfigData:
        return MlosStoreTunableConfigData(self._data.tunable_config)

    @property
    def tunable_config_trial_group(self) -> TunableConfigTrialGroupData:
        return MlosStoreTunableConfigTrialGroupData(self._data.tunable_config_trial_group)

    @property
    def results_df(self) -> pandas.DataFrame:
        return self._data.results_df

    @property
    def results_dict(self) -> dict[str, Any]:
        return self._data.results_dict

    @property
    def telemetry_df(self) -> pandas.DataFrame:
        return self._data.telemetry_df

    @property
    def metadata_df(self) -> pandas.DataFrame:
        return self._data.metadata_df

    @property
    def metadata_dict(self) -> dict[str, Any]:
        return self._data.metadata_dict


class MlosStoreTunableConfigData(TunableConfigData):
    """mlos_bench's ``TunableConfigData`` of a stored config; ``config_dict`` keeps each value's type."""

    def __init__(self, data: analysis.TunableConfigData) -> None:
        super().__init__(tunable_config_id=data.tunable_config_id)
        self._data = data

    def __hash__(self) -> int:
        return hash(self._data)

    @property
    def config_df(self) -> pandas.DataFrame:
        return self._data.config_df

    @property
    def config_dict(self) -> dict[str, Any]:
        return self._data.config_dict


class MlosStoreTunableConfigTrialGroupData(TunableConfigTrialGroupData):
    """mlos_bench's ``TunableConfigTrialGroupData`` of the trials of one experiment sharing one config."""

    def __init__(self, data: analysis.TunableConfigTrialGroupData) -> None:
        super().__init__(experiment_id=data.experiment_id, tunable_config_id=data.tunable_config_id,
                         tunable_config_trial_group_id=data.tunable_config_trial_group_id)
        self._data = data

    def __hash__(self) -> int:
        return hash(self._data)

    def _get_tunable_config_trial_group_id(self) -> int:
        return self._data.tunable_config_trial_group_id

    @property
    def tunable_config(self) -> TunableConfigData:
        return MlosStoreTunableConfigData(self._data.tunable_config)

    @property
    def trials(self) -> dict[int, TrialData]:
        return {tid: MlosStoreTrialData(trial) for tid, trial in self._data.trials.items()}

    @property
    def results_df(self) -> pandas.DataFrame:
        return self._data.results_df


# ---------------------------------------------------------------- the command


class MlosStoreLauncher(Launcher):
    """mlos_bench's ``Launcher``, whose ``--storage`` may name ``MlosStoreStorage``.

    A storage config of that class is checked by ``MlosStoreStorage`` (its
    keys) instead of mlos_bench's storage schema, which admits only its SQL
    storage; any other config goes through mlos_bench unchanged. Without
    ``--storage`` the store is in memory (mlos_bench: an in-memory SQLite).
    """

    def _load_storage(self, args_storage: str | None, lazy_schema_create: bool | None = None) -> Storage:
        if args_storage is None:
            return MlosStoreStorage(config={}, global_config=self.global_config, service=self._parent_service)
        class_config = self._config_loader.load_config(args_storage, schema_type=None)
        assert isinstance(class_config, dict)
        if class_config.get("class") != CLASS_NAME:
            ConfigSchema.STORAGE.validate(class_config)
            return super()._load_storage(args_storage, lazy_schema_create)
        return self._config_loader.build_storage(service=self._parent_service, config=class_config,
                                                 global_config=self.global_config)


def main(argv: list[str] | None = None) -> int:
    """``mlos-store-bench``: mlos_bench's optimization loop (same arguments), storing in mlos_store.

    Exit code 0 when the loop found a best score, else 1.
    """
    launcher = MlosStoreLauncher("mlos-store-bench", "mlos_bench's optimization loop, stored by mlos_store",
                                 argv=argv)
    with launcher.scheduler as scheduler:
        scheduler.start()
        scheduler.teardown()
    score, config = launcher.scheduler.get_best_observation()
    _LOG.info("Final score: %s", score)
    print(f"best score: {score}; best config: {config}", file=sys.stderr)
    return 0 if score else 1


if __name__ == "__main__":  # pragma: no cover - the console script calls main()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
