"""The analysis side: read-only views of stored experiments, Arrow first.

``Storage.experiments`` maps each experiment id to an ``ExperimentData``;
from there ``trials``, ``tunable_configs`` and ``tunable_config_trial_groups``
lead to ``TrialData``, ``TunableConfigData`` and
``TunableConfigTrialGroupData`` (the shapes of ``mlos_bench.storage``'s
analysis classes). Nothing is read until a property is asked for, and every
property reads the store again, so a view of a running experiment stays
current. Every table is computed by named SQL and returned as Arrow; each
``*_df`` is the same table as a pandas DataFrame, for which pandas must be
installed (``pip install 'mlos_store[pandas]'``).

Two analysis objects that describe the same stored thing compare and hash
equal however they were reached (``SameStoredThing``), as mlos_bench's do.

Tables of trials are wide (one row per trial, ``config.<tunable>`` and
``result.<metric>`` columns, typed as ``mlos_store.values`` describes). One
trial's results, its trial config and a config's values are long
(a name column, then ``value``): ``value`` has one Arrow type when the values
share one, else it is the float64 numeric view beside a ``value_json`` column
holding the exact value of every row that is not a float, as telemetry does.
Every ``*_dict`` decodes each stored value by its own kind, so an int stays
an int beside floats, where the table's ``value`` column is float64.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Query
from .convert import (
    exact_values,
    matched_rows,
    merges_from_table,
    needs_decoding,
    status_history_from_table,
    widen,
    without_json_companion,
)
from .engine import Engine
from .errors import InvalidValueError, MissingDependencyError, UnknownObjectError
from .experiment_reads import ExperimentReads
from .objectives import checked_objectives, stored_objectives
from .status import Status, read_status_history
from .telemetry import read_telemetry
from .tunables import config_hash_of
from .values import (
    checked_id,
    telemetry_value_columns,
    values_from_rows,
)

if TYPE_CHECKING:
    import pandas

#: More objectives than this use the pairwise Pareto query (cost grows with the square of the trials).
_SWEEP_OBJECTIVES = 2


class SameStoredThing:
    """Equality and hash by what an analysis object describes (``_identity``), not by object.

    So ``trial.tunable_config == data.tunable_configs[trial.tunable_config_id]``
    holds, and the objects work as dict keys and set members. Objects of
    different analysis classes never compare equal.
    """

    def _identity(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SameStoredThing) or _analysis_class(self) is not _analysis_class(other):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((_analysis_class(self).__name__, self._identity()))


def _analysis_class(obj: SameStoredThing) -> type:
    """The analysis class of this module that ``obj`` is (a subclass compares with its base)."""
    return next(cls for cls in type(obj).__mro__ if cls.__module__ == __name__ and cls is not SameStoredThing)


def experiments(engine: Engine) -> dict[str, ExperimentData]:
    """Every stored experiment, by experiment id; reads their records only."""
    rows = engine.fetch_table(engine.catalog.experiment_list).to_pylist()
    return {row["experiment_id"]: ExperimentData(engine, **row) for row in rows}


class ExperimentData(SameStoredThing, ExperimentReads):
    """One stored experiment, for analysis: its objectives, trials, configs and results.

    Obtained from ``Storage.experiments``. Each property reads the store
    again, so a view of a running experiment stays current. Two objects of
    the same experiment are equal and hash equal.

    The ``*_df`` properties raise MissingDependencyError (an ImportError)
    without pandas (the ``[pandas]`` extra).
    """

    def __init__(self, engine: Engine, *, experiment_id: str, description: str, root_env_config: str,
                 git_repo: str | None, git_commit: str | None) -> None:
        self._engine = engine
        self._sql = engine.catalog
        self._experiment_id = experiment_id
        self._description = description
        self._root_env_config = root_env_config
        self._git_repo = git_repo
        self._git_commit = git_commit

    @property
    def experiment_id(self) -> str:
        """The experiment's id."""
        return self._experiment_id

    @property
    def description(self) -> str:
        """The stored description."""
        return self._description

    @property
    def root_env_config(self) -> tuple[str, str | None, str | None]:
        """``(root_env_config, git_repo, git_commit)``, as mlos_bench's ExperimentData gives it."""
        return (self._root_env_config, self._git_repo, self._git_commit)

    @property
    def git_repo(self) -> str | None:
        """The ``origin`` remote (else the checkout's folder) of the root config's checkout, or None."""
        return self._git_repo

    @property
    def git_commit(self) -> str | None:
        """The checkout's ``HEAD`` commit when the experiment was created, or None."""
        return self._git_commit

    def __repr__(self) -> str:
        return f"ExperimentData({self._experiment_id!r})"

    def _identity(self) -> tuple[Any, ...]:
        return (self._experiment_id,)

    @property
    def objectives(self) -> dict[str, str]:
        """Optimization target -> "min" or "max", in the order the experiment declared them."""
        return stored_objectives(self._engine, self._experiment_id)

    @property
    def merges_table(self) -> pa.Table:
        """The experiments merged into this one (``Experiment.merge``): ``merged_experiment_id``, ``ts_merged``.

        One row per merged experiment, by its id; ``ts_merged`` is when it
        was first merged (in UTC; merging it again changes nothing). A full
        ``Experiment.load`` returns their completed trials after this
        experiment's own. No rows when nothing was merged.
        """
        return self._engine.fetch_table(self._sql.merge_list, experiment_id=self._experiment_id)

    @property
    def merges(self) -> list[tuple[str, datetime]]:
        """``merges_table`` as ``[(merged_experiment_id, ts_merged), ...]``, by merged experiment id."""
        return merges_from_table(self.merges_table)

    @property
    def trials(self) -> dict[int, TrialData]:
        """Every trial (any status), by trial id; one query, results read when asked."""
        return trials_of(self._engine, self._experiment_id, None)

    def trial(self, trial_id: int) -> TrialData:
        """One trial, as ``trials[trial_id]`` gives it, read alone (``trials`` reads every trial).

        Raises:
            UnknownObjectError: The experiment has no trial ``trial_id`` (a KeyError).
            InvalidValueError: ``trial_id`` is not an int.
        """
        trial_id = checked_id(trial_id, f"experiment {self._experiment_id!r} trial id")
        rows = self._engine.fetch_table(self._sql.analysis_trial_get, experiment_id=self._experiment_id,
                                        trial_id=trial_id).to_pylist()
        if not rows:
            raise UnknownObjectError(f"experiment {self._experiment_id!r} has no trial {trial_id}")
        return TrialData(self._engine, experiment_id=self._experiment_id, **rows[0])

    def _trial_rows(self) -> pa.Table:
        return trial_rows(self._engine, self._experiment_id, None)

    @property
    def tunable_configs(self) -> dict[int, TunableConfigData]:
        """The configs this experiment's trials used, by config id."""
        ids = pc.unique(self._trial_rows().column("tunable_config_id")).to_pylist()
        return {config_id: TunableConfigData(self._engine, config_id) for config_id in sorted(ids)}

    @property
    def tunable_config_trial_groups(self) -> dict[int, TunableConfigTrialGroupData]:
        """The trials grouped by config, keyed by config id as in mlos_bench, ordered by config id.

        Each group's own id (``tunable_config_trial_group_id``) is the
        smallest trial id of the experiment that used the config.
        """
        rows = self._trial_rows().select(["tunable_config_id", "tunable_config_trial_group_id"])
        groups = dict(zip(rows.column(0).to_pylist(), rows.column(1).to_pylist()))
        return {config_id: TunableConfigTrialGroupData(self._engine, self._experiment_id, config_id, groups[config_id])
                for config_id in sorted(groups)}

    @property
    def default_tunable_config_id(self) -> int | None:
        """The config of the experiment's first trial if it holds the declared defaults, else None.

        "The declared defaults" are the tunable defaults stored for the
        experiment now; the match uses the same canonical hash that
        deduplicates configs, so 1, 1.0 and True differ.
        """
        defaults = self._engine.fetch_table(self._sql.experiment_tunable_list, experiment_id=self._experiment_id)
        row = self._engine.fetch_one(self._sql.experiment_default_config_id, experiment_id=self._experiment_id,
                                     config_hash=config_hash_of(defaults))
        return None if row is None else int(row.config_id)

    @property
    def results_table(self) -> pa.Table:
        """One row per trial (every status), by trial id, with its tunables and results.

        Columns: trial_id, ts_start, ts_end, tunable_config_id,
        tunable_config_trial_group_id, status, trial_runner_id, then
        ``config.<tunable>`` and ``result.<metric>``, each sorted by name and
        typed as in ``Experiment.load_table``. A trial without a result
        (pending, running, failed without metrics) has nulls there, marked
        absent. Two queries in one snapshot, however many trials.
        """
        return results_of(self._engine, self._experiment_id, None)

    @property
    def results_df(self) -> pandas.DataFrame:
        """``results_table`` as a pandas DataFrame (JSON-encoded columns decoded to Python values)."""
        return to_pandas(self.results_table)

    def best(self, objectives: Mapping[str, str] | None = None) -> pa.Table:
        """The best trials: ``results_table`` rows of the SUCCEEDED trials no other dominates.

        ``objectives`` (metric -> "min"/"max") defaults to the experiment's.
        A trial is dominated when another is at least as good on every
        objective and better on one; with one objective the result is every
        trial tied for the best value. Trials missing an objective, or
        holding None, NaN, a bool or a non-number for one, are left out.
        Ordered by the objectives' values in their order (best first), then
        trial id. Two objectives or fewer: one sort; more: pairwise, so
        slower for many thousand trials.

        Raises:
            InvalidValueError: A direction other than "min" / "max", or no objectives at all.
        """
        objectives = self._checked_objectives(objectives)
        query = (self._sql.experiment_pareto_front_2d if len(objectives) <= _SWEEP_OBJECTIVES
                 else self._sql.experiment_pareto_front)
        return self._results_in_order(query, objectives)

    def ranked(self, objectives: Mapping[str, str] | None = None) -> pa.Table:
        """``results_table`` rows of the SUCCEEDED trials holding every objective, best first.

        Ordered by the first objective in its direction, ties by the next,
        then by trial id, so with one objective ``ranked().slice(0, n)`` is
        the n best trials; with several, unlike ``best()``, the order is
        lexicographic, not Pareto. Trials are left out as in ``best()``.

        Raises:
            InvalidValueError: A direction other than "min" / "max", or no objectives at all.
        """
        return self._results_in_order(self._sql.experiment_trials_ranked, self._checked_objectives(objectives))

    def _results_in_order(self, query: Query, objectives: dict[str, str]) -> pa.Table:
        """``results_table`` rows of the trial ids ``query`` lists for ``objectives``, in its order."""
        with self._engine.transaction():
            chosen = self._engine.fetch_table(query, experiment_id=self._experiment_id,
                                              metrics=list(objectives), directions=list(objectives.values()))
            results = self.results_table
        rows = pc.index_in(chosen.column("trial_id"), value_set=results.column("trial_id"))
        return results.take(rows)

    def _checked_objectives(self, objectives: Mapping[str, str] | None) -> dict[str, str]:
        chosen = checked_objectives(self._experiment_id, self.objectives if objectives is None else objectives)
        if not chosen:
            raise InvalidValueError(
                f"experiment {self._experiment_id!r}: best() needs objectives (metric names to 'min' or 'max'); "
                "it has none, pass some"
            )
        return chosen


class TrialData(SameStoredThing):
    """One stored trial, as it was when its experiment's ``trials`` were read.

    Its status, times and runner are that snapshot; its results, trial
    config and telemetry are read from the store when asked. Two objects of
    the same trial are equal and hash equal. The ``*_df`` properties raise
    MissingDependencyError (an ImportError) without pandas.
    """

    def __init__(self, engine: Engine, *, experiment_id: str, trial_id: int, ts_start: datetime,
                 ts_end: datetime | None, tunable_config_id: int, tunable_config_trial_group_id: int,
                 status: str, trial_runner_id: int | None) -> None:
        self._engine = engine
        self._sql = engine.catalog
        self._experiment_id = experiment_id
        self._trial_id = trial_id
        self._ts_start = ts_start
        self._ts_end = ts_end
        self._tunable_config_id = tunable_config_id
        self._group_id = tunable_config_trial_group_id
        self._status = Status[status]
        self._trial_runner_id = trial_runner_id

    @property
    def experiment_id(self) -> str:
        """The id of the trial's experiment."""
        return self._experiment_id

    @property
    def trial_id(self) -> int:
        """The trial's id within its experiment."""
        return self._trial_id

    @property
    def ts_start(self) -> datetime:
        """When the trial started (its scheduled start until it runs), in UTC."""
        return self._ts_start

    @property
    def ts_end(self) -> datetime | None:
        """When the trial ended, in UTC; None until it has a final status."""
        return self._ts_end

    @property
    def status(self) -> Status:
        """The trial's status when it was read."""
        return self._status

    @property
    def trial_runner_id(self) -> int | None:
        """The runner the trial was assigned to, or None."""
        return self._trial_runner_id

    @property
    def tunable_config_id(self) -> int:
        """The id of the trial's tunable values."""
        return self._tunable_config_id

    @property
    def tunable_config_trial_group_id(self) -> int:
        """The smallest trial id of the experiment that used the same config."""
        return self._group_id

    def __repr__(self) -> str:
        return f"TrialData({self._experiment_id!r}, {self._trial_id}, {self._status.name})"

    def _identity(self) -> tuple[Any, ...]:
        return (self._experiment_id, self._trial_id)

    @property
    def tunable_config(self) -> TunableConfigData:
        """The trial's tunable values."""
        return TunableConfigData(self._engine, self._tunable_config_id)

    @property
    def tunable_config_trial_group(self) -> TunableConfigTrialGroupData:
        """The trials of the experiment that used the same config (repeats of this one)."""
        return TunableConfigTrialGroupData(self._engine, self._experiment_id, self._tunable_config_id, self._group_id)

    @property
    def status_history_table(self) -> pa.Table:
        """Every status the trial went through (``ts``, ``status`` name), in the order the changes were made.

        Read from the store when asked, so it can be later than ``status``
        (the snapshot). Each ``ts`` is the timestamp its caller gave
        (PENDING: when the trial was stored), in UTC; callers' clocks may
        disagree, so the rows are not sorted by time.
        """
        return read_status_history(self._engine, self._experiment_id, self._trial_id)

    def status_history(self) -> list[tuple[datetime, Status]]:
        """``status_history_table`` as ``[(ts, Status), ...]``: exactly what ``Trial.status_history()`` gives."""
        return status_history_from_table(self.status_history_table)

    def _result_rows(self) -> pa.Table:
        return self._engine.fetch_table(self._sql.trial_result_list, experiment_id=self._experiment_id,
                                        trial_id=self._trial_id)

    @property
    def results_table(self) -> pa.Table:
        """The trial's results (metric, value[, value_json]) by metric name; empty if none."""
        return long_table(self._result_rows(), "metric")

    @property
    def results_dict(self) -> dict[str, Any]:
        """{metric: value} of the trial's results, each exactly as stored (an int stays an int)."""
        return values_from_rows(self._result_rows())

    @property
    def results_df(self) -> pandas.DataFrame:
        """(metric, value) with each value exactly as stored (an object column)."""
        return long_df(self._result_rows(), "metric")

    def telemetry_table(self, *, metrics: str | Iterable[str] | None = None,
                        start: datetime | None = None, end: datetime | None = None) -> pa.Table:
        """The trial's telemetry, as ``Experiment.telemetry_table`` gives it."""
        return read_telemetry(self._engine, self._experiment_id, self._trial_id,
                              metrics=metrics, start=start, end=end)

    @property
    def telemetry_df(self) -> pandas.DataFrame:
        """The trial's telemetry with exactly mlos_bench's columns ``ts, metric, value`` (exact values)."""
        return to_pandas(self.telemetry_table().drop_columns(["experiment_id", "trial_id"]))

    def _param_rows(self) -> pa.Table:
        return self._engine.fetch_table(self._sql.trial_param_list, experiment_id=self._experiment_id,
                                        trial_ids=[self._trial_id])

    @property
    def metadata_table(self) -> pa.Table:
        """The trial config (parameter, value[, value_json]) by parameter name."""
        return long_table(self._param_rows(), "parameter")

    @property
    def metadata_dict(self) -> dict[str, Any]:
        """The trial config: {parameter: value}, each exactly as stored."""
        return values_from_rows(self._param_rows())

    @property
    def metadata_df(self) -> pandas.DataFrame:
        """(parameter, value) of the trial config, each value exactly as stored."""
        return long_df(self._param_rows(), "parameter")


class TunableConfigData(SameStoredThing):
    """One stored set of tunable values (shared by every trial that used exactly those values)."""

    def __init__(self, engine: Engine, tunable_config_id: int) -> None:
        self._engine = engine
        self._tunable_config_id = tunable_config_id

    @property
    def tunable_config_id(self) -> int:
        return self._tunable_config_id

    def __repr__(self) -> str:
        return f"TunableConfigData({self._tunable_config_id})"

    def _identity(self) -> tuple[Any, ...]:
        return (self._tunable_config_id,)

    def _rows(self) -> pa.Table:
        return self._engine.fetch_table(self._engine.catalog.tunable_param_list, config_ids=[self._tunable_config_id])

    @property
    def config_table(self) -> pa.Table:
        """The values (parameter, value[, value_json]) by tunable name."""
        return long_table(self._rows(), "parameter")

    @property
    def config_dict(self) -> dict[str, Any]:
        """{tunable: value}, each exactly as stored ({"x": 0.5, "n": 3} keeps n an int)."""
        return values_from_rows(self._rows())

    @property
    def config_df(self) -> pandas.DataFrame:
        """(parameter, value) with each value exactly as stored ({"x": 0.5, "n": 3} keeps n an int)."""
        return long_df(self._rows(), "parameter")


class TunableConfigTrialGroupData(SameStoredThing):
    """The trials of one experiment that used one config; its id is the smallest of their trial ids."""

    def __init__(self, engine: Engine, experiment_id: str, tunable_config_id: int,
                 tunable_config_trial_group_id: int) -> None:
        self._engine = engine
        self._experiment_id = experiment_id
        self._tunable_config_id = tunable_config_id
        self._group_id = tunable_config_trial_group_id

    @property
    def experiment_id(self) -> str:
        return self._experiment_id

    @property
    def tunable_config_id(self) -> int:
        return self._tunable_config_id

    @property
    def tunable_config_trial_group_id(self) -> int:
        return self._group_id

    def __repr__(self) -> str:
        return f"TunableConfigTrialGroupData({self._experiment_id!r}, {self._group_id})"

    def _identity(self) -> tuple[Any, ...]:
        return (self._experiment_id, self._tunable_config_id, self._group_id)

    @property
    def tunable_config(self) -> TunableConfigData:
        return TunableConfigData(self._engine, self._tunable_config_id)

    @property
    def trials(self) -> dict[int, TrialData]:
        """The group's trials, by trial id."""
        return trials_of(self._engine, self._experiment_id, self._tunable_config_id)

    @property
    def results_table(self) -> pa.Table:
        """The experiment's ``results_table`` restricted to this group's trials (columns typed on them)."""
        return results_of(self._engine, self._experiment_id, self._tunable_config_id)

    @property
    def results_df(self) -> pandas.DataFrame:
        return to_pandas(self.results_table)


# ---------------------------------------------------------------- shared helpers


def trial_rows(engine: Engine, experiment_id: str, config_id: int | None) -> pa.Table:
    """The experiment's trial rows (or those of one config), by trial id."""
    return engine.fetch_table(engine.catalog.analysis_trial_list, experiment_id=experiment_id, config_id=config_id)


def trials_of(engine: Engine, experiment_id: str, config_id: int | None) -> dict[int, TrialData]:
    """TrialData of the experiment's trials (or those of one config), by trial id."""
    rows = trial_rows(engine, experiment_id, config_id).to_pylist()
    return {row["trial_id"]: TrialData(engine, experiment_id=experiment_id, **row) for row in rows}


def results_of(engine: Engine, experiment_id: str, config_id: int | None) -> pa.Table:
    """The wide results of an experiment's trials (or those of one config), read in one snapshot."""
    with engine.transaction():
        trials = trial_rows(engine, experiment_id, config_id)
        values = engine.fetch_table(engine.catalog.trial_values, experiment_id=experiment_id,
                                    last_trial_id=-1, config_id=config_id, completed_only=False)
    return widen(trials, matched_rows(trials, values))


def long_table(rows: pa.Table, name_column: str) -> pa.Table:
    """(name_column, value[, value_json]) from rows with name and the four value columns."""
    table = pa.table({name_column: rows.column("name")})
    for field, column in telemetry_value_columns(rows):
        table = table.append_column(field, column)
    return table


def long_df(rows: pa.Table, name_column: str) -> pandas.DataFrame:
    """(name_column, value) as pandas, each value decoded by its stored kind, as mlos_bench's long frames."""
    pandas = _import_pandas()
    values = values_from_rows(rows)
    return pandas.DataFrame({name_column: pandas.Series(list(values), dtype=object),
                             "value": pandas.Series(list(values.values()), dtype=object)})


def _import_pandas() -> Any:
    """pandas, an optional extra, imported on first use, never by ``import mlos_store``."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise MissingDependencyError(
            "the *_df conveniences need pandas, an optional extra: pip install 'mlos_store[pandas]' "
            "(the *_table forms give the same data as Arrow without it)"
        ) from exc


def to_pandas(table: pa.Table) -> pandas.DataFrame:
    """A pandas DataFrame of an Arrow table, every cell holding the exact stored value.

    JSON-encoded columns are decoded to Python objects (a cell with no
    stored value is None), and a numeric ``value`` with its ``value_json``
    companion becomes one ``value`` column of exact values. pandas is an
    optional extra, imported here on first use, never by ``import mlos_store``.
    """
    pandas = _import_pandas()
    frame = without_json_companion(table).to_pandas()
    for field in without_json_companion(table).schema:
        if needs_decoding(field):
            frame[field.name] = pandas.Series(exact_values(table, field), dtype=object, index=frame.index)
    return frame
