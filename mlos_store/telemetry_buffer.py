"""An opt-in telemetry buffer: points of many trials held in memory, stored by ``flush()``.

Each ``Trial.update_telemetry`` call is one durable transaction, and a
commit costs about a millisecond or more. A harness that can afford to lose
unflushed points in a crash can buffer instead: ``add`` only checks and
converts the points (refusing bad ones at once), and ``flush`` stores every
buffered trial in one transaction through the many-trials bulk path. Until
then the points are neither stored nor visible to reads.
"""

from __future__ import annotations

from types import TracebackType

import pyarrow as pa

from .engine import Engine
from .telemetry import TelemetryInput, store_many, telemetry_rows, with_trial_ids
from .values import checked_id


class TelemetryBuffer:
    """Telemetry of one experiment's trials, kept until ``flush()`` (or leaving ``with``) stores it."""

    def __init__(self, engine: Engine, experiment_id: str) -> None:
        self._engine = engine
        self._experiment_id = experiment_id
        self._parts: list[tuple[int, pa.Table]] = []

    def add(self, trial_id: int, points: TelemetryInput) -> None:
        """Buffer points of one trial (any form ``update_telemetry`` takes); bad points are refused now."""
        trial_id = checked_id(trial_id, "trial id")
        rows = telemetry_rows(points, f"experiment {self._experiment_id!r} trial {trial_id}")
        if rows.num_rows:
            self._parts.append((trial_id, rows))

    @property
    def pending(self) -> int:
        """How many buffered points ``flush()`` would store."""
        return sum(rows.num_rows for _, rows in self._parts)

    def flush(self) -> None:
        """Store every buffered point in one transaction, then empty the buffer.

        An unknown trial id refuses the whole flush (UnknownObjectError) and
        keeps the buffer, so nothing is lost or half stored.
        """
        if self._parts:
            store_many(self._engine, self._experiment_id, with_trial_ids(self._parts))
            self._parts = []

    def __enter__(self) -> TelemetryBuffer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.flush()
