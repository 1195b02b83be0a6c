"""An experiment's objectives: metric name -> "min" or "max", in the order declared.

Checked when given, stored once with the experiment (``objective_insert``)
and read back (``objective_list``) here only, for the write side and the
read side alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from .engine import Engine
from .errors import InvalidValueError
from .values import check_text

DIRECTIONS = ("min", "max")


def checked_objectives(experiment_id: str, opt_targets: Mapping[str, str]) -> dict[str, str]:
    """``opt_targets`` as a dict, refused unless it maps metric names to "min" or "max"."""
    if not isinstance(opt_targets, Mapping):
        raise InvalidValueError(f"experiment {experiment_id!r}: opt_targets must map metric names to 'min' or 'max'")
    for name, direction in opt_targets.items():
        if not isinstance(name, str) or not name or direction not in DIRECTIONS:
            raise InvalidValueError(
                f"experiment {experiment_id!r}: objective {name!r}: {direction!r} is not 'min' or 'max'"
            )
        check_text(name, f"experiment {experiment_id!r}: objective")
    return dict(opt_targets)


def objective_rows(objectives: Mapping[str, str]) -> pa.Table:
    """The rows ``objective_insert`` stores: each target, its direction and its position."""
    return pa.table({
        "optimization_target": pa.array(list(objectives), pa.string()),
        "optimization_direction": pa.array(list(objectives.values()), pa.string()),
        "ordinal": pa.array(range(len(objectives)), pa.int32()),
    })


def stored_objectives(engine: Engine, experiment_id: str) -> dict[str, str]:
    """The objectives stored for ``experiment_id``, in declared order (empty if it has none)."""
    table = engine.fetch_table(engine.catalog.objective_list, experiment_id=experiment_id)
    return dict(zip(table.column("optimization_target").to_pylist(),
                    table.column("optimization_direction").to_pylist()))
