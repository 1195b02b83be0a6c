"""What a store holds, at a glance: the facts ``mlos-store info`` prints.

Counts come from one named query (``sql/queries/overview.sql``) and the
schema version from the store's own migration record, read in one snapshot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa

from .engine import Engine
from .errors import QueryError


@dataclass(frozen=True)
class StoreOverview:
    """A store's schema version and size, and per experiment its trials by status and telemetry points."""

    path: str
    schema_version: int
    #: Bytes of the store file (its write-ahead log aside); None for an in-memory store.
    file_size: int | None
    #: experiment_id, trials, pending, ready, running, succeeded, canceled, failed, timed_out,
    #: telemetry_points; one row per experiment, by experiment id.
    experiments: pa.Table


def store_overview(engine: Engine) -> StoreOverview:
    """The overview of the store ``engine`` holds."""
    with engine.transaction():  # one snapshot: the counts and the version agree
        row = engine.fetch_one(engine.catalog.store_format_version)
        counts = engine.fetch_table(engine.catalog.overview_experiment_counts)
    if row is None or row.version is None:
        raise QueryError(f"store {engine.path!r} records no schema version")
    size = None if engine.in_memory else os.path.getsize(engine.file)
    return StoreOverview(engine.path, int(row.version), size, counts)
