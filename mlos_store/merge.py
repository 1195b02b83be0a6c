"""Merging experiments: another experiment's completed trials warm-start this one.

``Experiment.merge`` records, after checking them, which experiments an
experiment merges; nothing is copied. A full ``load``/``load_table`` then
returns the experiment's own completed trials followed by those of every
merged experiment, read at that moment (so trials they gain later come in
on the next load), each with its own experiment id and trial id. A merged
trial's config holds this experiment's tunables only: a tunable the merged
experiment lacks, or a stored value that does not fit this experiment's
declared type, is this experiment's default, and the ``imputed`` column
names those tunables. Tunables this experiment does not know are dropped
(``MergeReport.dropped_tunables``). Merges are not transitive: only the
trials of the merged experiments themselves come in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from .convert import matched_rows
from .engine import Engine
from .errors import InvalidValueError, ObjectiveConflictError, TunableConflictError, UnknownObjectError
from .objectives import stored_objectives
from .values import experiment_id_list

#: Load-table column naming, for each row, the tunables whose value was imputed.
IMPUTED_COLUMN = "imputed"


@dataclass(frozen=True)
class MergeReport:
    """What merging one experiment means for the configs loaded from it."""

    experiment_id: str
    #: False when the experiment was already merged (merging it again changed nothing).
    newly_merged: bool
    #: Tunables the merged experiment declares and this one does not: dropped from its configs.
    dropped_tunables: tuple[str, ...]
    #: Tunables this experiment declares and the merged one does not: always this one's default.
    imputed_tunables: tuple[str, ...]


def merge_experiments(engine: Engine, experiment_id: str, opt_targets: Mapping[str, str],
                      merged_ids: Iterable[str]) -> list[MergeReport]:
    """Check every experiment to merge, then record them all, in one transaction.

    Refuses, before recording anything: a non-str or empty id, this
    experiment itself, an unknown experiment (UnknownObjectError), an
    objective whose direction differs from this one's (ObjectiveConflictError)
    and a tunable declared with a type that does not fit this one's
    (TunableConflictError).
    """
    ids = _checked_ids(experiment_id, merged_ids)
    with engine.transaction():
        already = set(engine.fetch_table(engine.catalog.merge_list, experiment_id=experiment_id)
                      .column("merged_experiment_id").to_pylist())
        reports = [_checked_merge(engine, experiment_id, opt_targets, other, other not in already)
                   for other in ids]
        if ids:
            engine.count(engine.catalog.merge_record, experiment_id=experiment_id, merged_experiment_ids=ids)
    return reports


def _checked_ids(experiment_id: str, merged_ids: Iterable[str]) -> list[str]:
    ids = experiment_id_list(merged_ids, f"experiment {experiment_id!r}: merge")
    if experiment_id in ids:
        raise InvalidValueError(f"experiment {experiment_id!r} cannot merge itself")
    return ids


def _checked_merge(engine: Engine, experiment_id: str, opt_targets: Mapping[str, str], other: str,
                   newly_merged: bool) -> MergeReport:
    sql = engine.catalog
    if engine.fetch_one(sql.experiment_get, experiment_id=other) is None:
        raise UnknownObjectError(f"experiment {experiment_id!r} cannot merge {other!r}: no such experiment")
    for target, direction in stored_objectives(engine, other).items():
        if target in opt_targets and opt_targets[target] != direction:
            raise ObjectiveConflictError(
                f"experiment {experiment_id!r} cannot merge {other!r}: objective {target!r} is "
                f"{opt_targets[target]!r} here and {direction!r} there; nothing was merged"
            )
    tunables = engine.fetch_table(sql.merge_tunable_comparison, experiment_id=experiment_id,
                                  merged_experiment_id=other).to_pylist()
    for t in tunables:
        if not t["fits"]:
            raise TunableConflictError(
                f"experiment {experiment_id!r} cannot merge {other!r}: tunable {t['name']!r} holds "
                f"{t['kind_here']} values here and {t['kind_there']} values there; nothing was merged"
            )
    return MergeReport(
        experiment_id=other,
        newly_merged=newly_merged,
        dropped_tunables=tuple(t["name"] for t in tunables if not t["declared_here"]),
        imputed_tunables=tuple(t["name"] for t in tunables if not t["declared_there"]),
    )


def add_merged_trials(engine: Engine, experiment_id: str, trials: pa.Table, values: pa.Table, *,
                      include_trials: bool) -> tuple[pa.Table, pa.Table]:
    """Own trial rows and long values (with ``row_pos``), followed by those of the merged experiments.

    Call inside the transaction that read ``trials`` and ``values`` (one
    snapshot). With ``include_trials`` False (an incremental load) no merged
    row is added. An experiment that merges others gets an ``imputed``
    column (list of tunable names, empty for its own trials) either way, so
    its table's shape does not depend on the watermark.
    """
    sql = engine.catalog
    if not engine.fetch_table(sql.merge_list, experiment_id=experiment_id).num_rows:
        return trials, values
    own_count = trials.num_rows
    imputed: list[list[str]] = [[] for _ in range(own_count)]
    if include_trials:
        merged = engine.fetch_table(sql.merged_trial_list, experiment_id=experiment_id)
        merged_values = matched_rows(merged, engine.fetch_table(sql.merged_trial_values, experiment_id=experiment_id),
                                     first_row=own_count)
        imputed.extend([] for _ in range(merged.num_rows))
        flagged = merged_values.filter(merged_values.column("imputed")).sort_by("name")
        for row_pos, name in zip(flagged.column("row_pos").to_pylist(), flagged.column("name").to_pylist()):
            imputed[row_pos].append(name)
        trials = pa.concat_tables([trials, merged.cast(trials.schema)])
        merged_values = merged_values.drop_columns(["imputed"]).cast(values.schema)
        values = pa.concat_tables([values, merged_values])
    trials = trials.append_column(IMPUTED_COLUMN, pa.array(imputed, pa.list_(pa.string())))
    return trials, values
