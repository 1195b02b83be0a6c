"""mlos_store: an embedded store for benchmark and autotuning experiments.

DuckDB holds the data, hand-written SQL in ``mlos_store/sql`` (the repo's
``sql/``) is every statement, and every read is an Arrow table first.
"""

from .analysis import ExperimentData, TrialData, TunableConfigData, TunableConfigTrialGroupData
from .errors import (
    CheckpointWarning,
    CompactionWarning,
    ConcurrentChangeError,
    ExperimentStateError,
    IllegalTransitionError,
    InvalidValueError,
    MissingDependencyError,
    NotAStoreError,
    ObjectiveConflictError,
    QueryError,
    SchemaVersionError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TrialConflictError,
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
    "CheckpointWarning",
    "CompactionWarning",
    "ConcurrentChangeError",
    "Experiment",
    "ExperimentData",
    "ExperimentStateError",
    "IllegalTransitionError",
    "InvalidValueError",
    "MissingDependencyError",
    "MissingObjectiveWarning",
    "NotAStoreError",
    "ObjectiveConflictError",
    "QueryError",
    "SchemaVersionError",
    "Status",
    "Storage",
    "StoreBusyError",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "Trial",
    "TrialConflictError",
    "TrialData",
    "TrialEndedError",
    "TunableConfigData",
    "TunableConfigTrialGroupData",
    "TunableConflictError",
    "Tunables",
    "UnknownObjectError",
]
