"""mlos_store: an embedded store for benchmark and autotuning experiments.

DuckDB holds the data, hand-written SQL in ``mlos_store/sql`` (the repo's
``sql/``) is every statement, and every read is an Arrow table first.
"""

from .errors import (
    ConcurrentChangeError,
    ExperimentStateError,
    IllegalTransitionError,
    InvalidValueError,
    NotAStoreError,
    ObjectiveConflictError,
    QueryError,
    SchemaVersionError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TrialEndedError,
    TunableConflictError,
    UnknownObjectError,
)
from .experiment import Experiment
from .status import Status
from .storage import Storage
from .trial import MissingObjectiveWarning, Trial
from .tunables import Tunables

__all__ = [
    "ConcurrentChangeError",
    "Experiment",
    "ExperimentStateError",
    "IllegalTransitionError",
    "InvalidValueError",
    "MissingObjectiveWarning",
    "NotAStoreError",
    "ObjectiveConflictError",
    "QueryError",
    "SchemaVersionError",
    "Status",
    "Storage",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "Trial",
    "TrialEndedError",
    "TunableConflictError",
    "Tunables",
    "UnknownObjectError",
]
