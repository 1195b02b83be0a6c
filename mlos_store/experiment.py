"""An experiment: its trials, their configurations, results and telemetry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import pyarrow as pa

from . import telemetry
from .catalog import Catalog, PicklesWithoutCatalog
from .convert import LoadResult, load_from_table, matched_rows, telemetry_from_table, widen
from .engine import Engine
from .errors import (
    ExperimentStateError,
    InvalidValueError,
    ObjectiveConflictError,
    TunableConflictError,
    UnknownObjectError,
)
from .experiment_reads import ExperimentReads
from .gitinfo import git_origin
from .merge import MergeReport, add_merged_trials, merge_experiments
from .objectives import checked_objectives, objective_rows, stored_objectives
from .status import Status
from .telemetry_buffer import TelemetryBuffer
from .trial import Trial
from .tunables import Tunables, TunablesLike, config_hash_of, tunable_values
from .values import (
    check_text,
    checked_id,
    named_value_pairs,
    named_values_table,
    now_utc,
    to_utc,
    values_from_rows,
)

MAX_TRIAL_ID = 2**63 - 1  # trial ids are BIGINT
#: Trial ids per shard: shard k numbers its trials from k * 2**40 (sql/schema/0006_sync.sql).
SHARD_TRIAL_IDS = 2**40
#: Shards an experiment may be split into (every BIGINT id belongs to one).
SHARDS = 2**23


def shard_first_trial_id(shard: int, trial_id: int) -> int:
    """The first trial id of a runner opening an experiment as ``shard``: ``shard * 2**40 + trial_id``.

    Runners of one experiment, each given its own shard, allocate trial ids
    in disjoint ranges (the next id is one past the largest of its shard),
    so their store files sync into one central store without conflicts.
    Shard 0 is the numbering of an unsharded experiment.
    """
    if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < SHARDS:
        raise InvalidValueError(f"shard must be an int in [0, 2**23), got {shard!r}")
    if not shard:
        return trial_id  # unsharded: checked by the experiment as always
    if not isinstance(trial_id, int) or isinstance(trial_id, bool) or not 0 <= trial_id < SHARD_TRIAL_IDS:
        raise InvalidValueError(f"with a shard, trial_id must be an int in [0, 2**40), got {trial_id!r}")
    return shard * SHARD_TRIAL_IDS + trial_id


class Experiment(ExperimentReads, PicklesWithoutCatalog):
    """One experiment in a store, used as a context manager to add trials.

    Normally obtained from ``Storage.experiment(...)``. Entering creates the
    experiment record (or finds it, refusing objectives that differ; the
    stored description and root_env_config win over the ones given) and
    numbering continues after the largest stored trial id. Reads work
    without entering.

    Re-entering checks the tunables against the ones stored when the
    experiment was created: a different type is refused, and a tunable
    given with a None default (no type) keeps the stored type, so new trials
    cannot put a str where earlier trials stored ints.

    Raises:
        InvalidValueError: (when made) an empty or non-str id, a trial id outside ``[0, 2**63 - 1)``,
            non-str texts, an objective direction other than ``"min"`` / ``"max"``.
        ObjectiveConflictError: (when entered) the experiment is stored with other objectives.
        TunableConflictError: (when entered) a tunable is stored with another type.
        ExperimentStateError: entered twice; or a write (``new_trial``, ``merge``) outside ``with``.
    """

    def __init__(self, *, engine: Engine, schema: Catalog, tunables: TunablesLike, experiment_id: str,
                 trial_id: int, root_env_config: str, description: str,
                 opt_targets: Mapping[str, str]) -> None:
        if not isinstance(experiment_id, str) or not experiment_id:
            raise InvalidValueError(f"experiment_id must be a non-empty str, got {experiment_id!r}")
        check_text(experiment_id, "experiment_id")
        if not isinstance(trial_id, int) or isinstance(trial_id, bool) or not 0 <= trial_id < MAX_TRIAL_ID:
            raise InvalidValueError(
                f"experiment {experiment_id!r}: trial_id must be an int in [0, 2**63 - 1), got {trial_id!r}"
            )
        for what, text in (("root_env_config", root_env_config), ("description", description)):
            if not isinstance(text, str):
                raise InvalidValueError(f"experiment {experiment_id!r}: {what} must be a str, got {text!r}")
            check_text(text, f"experiment {experiment_id!r}: {what}")
        self._engine = engine
        self._sql = schema
        self._experiment_id = experiment_id
        self._first_trial_id = trial_id
        self._root_env_config = root_env_config
        self._description = description
        self._tunables = Tunables.from_any(tunables)
        self._opt_targets = checked_objectives(experiment_id, opt_targets)
        self._entered = False

    # ------------------------------------------------------------ context

    def __enter__(self) -> Experiment:
        if self._entered:
            raise ExperimentStateError(f"experiment {self._experiment_id!r} is already entered")
        origin = self._git_origin()  # before the transaction: git may take a while
        with self._engine.transaction():
            stored = self._engine.fetch_one(self._sql.experiment_get, experiment_id=self._experiment_id)
            if stored is None:
                self._create(*origin)
            else:
                self._check_objectives()
                stored_tunables = self._check_tunables()
                self._store_tunables(known=set(stored_tunables))
                self._tunables = self._tunables.typed_like(stored_tunables)
                self._description, self._root_env_config = stored.description, stored.root_env_config
                self._first_trial_id = _resumed_first_trial_id(self._first_trial_id, stored.first_trial_id)
        self._entered = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._entered = False

    def _git_origin(self) -> tuple[str | None, str | None]:
        """``(git_repo, git_commit)`` recorded for a new experiment (the mlos_bench adapter overrides it)."""
        return git_origin(self._root_env_config)

    def _create(self, git_repo: str | None, git_commit: str | None) -> None:
        self._engine.execute(self._sql.experiment_insert, experiment_id=self._experiment_id,
                             description=self._description, root_env_config=self._root_env_config,
                             git_repo=git_repo, git_commit=git_commit, first_trial_id=self._first_trial_id)
        self._engine.ingest(self._sql.objective_insert, objective_rows(self._opt_targets),
                            experiment_id=self._experiment_id)
        self._store_tunables(known=set())

    def _store_tunables(self, known: set[str]) -> None:
        """Store the declared tunables not ``known`` yet (writing nothing when there are none)."""
        new = {name: value for name, value in self._tunables.defaults.items() if name not in known}
        if new:
            rows = named_values_table(new, "tunable", allow_json=False)
            self._engine.ingest(self._sql.experiment_tunable_insert, rows, experiment_id=self._experiment_id)

    def _check_tunables(self) -> Tunables:
        """The stored tunables; refuses tunables whose type differs from the stored one."""
        stored = Tunables(values_from_rows(self._engine.fetch_table(
            self._sql.experiment_tunable_list, experiment_id=self._experiment_id)))
        shared = {name: value for name, value in self._tunables.defaults.items() if name in stored}
        try:
            stored.assign(shared)
        except InvalidValueError as exc:
            raise TunableConflictError(
                f"experiment {self._experiment_id!r} is stored with other tunable types: {exc}"
            ) from None
        return stored

    def _check_objectives(self) -> None:
        stored = stored_objectives(self._engine, self._experiment_id)
        if stored != self._opt_targets:
            raise ObjectiveConflictError(
                f"experiment {self._experiment_id!r} is stored with objectives {stored}, "
                f"not {self._opt_targets}; use another experiment id"
            )

    def _require_entered(self, action: str) -> None:
        if not self._entered:
            raise ExperimentStateError(
                f"experiment {self._experiment_id!r} must be entered (with ...) to {action}"
            )

    # ------------------------------------------------------------ properties

    @property
    def experiment_id(self) -> str:
        """The experiment's id."""
        return self._experiment_id

    @property
    def trial_id(self) -> int:
        """The id the next new trial will get (the database allocates it)."""
        return int(self._engine.fetch_value(self._sql.experiment_next_trial_id,
                                            experiment_id=self._experiment_id,
                                            first_trial_id=self._first_trial_id))

    @property
    def description(self) -> str:
        """The description (once entered, the stored one)."""
        return self._description

    @property
    def root_env_config(self) -> str:
        """The root environment config's path (once entered, the stored one)."""
        return self._root_env_config

    @property
    def tunables(self) -> Tunables:
        """The declared tunables and their defaults (once entered, typed as stored)."""
        return self._tunables

    @property
    def opt_targets(self) -> dict[str, str]:
        """Objectives: metric name to ``"min"`` or ``"max"``, in declared order (a copy)."""
        return dict(self._opt_targets)

    def __repr__(self) -> str:
        return f"Experiment({self._experiment_id!r})"

    # ------------------------------------------------------------ writing

    def new_trial(self, tunables: TunablesLike, ts_start: datetime | None = None,
                  config: Mapping[str, Any] | None = None) -> Trial:
        """Store a PENDING trial of these tunable values, scheduled at ``ts_start``.

        Everything is checked before anything is written. Equal values
        share one stored tunable config (``tunable_config_id``).

        Args:
            tunables: Values of declared tunables (a mapping, or a Tunables); the rest keep their defaults.
            ts_start: When the trial is scheduled to start (default: now); naive means local time.
            config: The trial config: JSON-serialisable values that are not tunables (repeat number, ...).

        Returns:
            The new trial, PENDING, under the next free trial id.

        Raises:
            InvalidValueError: A tunable the experiment does not declare, a value of another type, a
                ``config`` that is not a mapping of JSON-serialisable values, a bad ``ts_start``.
            ExperimentStateError: The experiment is not entered.
        """
        self._require_entered("add trials")
        values = self._tunables.assign(tunable_values(tunables))
        tunable_rows = named_values_table(dict(values), "tunable", allow_json=False)
        config = _checked_config(self._experiment_id, config)
        config_rows = named_values_table(config, f"experiment {self._experiment_id!r} trial config",
                                         allow_json=True)
        ts_created = now_utc()
        ts_start = ts_created if ts_start is None else to_utc(ts_start, f"experiment {self._experiment_id!r} ts_start")
        with self._engine.transaction():
            config_id = self._config_id(tunable_rows)
            trial_id = int(self._engine.fetch_value(
                self._sql.trial_insert, experiment_id=self._experiment_id,
                first_trial_id=self._first_trial_id, config_id=config_id,
                ts_created=ts_created, ts_start=ts_start))
            if config_rows.num_rows:
                self._engine.insert_rows(self._sql.trial_param_insert, config_rows,
                                         experiment_id=self._experiment_id, trial_id=trial_id)
            self._engine.execute(self._sql.trial_status_append, experiment_id=self._experiment_id,
                                 trial_id=trial_id, ts=ts_created, status=Status.PENDING.name)
        return self._trial(trial_id, config_id, values, config, status_hint=Status.PENDING)

    def _config_id(self, rows: pa.Table) -> int:
        """The config id of these tunable value rows, storing them first if they are new."""
        config_hash = config_hash_of(rows)
        created = self._engine.fetch_one(self._sql.tunable_config_insert_new, config_hash=config_hash)
        if created is None:
            return int(self._engine.fetch_value(self._sql.tunable_config_id_by_hash, config_hash=config_hash))
        self._engine.insert_rows(self._sql.tunable_param_insert, rows, config_id=created.config_id)
        return int(created.config_id)

    def _trial(self, trial_id: int, config_id: int, tunables: Tunables, config: Mapping[str, Any],
               trial_runner_id: int | None = None, status_hint: Status | None = None) -> Trial:
        return Trial(engine=self._engine, schema=self._sql, experiment_id=self._experiment_id,
                     trial_id=trial_id, tunable_config_id=config_id, tunables=tunables,
                     opt_targets=self._opt_targets, config=config, trial_runner_id=trial_runner_id,
                     status_hint=status_hint)

    # ------------------------------------------------------------ reading

    def load_table(self, last_trial_id: int = -1) -> pa.Table:
        """The completed trials after ``last_trial_id``, one row each, by trial id.

        Columns: experiment_id, trial_id, tunable_config_id, status,
        ts_start, ts_end, then ``config.<tunable>`` and ``result.<metric>``,
        each sorted by name and typed as ``mlos_store.values`` describes.
        Two queries in one snapshot, however many trials.

        With no ``last_trial_id`` (-1; any other value loads only this
        experiment's trials after it, see ``load``) the completed trials of
        the experiments merged in (``merge``) follow, by experiment id then
        trial id, with their tunables imputed as ``mlos_store.merge``
        describes; an experiment that merges others has an ``imputed``
        column (after ts_end) naming, per row, the imputed tunables.

        Raises:
            InvalidValueError: ``last_trial_id`` is not an int.
        """
        last_trial_id = checked_id(last_trial_id, "last_trial_id")
        with self._engine.transaction():
            trials = self._engine.fetch_table(self._sql.trial_list_completed,
                                              experiment_id=self._experiment_id, last_trial_id=last_trial_id)
            values = self._engine.fetch_table(self._sql.trial_values, experiment_id=self._experiment_id,
                                              last_trial_id=last_trial_id, config_id=None, completed_only=True)
            values = matched_rows(trials, values)
            trials, values = add_merged_trials(self._engine, self._experiment_id, trials, values,
                                               include_trials=last_trial_id == -1)
        return widen(trials, values)

    def load(self, last_trial_id: int = -1) -> LoadResult:
        """``(trial_ids, configs, scores, status)`` of the completed trials: ``load_table`` converted.

        With no ``last_trial_id`` (-1), the merged-in experiments' trials
        follow this experiment's own, listed with ids -2, -3, ... in that
        order (``load_table`` keeps their experiment and trial ids). So
        ``max(trial_ids)`` of any ``load`` is a safe watermark to pass back
        as ``last_trial_id``: it is the largest own id seen (or -2 when only
        merged trials came back), the next call returns exactly the own
        trials after it, and merged trials come only with -1.

        Raises:
            InvalidValueError: ``last_trial_id`` is not an int.
        """
        return load_from_table(self.load_table(last_trial_id), self._experiment_id)

    def merge(self, experiment_ids: Iterable[str]) -> list[MergeReport]:
        """Merge in the completed trials of other compatible experiments, to warm up the optimizer.

        Records the merge (idempotent); a full ``load`` then returns their
        trials after this experiment's own, as ``mlos_store.merge``
        describes. Every id is checked before anything is recorded: unknown
        ids, this experiment, conflicting objective directions and tunables
        of types that do not fit are refused, and then nothing is recorded.

        Args:
            experiment_ids: The experiments to merge in; merging one again changes nothing.

        Returns:
            Per experiment, the tunables dropped from and imputed into its configs.

        Raises:
            UnknownObjectError: An id that is not stored (a KeyError).
            InvalidValueError: This experiment's own id.
            ObjectiveConflictError: A shared objective with the other direction.
            TunableConflictError: A shared tunable declared with a type that does not fit.
            ExperimentStateError: The experiment is not entered.
        """
        self._require_entered("merge other experiments")
        return merge_experiments(self._engine, self._experiment_id, self._opt_targets, experiment_ids)

    def ingest_telemetry(self, points: telemetry.ArrowTelemetry) -> None:
        """Store telemetry of many trials at once: Arrow with columns trial_id, ts, metric, value.

        For harnesses that buffer. One transaction and one insert; points
        already stored are skipped as in ``Trial.update_telemetry``. Accepts
        any stored trial of this experiment, whatever its status, and
        records no status.

        Raises:
            UnknownObjectError: A trial id this experiment does not have (a KeyError); nothing is stored.
            InvalidValueError: Other columns than trial_id, ts, metric, value; timestamps mixing naive and
                aware; values that cannot be stored. Nothing is stored.
        """
        telemetry.ingest_many(self._engine, self._experiment_id, points)

    def telemetry_buffer(self) -> TelemetryBuffer:
        """An opt-in in-memory buffer of many trials' points, stored by its ``flush()`` in one transaction.

        Faster than one ``update_telemetry`` transaction per trial, but
        buffered points are not durable (nor visible) until flushed.
        """
        return TelemetryBuffer(self._engine, self._experiment_id)

    def load_telemetry(self, trial_id: int) -> list[tuple[datetime, str, Any]]:
        """``[(ts, metric, value), ...]`` of one trial by ts then metric: ``telemetry_table`` converted.

        Raises:
            UnknownObjectError: The experiment has no such trial.
        """
        self._require_trial(checked_id(trial_id, "trial_id"))
        return telemetry_from_table(self.telemetry_table(trial_id))

    def load_tunable_config(self, config_id: int) -> dict[str, Any]:
        """The tunable values stored under ``config_id``.

        Raises:
            UnknownObjectError: No config has that id.
        """
        config_id = checked_id(config_id, "config_id")
        with self._engine.transaction():
            if not self._engine.fetch_value(self._sql.tunable_config_exists, config_id=config_id):
                raise UnknownObjectError(f"tunable config {config_id!r} is not stored")
            rows = self._engine.fetch_table(self._sql.tunable_param_list, config_ids=[config_id])
        return values_from_rows(rows)

    def pending_trials(self, timestamp: datetime, *, running: bool,
                       trial_runner_assigned: bool | None = None) -> Iterator[Trial]:
        """Trials scheduled at or before ``timestamp`` that have not ended, by trial id.

        PENDING ones, plus READY and RUNNING ones when ``running`` is true;
        ``trial_runner_assigned`` True keeps only trials assigned to a
        runner, False only unassigned ones, None both. Each comes with its
        tunables, trial config and runner restored (three queries).

        Raises:
            InvalidValueError: ``trial_runner_assigned`` is not None, True or False, or a bad timestamp.
        """
        if trial_runner_assigned is not None and not isinstance(trial_runner_assigned, bool):
            raise InvalidValueError(
                f"experiment {self._experiment_id!r}: trial_runner_assigned must be None, True or False, "
                f"got {trial_runner_assigned!r}"
            )
        statuses = [Status.PENDING.name] + ([Status.READY.name, Status.RUNNING.name] if running else [])
        with self._engine.transaction():
            rows = self._engine.fetch_table(
                self._sql.trial_list_pending, experiment_id=self._experiment_id, statuses=statuses,
                timestamp=to_utc(timestamp, f"experiment {self._experiment_id!r} pending_trials timestamp"),
                runner_assigned=trial_runner_assigned,
            ).to_pylist()
            trials = self._restored_trials(rows)
        yield from trials

    def get_trial_by_id(self, trial_id: int) -> Trial | None:
        """The stored trial ``trial_id`` of this experiment, or None.

        With its tunables, trial config and runner restored; its status is
        always read from the store.
        """
        trial_id = checked_id(trial_id, "trial_id")
        with self._engine.transaction():
            row = self._engine.fetch_one(self._sql.trial_get_stored, experiment_id=self._experiment_id,
                                         trial_id=trial_id)
            if row is None:
                return None
            stored = {"trial_id": trial_id, "config_id": row.config_id, "trial_runner_id": row.trial_runner_id}
            return self._restored_trials([stored])[0]

    def _restored_trials(self, rows: list[dict[str, Any]]) -> list[Trial]:
        """Trial objects for stored trial rows (trial_id, config_id, trial_runner_id): two queries."""
        ids = [t["trial_id"] for t in rows]
        params = _grouped_values(self._engine.fetch_table(
            self._sql.trial_param_list, experiment_id=self._experiment_id, trial_ids=ids), "trial_id")
        configs = _grouped_values(self._engine.fetch_table(
            self._sql.tunable_param_list, config_ids=sorted({t["config_id"] for t in rows})), "config_id")
        return [self._trial(t["trial_id"], t["config_id"], self._restored_tunables(configs.get(t["config_id"], {})),
                            params.get(t["trial_id"], {}), t["trial_runner_id"]) for t in rows]

    def _restored_tunables(self, values: Mapping[str, Any]) -> Tunables:
        """Stored values on this experiment's tunables (``Tunables.restored``)."""
        return Tunables.restored(self._tunables, values)

    def _require_trial(self, trial_id: int) -> None:
        if self._engine.fetch_one(self._sql.trial_get_state, experiment_id=self._experiment_id,
                                  trial_id=trial_id) is None:
            raise UnknownObjectError(f"experiment {self._experiment_id!r} has no trial {trial_id!r}")


def restore_experiment(engine: Engine, experiment_id: str, tunables: TunablesLike | None,
                       opt_targets: Mapping[str, str] | None) -> Experiment | None:
    """The stored experiment, or None; ``Storage.get_experiment_by_id`` documents it."""
    if not isinstance(experiment_id, str) or not experiment_id:
        raise InvalidValueError(f"experiment_id must be a non-empty str, got {experiment_id!r}")
    sql = engine.catalog
    with engine.transaction():
        stored = engine.fetch_one(sql.experiment_get, experiment_id=experiment_id)
        if stored is None:
            return None
        stored_targets = stored_objectives(engine, experiment_id)
        declared = values_from_rows(engine.fetch_table(sql.experiment_tunable_list, experiment_id=experiment_id))
    if opt_targets is not None and checked_objectives(experiment_id, opt_targets) != stored_targets:
        raise ObjectiveConflictError(
            f"experiment {experiment_id!r} is stored with objectives {stored_targets}, not {dict(opt_targets)}"
        )
    return Experiment(engine=engine, schema=sql, tunables=declared if tunables is None else tunables,
                      experiment_id=experiment_id, trial_id=stored.first_trial_id,
                      root_env_config=stored.root_env_config, description=stored.description,
                      opt_targets=stored_targets)


def _checked_config(experiment_id: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidValueError(f"experiment {experiment_id!r}: trial config must be a mapping, got {config!r}")
    return dict(config)  # its values are checked as they are encoded


def _grouped_values(rows: pa.Table, key: str) -> dict[Any, dict[str, Any]]:
    """{key: {name: value}} from long value rows sorted by key."""
    groups: dict[Any, dict[str, Any]] = {}
    for k, (name, value) in zip(rows.column(key).to_pylist(), named_value_pairs(rows)):
        groups.setdefault(k, {})[name] = value
    return groups



def _resumed_first_trial_id(asked: int, stored: int) -> int:
    """Where a resumed experiment numbers from: the larger of the two ids, within the shard asked for.

    Unsharded (shard 0, as before shards) takes the larger of both. A
    shard k >= 1 keeps to its own range even in a store that holds the
    experiment as another shard created it (a central store).
    """
    if asked >= SHARD_TRIAL_IDS and asked // SHARD_TRIAL_IDS != stored // SHARD_TRIAL_IDS:
        return asked
    return max(asked, stored)
