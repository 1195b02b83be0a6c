"""A trial: one run of one tunable configuration within an experiment."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from .catalog import Catalog, PicklesWithoutCatalog
from .convert import status_history_from_table
from .engine import Engine
from .errors import ConcurrentChangeError, InvalidValueError, StoreError, UnknownObjectError
from .status import Change, Status, decide_change, read_status_history
from .telemetry import TelemetryInput, append_if_state, store_points, trial_points
from .tunables import Tunables
from .values import named_values_table, to_utc

#: Runner ids are stored as INTEGER.
MAX_RUNNER_ID = 2**31 - 1


class MissingObjectiveWarning(UserWarning):
    """A SUCCEEDED trial was stored without every optimization target."""


class Trial(PicklesWithoutCatalog):
    """A stored trial. Its status is always read from the store, never cached.

    To save a query per change, ``update`` first tries the move from the
    status this object last stored (``status_hint``; PENDING for a new
    trial): the conditional UPDATE applies it only if the store still holds
    that status, and otherwise the stored status is read and decided from,
    as without a hint. A hint never decides a refusal or a no-op.

    Every method that reads or writes the trial raises UnknownObjectError
    (a KeyError) if the trial is no longer stored.
    """

    def __init__(self, *, engine: Engine, schema: Catalog, experiment_id: str, trial_id: int,
                 tunable_config_id: int, tunables: Tunables, opt_targets: Mapping[str, str],
                 config: Mapping[str, Any] | None = None, trial_runner_id: int | None = None,
                 status_hint: Status | None = None) -> None:
        self._engine = engine
        self._sql = schema
        self._experiment_id = experiment_id
        self._trial_id = trial_id
        self._tunable_config_id = tunable_config_id
        self._tunables = tunables
        self._opt_targets = dict(opt_targets)
        self._config = dict(config or {})
        self._trial_runner_id = trial_runner_id
        self._status_hint = status_hint

    def __repr__(self) -> str:
        return f"{self._experiment_id}:{self._trial_id}"

    @property
    def experiment_id(self) -> str:
        """The id of the trial's experiment."""
        return self._experiment_id

    @property
    def trial_id(self) -> int:
        """The trial's id within its experiment."""
        return self._trial_id

    @property
    def tunable_config_id(self) -> int:
        """The id of the trial's tunable values (shared by every trial with equal values)."""
        return self._tunable_config_id

    @property
    def tunables(self) -> Tunables:
        """The trial's tunable values."""
        return self._tunables

    @property
    def opt_targets(self) -> dict[str, str]:
        """The experiment's objectives: metric name to ``"min"`` or ``"max"`` (a copy)."""
        return dict(self._opt_targets)

    @property
    def trial_runner_id(self) -> int | None:
        """The runner the trial is assigned to, or None (as last read from or written to the store)."""
        return self._trial_runner_id

    def set_trial_runner(self, trial_runner_id: int) -> int | None:
        """Assign the trial to a runner, and return the runner stored afterwards.

        The assignment is made while the trial is PENDING (a scheduler may
        still move it) or has no runner; otherwise the stored runner stays.
        Either way the stored value comes back, so a runner that lost a race
        for the trial learns which runner has it. One transaction.

        Raises:
            InvalidValueError: ``trial_runner_id`` is not an int in ``[0, 2**31 - 1]``.
        """
        if (not isinstance(trial_runner_id, int) or isinstance(trial_runner_id, bool)
                or not 0 <= trial_runner_id <= MAX_RUNNER_ID):
            raise InvalidValueError(
                f"trial {self}: trial_runner_id must be an int in [0, 2**31 - 1], got {trial_runner_id!r}"
            )
        with self._engine.transaction():
            self._engine.count(self._sql.trial_runner_assign, experiment_id=self._experiment_id,
                               trial_id=self._trial_id, trial_runner_id=trial_runner_id)
            row = self._engine.fetch_one(self._sql.trial_runner_get, experiment_id=self._experiment_id,
                                         trial_id=self._trial_id)
        if row is None:
            raise UnknownObjectError(f"trial {self} is not stored")
        self._trial_runner_id = row.trial_runner_id
        return self._trial_runner_id

    @property
    def status(self) -> Status:
        """The stored status (read each time, so every object of this trial agrees)."""
        return self._stored_status()

    def config(self, global_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A copy of the trial config, updated with ``global_config``, plus its ids.

        The ids: ``experiment_id``, ``trial_id`` and ``trial_runner_id``
        (None while unassigned), as mlos_bench after 0.6.2 gives them.
        """
        config = dict(self._config)
        config.update(global_config or {})
        config["experiment_id"] = self._experiment_id
        config["trial_id"] = self._trial_id
        config["trial_runner_id"] = self._trial_runner_id
        return config

    def add_new_config_data(self, new_config_data: Mapping[str, Any]) -> None:
        """Add keys to the stored trial config (and this object's), in one transaction.

        For what a runner learns about a trial after it was created. Values
        must be JSON-serialisable; stored trial config is never rewritten.

        Raises:
            InvalidValueError: Not a mapping, a value that is not JSON-serialisable, or a key the trial
                config already has (a ValueError); nothing is written.
        """
        if not isinstance(new_config_data, Mapping):
            raise InvalidValueError(f"trial {self}: new config data must be a mapping, got {new_config_data!r}")
        rows = named_values_table(new_config_data, f"trial {self} config", allow_json=True)
        with self._engine.transaction():
            self._stored_status()  # an unknown trial: UnknownObjectError
            stored = self._engine.fetch_table(self._sql.trial_param_list, experiment_id=self._experiment_id,
                                              trial_ids=[self._trial_id])
            existing = sorted(set(stored.column("name").to_pylist()) & set(new_config_data))
            if existing:
                raise InvalidValueError(f"trial {self}: config already has {existing}; stored config is not changed")
            if rows.num_rows:
                self._engine.insert_rows(self._sql.trial_param_insert, rows,
                                         experiment_id=self._experiment_id, trial_id=self._trial_id)
        self._config.update(new_config_data)

    def update(self, status: Status, timestamp: datetime, metrics: Mapping[str, Any] | None = None
               ) -> Mapping[str, Any] | None:
        """Move the trial to ``status`` at ``timestamp``; a final status stores ``metrics``.

        Statuses only move forward: PENDING, READY, RUNNING, then one final
        status (SUCCEEDED, CANCELED, FAILED, TIMED_OUT). The status, its
        history entry and the metrics are one transaction; the current
        status again is a no-op.

        Args:
            status: A Status, its name, or any enum member named like one (mlos_bench's Status).
            timestamp: When the change happened (naive means local time), kept in the history.
            metrics: The results, stored with a final status only.

        Returns:
            ``metrics``, as given (mlos_bench's signature).

        Raises:
            TrialEndedError: The trial has ended (a RuntimeError); nothing is changed.
            IllegalTransitionError: A move backwards (a ValueError); nothing is changed.
            InvalidValueError: An unknown status, a bad timestamp, metrics with a non-final status or
                holding values that cannot be stored.
            ConcurrentChangeError: Another writer changed the trial's status meanwhile; nothing is stored.

        Warns:
            MissingObjectiveWarning: SUCCEEDED without every objective among the metrics (stored anyway).
        """
        status = Status.parse(status, f"trial {self}")
        ts = to_utc(timestamp, f"trial {self} timestamp")
        results = self._results_rows(status, metrics)
        if status == Status.SUCCEEDED:
            self._warn_missing_targets(metrics)  # before writing, so -W error leaves nothing stored
        with self._engine.transaction():
            change = self._change_status(status, ts, ends_trial=True)
            if change == Change.END and results is not None and results.num_rows:
                self._engine.insert_rows(self._sql.trial_result_insert, results,
                                         experiment_id=self._experiment_id, trial_id=self._trial_id)
        if change in (Change.ADVANCE, Change.END) and not self._engine.in_transaction:
            self._status_hint = status  # committed: the next change tries the move from here
        return metrics

    def update_telemetry(self, status: Status, timestamp: datetime, metrics: TelemetryInput) -> None:
        """Append telemetry points and record ``status``, in one transaction.

        ``metrics`` is a list of ``(ts, metric, value)`` tuples or Arrow data
        with columns ts, metric, value. A point already stored (same ts and
        metric) is kept as it was. A final status is recorded in the history
        but does not end the trial; the trial's current status is a no-op.

        Raises:
            TrialEndedError: The trial has ended (a RuntimeError); nothing is stored.
            IllegalTransitionError: ``status`` is a move backwards; nothing is stored.
            InvalidValueError: Points that cannot be stored (other columns, mixed naive and aware
                timestamps, timestamps outside years 1 to 9999, decimals); nothing is stored.
        """
        status = Status.parse(status, f"trial {self}")
        ts = to_utc(timestamp, f"trial {self} timestamp")
        rows = trial_points(metrics, f"trial {self}")
        with self._engine.transaction():
            if status == self._status_hint and not status.is_completed() and append_if_state(
                    self._engine, self._experiment_id, self._trial_id, rows, status.name):
                return  # the usual call of a running harness: one statement, no read (an ended trial refuses)
            state = self._engine.fetch_one(self._sql.trial_telemetry_state,
                                           experiment_id=self._experiment_id, trial_id=self._trial_id)
            if state is None:
                raise UnknownObjectError(f"trial {self} is not stored")
            change = self._change_status(status, ts, ends_trial=False, current=Status[state.status])
            if rows.num_rows:
                store_points(self._engine, self._experiment_id, self._trial_id, rows, last_stored_ts=state.last_ts)
        if not self._engine.in_transaction:
            self._status_hint = status if change == Change.ADVANCE else Status[state.status]

    def status_history(self) -> list[tuple[datetime, Status]]:
        """Every status the trial went through, in the order the changes were made.

        Each with the timestamp its caller gave (PENDING: when the trial was
        stored). Callers' clocks may disagree, so this is not sorted by time.
        """
        return status_history_from_table(read_status_history(self._engine, self._experiment_id, self._trial_id))

    # ------------------------------------------------------------ internals

    def _stored_status(self) -> Status:
        row = self._engine.fetch_one(self._sql.trial_get_state,
                                     experiment_id=self._experiment_id, trial_id=self._trial_id)
        if row is None:
            raise UnknownObjectError(f"trial {self} is not stored")
        return Status[row.status]

    def _change_status(self, status: Status, ts: datetime, *, ends_trial: bool,
                       current: Status | None = None) -> Change:
        """Apply the change decided from the stored status (``current`` if just read); call inside a transaction."""
        if current is None:
            hinted = self._hinted_change(status, ts, ends_trial=ends_trial)
            if hinted is not None:
                return hinted
            current = self._stored_status()
        change = decide_change(repr(self), current, status, ends_trial=ends_trial)
        if change in (Change.ADVANCE, Change.END) and not self._move(current, status, ts, change):
            raise ConcurrentChangeError(
                f"trial {self} changed status while {status.name} was being applied; nothing was stored"
            )
        if change != Change.NOOP:
            self._record(change, status, ts)
        return change

    def _hinted_change(self, status: Status, ts: datetime, *, ends_trial: bool) -> Change | None:
        """The move from the hinted status if the store still holds it, applied; else None (read instead)."""
        hint, self._status_hint = self._status_hint, None  # cleared until this transaction commits
        if hint is None:
            return None
        try:
            change = decide_change(repr(self), hint, status, ends_trial=ends_trial)
        except StoreError:
            return None
        if change not in (Change.ADVANCE, Change.END) or not self._move(hint, status, ts, change):
            return None
        self._record(change, status, ts)
        return change

    def _record(self, change: Change, status: Status, ts: datetime) -> None:
        """Append the change to the history.

        Statuses only advance, so a trial advancing to a status never held
        it: that entry cannot be there yet and is appended unchecked. A
        final status may already be recorded (by ``update_telemetry``), so
        ending and recording skip an entry already stored.
        """
        query = self._sql.trial_status_append if change == Change.ADVANCE else self._sql.trial_status_record
        self._engine.execute(query, experiment_id=self._experiment_id, trial_id=self._trial_id,
                             ts=ts, status=status.name)

    def _move(self, current: Status, status: Status, ts: datetime, change: Change) -> bool:
        """The conditional UPDATE: True if the trial still had ``current`` and now has ``status``."""
        query = self._sql.trial_advance if change == Change.ADVANCE else self._sql.trial_end
        moved: int = self._engine.count(query, experiment_id=self._experiment_id, trial_id=self._trial_id,
                                        from_status=current.name, to_status=status.name, ts=ts)
        return moved == 1

    def _results_rows(self, status: Status, metrics: Mapping[str, Any] | None) -> pa.Table | None:
        if metrics is None:
            return None
        if not isinstance(metrics, Mapping):
            raise InvalidValueError(f"trial {self}: metrics must be a mapping of name to value, got {metrics!r}")
        if metrics and not status.is_completed():
            raise InvalidValueError(
                f"trial {self}: metrics are stored with a final status, not with {status.name}"
            )
        return named_values_table(metrics, f"trial {self} metric", allow_json=True)

    def _warn_missing_targets(self, metrics: Mapping[str, Any] | None) -> None:
        missing = sorted(set(self._opt_targets) - set(metrics or {}))
        if missing:
            warnings.warn(f"trial {self} SUCCEEDED without optimization targets {missing}; stored anyway",
                          MissingObjectiveWarning, stacklevel=3)
