"""Trial status, the one function that decides every status change, and the one read of a trial's history."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import pyarrow as pa

from .errors import IllegalTransitionError, TrialEndedError

if TYPE_CHECKING:
    from .engine import Engine


class Status(enum.Enum):
    """The life cycle of a trial, as in mlos_bench."""

    UNKNOWN = 0
    PENDING = 1
    READY = 2
    RUNNING = 3
    SUCCEEDED = 4
    CANCELED = 5
    FAILED = 6
    TIMED_OUT = 7

    def is_good(self) -> bool:
        return self in {Status.PENDING, Status.READY, Status.RUNNING, Status.SUCCEEDED}

    def is_completed(self) -> bool:
        return self in FINAL_STATUSES

    def is_pending(self) -> bool:
        return self == Status.PENDING

    def is_ready(self) -> bool:
        return self == Status.READY

    def is_running(self) -> bool:
        return self == Status.RUNNING

    def is_succeeded(self) -> bool:
        return self == Status.SUCCEEDED

    def is_failed(self) -> bool:
        return self == Status.FAILED

    def is_canceled(self) -> bool:
        return self == Status.CANCELED

    def is_timed_out(self) -> bool:
        return self == Status.TIMED_OUT

    @classmethod
    def parse(cls, value: Status | enum.Enum | str, what: str) -> Status:
        """A Status from itself, its name, or any enum member of a status's name; else refuse, naming ``what``.

        Any enum member counts, so mlos_bench's own ``Status.SUCCEEDED`` is
        this SUCCEEDED: the names are the contract, not the class.
        """
        if isinstance(value, Status):
            return value
        if isinstance(value, enum.Enum) and value.name in cls.__members__:
            return cls[value.name]
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise IllegalTransitionError(f"{what}: {value!r} is not a trial status (one of {', '.join(cls.__members__)})")


FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.CANCELED, Status.FAILED, Status.TIMED_OUT})
_ORDER = {Status.PENDING: 0, Status.READY: 1, Status.RUNNING: 2}


class Change(enum.Enum):
    """What a requested status does to a stored trial."""

    NOOP = "noop"  # the trial already has this status
    ADVANCE = "advance"  # a later non-final status: set it and the start time
    END = "end"  # a final status: set it, the end time and the results
    RECORD = "record"  # a final status sent with telemetry: history only


def decide_change(trial: str, current: Status, requested: Status, *, ends_trial: bool) -> Change:
    """Decide a status change, or raise naming the trial and both statuses.

    ``ends_trial`` is True for ``Trial.update`` and False for
    ``Trial.update_telemetry``, where a final status is only recorded. An
    ended trial accepts nothing more, telemetry included.
    """
    if current in FINAL_STATUSES:
        raise TrialEndedError(
            f"trial {trial} has already ended with status {current.name}; cannot "
            + (f"change it to {requested.name}" if ends_trial else f"add telemetry with status {requested.name}")
        )
    if requested == Status.UNKNOWN:
        raise IllegalTransitionError(f"trial {trial}: cannot set status UNKNOWN")
    if requested == current:
        return Change.NOOP
    if requested in FINAL_STATUSES:
        return Change.END if ends_trial else Change.RECORD
    if _ORDER[requested] < _ORDER[current]:
        raise IllegalTransitionError(
            f"trial {trial}: cannot move back from {current.name} to {requested.name}"
        )
    return Change.ADVANCE


def read_status_history(engine: Engine, experiment_id: str, trial_id: int) -> pa.Table:
    """Every status the trial went through (``ts``, ``status`` name), in the order the changes were made.

    The one read behind ``Trial.status_history`` (write side) and
    ``TrialData.status_history_table`` (analysis side); an unknown trial
    simply has no rows. Each ``ts`` is the timestamp its caller gave
    (PENDING: when the trial was stored); callers' clocks may disagree, so
    the rows are in the order of the changes, not sorted by time.
    """
    return engine.fetch_table(engine.catalog.trial_status_history, experiment_id=experiment_id, trial_id=trial_id)
