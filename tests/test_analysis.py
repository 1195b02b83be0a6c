"""The analysis side: storage.experiments, ExperimentData and the objects reached from it."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import FAR_FUTURE, OPT_TARGETS, T0, TUNABLE_DEFAULTS

from mlos_store import (
    Experiment,
    ExperimentData,
    InvalidValueError,
    MissingDependencyError,
    Status,
    Storage,
    StoreError,
    TrialData,
    TunableConfigData,
    TunableConfigTrialGroupData,
    UnknownObjectError,
)
from mlos_store.values import ENCODING_KEY, NULL_KEY

BASE_COLUMNS = ["trial_id", "ts_start", "ts_end", "tunable_config_id", "tunable_config_trial_group_id",
                "status", "trial_runner_id"]
CONFIG_COLUMNS = ["config.bool_knob", "config.cat_knob", "config.float_knob", "config.int_knob"]
RESULT_COLUMNS = ["result.latency", "result.note", "result.score"]


@dataclass
class Fixture:
    """The store and what the fixture experiment holds, for the expectations below."""

    storage: Storage
    experiment: Experiment
    config_ids: dict[str, int]  # "defaults", "int20", "cat_b", "float15" -> config id

    @property
    def data(self) -> ExperimentData:
        return self.storage.experiments["exp"]


def _run(exp: Experiment, tunables: dict[str, Any], status: Status, metrics: dict[str, Any] | None = None,
         config: dict[str, Any] | None = None, ts_start: Any = None) -> int:
    trial = exp.new_trial(tunables, ts_start=ts_start, config=config)
    if status != Status.PENDING:
        trial.update(Status.RUNNING, T0 + timedelta(seconds=trial.trial_id))
    if status.is_completed():
        trial.update(status, T0 + timedelta(seconds=trial.trial_id, milliseconds=500), metrics)
    return trial.trial_id


@pytest.fixture
def mixed(storage: Storage) -> Iterator[Fixture]:
    """Seven trials: every status but READY/CANCELED, repeated configs, missing and non-numeric metrics.

    trial  tunables         status     score  latency  note
    1      defaults         SUCCEEDED  3      10       "warm"
    2      int_knob=20      SUCCEEDED  2.5    12       7
    3      defaults         FAILED     -      -        -
    4      int_knob=20      SUCCEEDED  NaN    11       -
    5      cat_knob="b"     RUNNING    -      -        -
    6      int_knob=20      SUCCEEDED  2.5    9        None
    7      float_knob=1.5   PENDING (scheduled in the future)
    """
    exp = storage.experiment(experiment_id="exp", trial_id=1, root_env_config="env.jsonc",
                             description="mixed", tunables=dict(TUNABLE_DEFAULTS), opt_targets=dict(OPT_TARGETS))
    with exp:
        _run(exp, {}, Status.SUCCEEDED, {"score": 3, "latency": 10, "note": "warm"}, config={"repeat": 1})
        _run(exp, {"int_knob": 20}, Status.SUCCEEDED, {"score": 2.5, "latency": 12, "note": 7})
        _run(exp, {}, Status.FAILED, config={"repeat": 2, "tags": ["a", "b"]})
        _run(exp, {"int_knob": 20}, Status.SUCCEEDED, {"score": math.nan, "latency": 11})
        _run(exp, {"cat_knob": "b"}, Status.RUNNING)
        _run(exp, {"int_knob": 20}, Status.SUCCEEDED, {"score": 2.5, "latency": 9, "note": None})
        _run(exp, {"float_knob": 1.5}, Status.PENDING, ts_start=FAR_FUTURE)
        trials = {t.trial_id: t for t in exp.pending_trials(FAR_FUTURE, running=True)}
        config_ids = {"defaults": exp.load_table().column("tunable_config_id")[0].as_py(),
                      "int20": exp.load_table().column("tunable_config_id")[1].as_py(),
                      "cat_b": trials[5].tunable_config_id, "float15": trials[7].tunable_config_id}
        yield Fixture(storage, exp, config_ids)


def _other_experiment(storage: Storage, experiment_id: str, **kwargs: Any) -> Experiment:
    return storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config=kwargs.pop("env", "e"),
                              description=kwargs.pop("description", "other"),
                              tunables=kwargs.pop("tunables", {"x": 0}),
                              opt_targets=kwargs.pop("opt_targets", {"score": "min"}))


# ---------------------------------------------------------------- storage.experiments


def test_experiments_are_every_stored_experiment_by_id(storage: Storage) -> None:
    for experiment_id in ("zeta", "alpha", "mid"):
        with _other_experiment(storage, experiment_id, description=f"about {experiment_id}"):
            pass
    found = storage.experiments
    assert list(found) == ["alpha", "mid", "zeta"]
    assert all(isinstance(data, ExperimentData) for data in found.values())
    assert [data.experiment_id for data in found.values()] == ["alpha", "mid", "zeta"]
    assert found["mid"].description == "about mid"


def test_experiments_of_an_empty_store_is_empty(storage: Storage) -> None:
    assert storage.experiments == {}


def test_experiments_read_no_trial_data(mixed: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = mixed.storage.engine
    names: list[str] = []
    original = engine.fetch_table

    def spy(query: Any, **params: Any) -> pa.Table:
        names.append(query.name)
        return original(query, **params)

    monkeypatch.setattr(engine, "fetch_table", spy)
    data = mixed.storage.experiments["exp"]
    assert names == ["experiment_list"]
    assert data.experiment_id == "exp"


def test_experiment_record(mixed: Fixture) -> None:
    data = mixed.data
    assert data.experiment_id == "exp"
    assert data.description == "mixed"
    assert data.root_env_config == ("env.jsonc", None, None)  # mlos_bench's (config, git repo, git commit)
    assert data.git_repo is None and data.git_commit is None


def test_objectives_keep_the_declared_order(storage: Storage) -> None:
    with _other_experiment(storage, "exp", opt_targets={"tput": "max", "cost": "min", "lat": "min"}):
        pass
    assert list(storage.experiments["exp"].objectives.items()) == [("tput", "max"), ("cost", "min"), ("lat", "min")]


# ---------------------------------------------------------------- trials


def test_trials_are_every_trial_by_id_with_their_state(mixed: Fixture) -> None:
    trials = mixed.data.trials
    assert list(trials) == [1, 2, 3, 4, 5, 6, 7]
    assert all(isinstance(t, TrialData) and t.experiment_id == "exp" for t in trials.values())
    assert [t.trial_id for t in trials.values()] == [1, 2, 3, 4, 5, 6, 7]
    assert [t.status for t in trials.values()] == [
        Status.SUCCEEDED, Status.SUCCEEDED, Status.FAILED, Status.SUCCEEDED, Status.RUNNING, Status.SUCCEEDED,
        Status.PENDING]
    ids = mixed.config_ids
    assert [t.tunable_config_id for t in trials.values()] == [
        ids["defaults"], ids["int20"], ids["defaults"], ids["int20"], ids["cat_b"], ids["int20"], ids["float15"]]
    assert [t.tunable_config_trial_group_id for t in trials.values()] == [1, 2, 1, 2, 5, 2, 7]


def test_trial_times(mixed: Fixture) -> None:
    trials = mixed.data.trials
    assert trials[2].ts_start == T0 + timedelta(seconds=2)
    assert trials[2].ts_end == T0 + timedelta(seconds=2, milliseconds=500)
    assert trials[5].ts_start == T0 + timedelta(seconds=5) and trials[5].ts_end is None
    assert trials[7].ts_start == FAR_FUTURE and trials[7].ts_end is None
    assert trials[2].ts_start.utcoffset() == timedelta(0)


def test_trial_results(mixed: Fixture) -> None:
    trials = mixed.data.trials
    assert trials[1].results_dict == {"latency": 10, "note": "warm", "score": 3}
    assert type(trials[1].results_dict["score"]) is int
    assert trials[6].results_dict == {"latency": 9, "note": None, "score": 2.5}
    assert math.isnan(trials[4].results_dict["score"])
    assert trials[3].results_dict == {} and trials[7].results_dict == {}
    table = trials[1].results_table
    assert table.column_names[:2] == ["metric", "value"]
    assert table.column("metric").to_pylist() == ["latency", "note", "score"]  # by metric name
    assert table.column("value").to_pylist() == [10.0, None, 3.0]  # numeric whenever the value is a number
    assert trials[7].results_table.num_rows == 0


def test_trial_results_of_one_type_are_one_typed_column(mixed: Fixture) -> None:
    table = mixed.data.trials[4].results_table
    assert table.column_names == ["metric", "value"]
    assert table.schema.field("value").type == pa.float64()


def test_trial_metadata_is_the_trial_config(mixed: Fixture) -> None:
    trials = mixed.data.trials
    assert trials[1].metadata_dict == {"repeat": 1}
    assert trials[3].metadata_dict == {"repeat": 2, "tags": ["a", "b"]}
    assert list(trials[3].metadata_dict) == ["repeat", "tags"]
    assert trials[2].metadata_dict == {}
    assert trials[3].metadata_table.column("parameter").to_pylist() == ["repeat", "tags"]


def test_trial_tunable_config_and_group(mixed: Fixture) -> None:
    trial = mixed.data.trials[4]
    assert isinstance(trial.tunable_config, TunableConfigData)
    assert trial.tunable_config.tunable_config_id == mixed.config_ids["int20"]
    assert trial.tunable_config.config_dict == {**TUNABLE_DEFAULTS, "int_knob": 20}
    group = trial.tunable_config_trial_group
    assert isinstance(group, TunableConfigTrialGroupData)
    assert group.tunable_config_trial_group_id == 2
    assert group.tunable_config_id == mixed.config_ids["int20"]
    assert list(group.trials) == [2, 4, 6]


def test_trial_telemetry_delegates_to_the_shared_read(mixed: Fixture) -> None:
    exp = mixed.experiment
    trial = next(t for t in exp.pending_trials(FAR_FUTURE, running=True) if t.trial_id == 5)
    points = [(T0 + timedelta(seconds=s), m, float(s)) for s in (2, 1) for m in ("mem", "cpu")]
    trial.update_telemetry(Status.RUNNING, T0 + timedelta(seconds=6), points + [(T0, "state", "warm")])
    data = mixed.data
    table = data.trials[5].telemetry_table()
    assert table.equals(exp.telemetry_table(5))
    assert table.column("metric").to_pylist() == ["state", "cpu", "mem", "cpu", "mem"]
    only_cpu = data.trials[5].telemetry_table(metrics="cpu", start=T0 + timedelta(seconds=2))
    assert only_cpu.equals(exp.telemetry_table(5, metrics="cpu", start=T0 + timedelta(seconds=2)))
    assert only_cpu.num_rows == 1
    assert data.telemetry_table().equals(exp.telemetry_table())
    assert data.telemetry_table([5], metrics=["mem"]).equals(exp.telemetry_table([5], metrics=["mem"]))
    assert data.trials[1].telemetry_table().num_rows == 0


def test_the_analysis_side_offers_every_telemetry_read_of_a_running_experiment(mixed: Fixture, tmp_path: Path) -> None:
    exp = mixed.experiment
    trial = next(t for t in exp.pending_trials(FAR_FUTURE, running=True) if t.trial_id == 5)
    trial.update_telemetry(Status.RUNNING, T0 + timedelta(seconds=9),
                           [(T0 + timedelta(seconds=s), "cpu", float(s)) for s in range(8)])
    data = mixed.data
    assert pa.Table.from_batches(data.telemetry_reader(batch_size=3)).equals(exp.telemetry_table())
    assert data.telemetry_summary().equals(exp.telemetry_summary())
    assert data.telemetry_summary().column("count").to_pylist() == [8]
    halves = data.telemetry_downsample(timedelta(seconds=4), 5, metrics="cpu")
    assert halves.equals(exp.telemetry_downsample(timedelta(seconds=4), 5, metrics="cpu"))
    assert data.telemetry_by_config("cpu").equals(exp.telemetry_by_config("cpu"))
    data.export_parquet(tmp_path / "dataset")
    with Storage() as copy:
        assert copy.import_parquet(tmp_path / "dataset") == ["exp"]
        assert copy.experiments["exp"].telemetry_table().equals(exp.telemetry_table())


def test_trials_see_a_running_experiment_as_it_goes(mixed: Fixture) -> None:
    data = mixed.data
    assert len(data.trials) == 7
    _run(mixed.experiment, {}, Status.SUCCEEDED, {"score": 1.0})
    assert list(data.trials)[-1] == 8
    assert data.results_table.num_rows == 8


def test_one_trial_read_alone_is_that_trial_of_trials(mixed: Fixture) -> None:
    trials = mixed.data.trials
    for trial_id, expected in trials.items():
        alone = mixed.data.trial(trial_id)
        assert alone == expected
        assert (alone.status, alone.ts_start, alone.ts_end, alone.tunable_config_id,
                alone.tunable_config_trial_group_id, alone.trial_runner_id) == (
            expected.status, expected.ts_start, expected.ts_end, expected.tunable_config_id,
            expected.tunable_config_trial_group_id, expected.trial_runner_id)
    with pytest.raises(UnknownObjectError, match=r"experiment 'exp' has no trial 99"):
        mixed.data.trial(99)
    with pytest.raises(InvalidValueError, match=r"trial id must be an int, got str '1'"):
        mixed.data.trial("1")  # type: ignore[arg-type]


def test_trial_status_history_lists_each_change_in_order(mixed: Fixture) -> None:
    trials = mixed.data.trials
    history = trials[1].status_history()
    assert [status for _, status in history] == [Status.PENDING, Status.RUNNING, Status.SUCCEEDED]
    assert [ts for ts, _ in history][1:] == [T0 + timedelta(seconds=1), T0 + timedelta(seconds=1, milliseconds=500)]
    assert all(ts.utcoffset() == timedelta(0) for ts, _ in history)
    assert [status for _, status in trials[7].status_history()] == [Status.PENDING]


def test_trial_status_history_is_what_the_write_side_gives(mixed: Fixture) -> None:
    for trial_id in (1, 3, 5, 7):
        written = mixed.experiment.get_trial_by_id(trial_id)
        assert written is not None
        assert mixed.data.trials[trial_id].status_history() == written.status_history()


def test_trial_status_history_table_is_arrow_with_status_names(mixed: Fixture) -> None:
    table = mixed.data.trials[3].status_history_table
    assert table.column_names == ["ts", "status"]
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("status").to_pylist() == ["PENDING", "RUNNING", "FAILED"]


def test_trial_status_history_is_read_when_asked_not_with_the_snapshot(mixed: Fixture) -> None:
    snapshot = mixed.data.trials[5]
    running = mixed.experiment.get_trial_by_id(5)
    assert running is not None
    running.update(Status.SUCCEEDED, T0 + timedelta(seconds=30), {"score": 1.0})
    assert snapshot.status == Status.RUNNING  # the snapshot
    assert snapshot.status_history()[-1] == (T0 + timedelta(seconds=30), Status.SUCCEEDED)


# ---------------------------------------------------------------- merges


def test_an_experiment_without_merges_has_none(mixed: Fixture) -> None:
    data = mixed.data
    assert data.merges == []
    table = data.merges_table
    assert (table.num_rows, table.column_names) == (0, ["merged_experiment_id", "ts_merged"])
    assert table.schema.field("ts_merged").type == pa.timestamp("us", tz="UTC")


def test_merges_list_every_merged_experiment_by_id_with_when_it_was_first_merged(storage: Storage) -> None:
    for experiment_id in ("zeta", "alpha", "mid"):
        with _other_experiment(storage, experiment_id):
            pass
    before = datetime.now(UTC)
    with _other_experiment(storage, "main") as exp:
        exp.merge(["zeta", "alpha"])
        first = dict(storage.experiments["main"].merges)
        exp.merge(["alpha", "mid"])  # alpha again: kept as first merged
    after = datetime.now(UTC)
    merges = storage.experiments["main"].merges
    assert [merged for merged, _ in merges] == ["alpha", "mid", "zeta"]
    assert all(before <= ts <= after and ts.utcoffset() == timedelta(0) for _, ts in merges)
    assert dict(merges)["alpha"] == first["alpha"] and dict(merges)["zeta"] == first["zeta"]
    table = storage.experiments["main"].merges_table
    assert table.column("merged_experiment_id").to_pylist() == ["alpha", "mid", "zeta"]
    assert table.column("ts_merged").to_pylist() == [ts for _, ts in merges]
    assert storage.experiments["alpha"].merges == []  # a merge is recorded on the merging experiment only


# ---------------------------------------------------------------- configs and groups


def test_tunable_configs_are_the_configs_used_by_config_id(mixed: Fixture, storage: Storage) -> None:
    with _other_experiment(storage, "other", tunables={"x": 0}) as other:
        other.new_trial({"x": 5})  # a config of another experiment only
    configs = mixed.data.tunable_configs
    ids = mixed.config_ids
    assert list(configs) == sorted([ids["defaults"], ids["int20"], ids["cat_b"], ids["float15"]])
    assert all(configs[i].tunable_config_id == i for i in configs)
    assert configs[ids["cat_b"]].config_dict == {**TUNABLE_DEFAULTS, "cat_knob": "b"}
    assert list(configs[ids["cat_b"]].config_dict) == sorted(TUNABLE_DEFAULTS)
    table = configs[ids["float15"]].config_table
    assert table.column("parameter").to_pylist() == sorted(TUNABLE_DEFAULTS)


def test_config_table_keeps_each_value_exactly(mixed: Fixture) -> None:
    table = mixed.data.tunable_configs[mixed.config_ids["defaults"]].config_table
    assert table.column_names == ["parameter", "value", "value_json"]  # bool, float, int and str values
    assert table.column("value").to_pylist() == [0.0, None, 0.5, 10.0]
    config = mixed.data.tunable_configs[mixed.config_ids["defaults"]].config_dict
    assert config == TUNABLE_DEFAULTS
    assert config["bool_knob"] is False and type(config["int_knob"]) is int


def test_trial_groups_by_config_id(mixed: Fixture) -> None:
    """Keyed by config id as in mlos_bench; each group's own id is its smallest trial id."""
    groups = mixed.data.tunable_config_trial_groups
    ids = mixed.config_ids
    assert list(groups) == sorted(ids.values())
    assert {config_id: g.tunable_config_trial_group_id for config_id, g in groups.items()} == {
        ids["defaults"]: 1, ids["int20"]: 2, ids["cat_b"]: 5, ids["float15"]: 7}
    assert all(g.tunable_config_id == config_id for config_id, g in groups.items())
    assert all(g.experiment_id == "exp" for g in groups.values())
    assert list(groups[ids["defaults"]].trials) == [1, 3]
    assert groups[ids["int20"]].tunable_config.config_dict["int_knob"] == 20


def test_trial_group_results_are_its_trials_rows(mixed: Fixture) -> None:
    groups = mixed.data.tunable_config_trial_groups
    table = groups[mixed.config_ids["int20"]].results_table
    assert table.column("trial_id").to_pylist() == [2, 4, 6]
    assert table.column("tunable_config_trial_group_id").to_pylist() == [2, 2, 2]
    assert table.column("result.latency").to_pylist() == [12, 11, 9]
    assert groups[mixed.config_ids["float15"]].results_table.column_names == BASE_COLUMNS + CONFIG_COLUMNS


def test_group_id_is_the_smallest_trial_id_of_the_experiment_with_that_config(storage: Storage) -> None:
    """Two experiments sharing a config each have their own group."""
    with _other_experiment(storage, "a") as a:
        a.new_trial({"x": 1})
        a.new_trial({"x": 1})
    with _other_experiment(storage, "b") as b:
        b.new_trial({"x": 2})
        b.new_trial({"x": 1})
    x1 = storage.experiments["a"].trials[1].tunable_config_id
    x2 = storage.experiments["b"].trials[1].tunable_config_id
    [a_group] = storage.experiments["a"].tunable_config_trial_groups.values()
    b_groups = storage.experiments["b"].tunable_config_trial_groups
    assert a_group.tunable_config_id == x1 and a_group.tunable_config_trial_group_id == 1
    assert b_groups[x2].tunable_config_trial_group_id == 1 and b_groups[x1].tunable_config_trial_group_id == 2
    assert list(b_groups[x1].trials) == [2]


def test_default_config_is_the_first_trials_when_it_used_the_defaults(mixed: Fixture) -> None:
    assert mixed.data.default_tunable_config_id == mixed.config_ids["defaults"]


def test_no_default_config_when_the_first_trial_changed_a_tunable(storage: Storage) -> None:
    with _other_experiment(storage, "exp", tunables={"x": 0, "y": 1.0}) as exp:
        exp.new_trial({"x": 1})
        exp.new_trial({})  # the defaults, but not first
    assert storage.experiments["exp"].default_tunable_config_id is None


def test_no_default_config_without_trials(storage: Storage) -> None:
    with _other_experiment(storage, "exp"):
        pass
    assert storage.experiments["exp"].default_tunable_config_id is None


def test_default_config_tells_an_int_from_an_equal_float(storage: Storage) -> None:
    with _other_experiment(storage, "exp", tunables={"y": 1.0}) as exp:
        exp.new_trial({"y": 1})  # equal, but an int: another config
    assert storage.experiments["exp"].default_tunable_config_id is None


# ---------------------------------------------------------------- results_table


def test_results_table_columns_and_order(mixed: Fixture) -> None:
    table = mixed.data.results_table
    assert table.column_names == BASE_COLUMNS + CONFIG_COLUMNS + RESULT_COLUMNS
    assert table.column("trial_id").to_pylist() == [1, 2, 3, 4, 5, 6, 7]
    assert table.column("status").to_pylist() == ["SUCCEEDED", "SUCCEEDED", "FAILED", "SUCCEEDED", "RUNNING",
                                                  "SUCCEEDED", "PENDING"]
    assert table.column("tunable_config_trial_group_id").to_pylist() == [1, 2, 1, 2, 5, 2, 7]
    assert table.column("ts_end").to_pylist()[4:] == [None, T0 + timedelta(seconds=6, milliseconds=500), None]


def test_results_table_column_types(mixed: Fixture) -> None:
    schema = mixed.data.results_table.schema
    assert schema.field("trial_id").type == pa.int64()
    assert schema.field("ts_start").type == pa.timestamp("us", tz="UTC")
    assert schema.field("status").type == pa.string()
    assert schema.field("config.bool_knob").type == pa.bool_()
    assert schema.field("config.cat_knob").type == pa.string()
    assert schema.field("config.float_knob").type == pa.float64()
    assert schema.field("config.int_knob").type == pa.int64()
    assert schema.field("result.score").type == pa.float64()  # ints and floats
    assert schema.field("result.latency").type == pa.int64()  # ints only, absent in some trials
    note = schema.field("result.note")  # str, int and None: JSON text
    assert note.type == pa.string() and note.metadata[ENCODING_KEY] == b"json"
    assert schema.field("result.latency").metadata[NULL_KEY] == b"absent"


def test_results_table_values(mixed: Fixture) -> None:
    table = mixed.data.results_table
    assert table.column("config.int_knob").to_pylist() == [10, 20, 10, 20, 10, 20, 10]
    assert table.column("config.cat_knob").to_pylist() == ["a", "a", "a", "a", "b", "a", "a"]
    assert table.column("config.float_knob").to_pylist() == [0.5] * 6 + [1.5]
    assert table.column("result.latency").to_pylist() == [10, 12, None, 11, None, 9, None]
    score = table.column("result.score").to_pylist()
    assert score[:3] == [3.0, 2.5, None] and math.isnan(score[3]) and score[4:] == [None, 2.5, None]
    notes = table.column("result.note").to_pylist()
    assert [None if n is None else json.loads(n) for n in notes] == ["warm", 7, None, None, None, None, None]
    assert notes[5] == "null" and notes[3] is None  # a stored None is not an absent result


def test_results_table_reads_trial_runner_id_as_stored(mixed: Fixture) -> None:
    # No public writer on this branch's core: set the column as a runner assignment would.
    mixed.storage.engine._connection().execute(
        "UPDATE trial SET trial_runner_id = 3 WHERE experiment_id = 'exp' AND trial_id = 5")
    table = mixed.data.results_table
    assert table.schema.field("trial_runner_id").type == pa.int32()
    assert table.column("trial_runner_id").to_pylist() == [None, None, None, None, 3, None, None]
    assert mixed.data.trials[5].trial_runner_id == 3


def test_results_table_names_agree_with_load_table(mixed: Fixture) -> None:
    results = mixed.data.results_table
    loaded = mixed.experiment.load_table()
    prefixed = [c for c in results.column_names if c.startswith(("config.", "result."))]
    assert prefixed == [c for c in loaded.column_names if c.startswith(("config.", "result."))]
    completed = results.filter(pa.compute.is_in(results.column("trial_id"), value_set=loaded.column("trial_id")))
    for name in ("config.int_knob", "config.cat_knob", "result.latency", "result.score"):
        assert repr(completed.column(name).to_pylist()) == repr(loaded.column(name).to_pylist())  # NaN too
        assert completed.schema.field(name).type == loaded.schema.field(name).type


def test_results_table_shows_the_experiments_own_trials_only(mixed: Fixture, storage: Storage) -> None:
    with _other_experiment(storage, "other", tunables={"y": "s"}, opt_targets={"other_metric": "max"}) as other:
        other.new_trial({}).update(Status.SUCCEEDED, T0, {"other_metric": 1})
    table = mixed.data.results_table
    assert table.num_rows == 7
    assert "config.y" not in table.column_names and "result.other_metric" not in table.column_names
    assert storage.experiments["other"].results_table.column_names == BASE_COLUMNS + ["config.y",
                                                                                      "result.other_metric"]


def test_results_table_of_an_experiment_without_trials(storage: Storage) -> None:
    with _other_experiment(storage, "exp"):
        pass
    table = storage.experiments["exp"].results_table
    assert table.num_rows == 0 and table.column_names == BASE_COLUMNS


def _record_engine_calls(engine: Any, patch: pytest.MonkeyPatch, calls: list[str]) -> None:
    """Append the name of every engine method called from now on to ``calls``."""
    for method in ("fetch_table", "fetch_one", "fetch_value", "count", "execute", "ingest", "insert_rows", "stream"):
        original = getattr(engine, method)

        def recording(*args: Any, _original: Any = original, _method: str = method, **kwargs: Any) -> Any:
            calls.append(_method)
            return _original(*args, **kwargs)

        patch.setattr(engine, method, recording)


def test_results_table_takes_a_constant_number_of_queries(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = storage.engine
    with _other_experiment(storage, "exp", tunables={"x": 0, "s": "a"}) as exp:
        def queries_for(n: int) -> int:
            for i in range(n):
                _run(exp, {"x": i % 7, "s": f"s{i % 3}"}, Status.SUCCEEDED, {"score": float(i), "n": i})
            data = storage.experiments["exp"]
            expected_rows = exp.trial_id - 1
            calls: list[str] = []
            with monkeypatch.context() as patch:
                _record_engine_calls(engine, patch, calls)
                assert data.results_table.num_rows == expected_rows
            return len(calls)

        few = queries_for(3)
        many = queries_for(40)
    assert few == many == 2


# ---------------------------------------------------------------- best


def test_best_single_objective_keeps_ties_and_skips_nan(mixed: Fixture) -> None:
    best = mixed.data.best()
    assert best.column_names == mixed.data.results_table.column_names
    assert best.column("trial_id").to_pylist() == [2, 6]  # tied at 2.5; trial 4's NaN is not a score
    assert best.column("result.score").to_pylist() == [2.5, 2.5]


def test_best_by_max_and_by_another_metric(mixed: Fixture) -> None:
    assert mixed.data.best({"score": "max"}).column("trial_id").to_pylist() == [1]
    assert mixed.data.best({"latency": "max"}).column("trial_id").to_pylist() == [2]
    assert mixed.data.best({"latency": "min"}).column("trial_id").to_pylist() == [6]


def test_best_two_objectives_is_the_pareto_front(mixed: Fixture) -> None:
    assert mixed.data.best({"score": "min", "latency": "min"}).column("trial_id").to_pylist() == [6]
    assert mixed.data.best({"score": "min", "latency": "max"}).column("trial_id").to_pylist() == [2]
    front = mixed.data.best({"score": "max", "latency": "min"})
    assert front.column("trial_id").to_pylist() == [1, 6]  # best score first: 3 then 2.5 (6 beats 2 on latency)


def test_best_skips_non_numeric_and_failed_trials(mixed: Fixture) -> None:
    # note: "warm" (str), 7 (int), None: only trial 2's is a number; trial 3 FAILED.
    assert mixed.data.best({"note": "max"}).column("trial_id").to_pylist() == [2]


@pytest.mark.parametrize("objectives", [{"a": "min"}, {"a": "max", "b": "min"}, {"a": "min", "b": "min", "c": "max"}])
def test_best_never_returns_a_nan_score_even_when_nothing_beats_it(storage: Storage,
                                                                  objectives: dict[str, str]) -> None:
    with _other_experiment(storage, "exp", opt_targets=objectives) as exp:
        _run(exp, {}, Status.SUCCEEDED, {"a": math.nan, "b": -100, "c": 100})  # best on b and c
        _run(exp, {}, Status.SUCCEEDED, {"a": 1.0, "b": 1, "c": 1})
        _run(exp, {}, Status.SUCCEEDED, {"a": math.nan, "b": -100, "c": 100})
    assert storage.experiments["exp"].best().column("trial_id").to_pylist() == [2]


def test_best_of_no_candidates_is_empty_with_the_results_columns(mixed: Fixture) -> None:
    best = mixed.data.best({"unknown_metric": "min"})
    assert best.num_rows == 0 and best.column_names == mixed.data.results_table.column_names


def test_best_refuses_bad_objectives(mixed: Fixture, storage: Storage) -> None:
    with pytest.raises(InvalidValueError, match="objective 'score': 'lowest' is not 'min' or 'max'"):
        mixed.data.best({"score": "lowest"})
    with _other_experiment(storage, "no_targets", opt_targets={}):
        pass
    with pytest.raises(InvalidValueError, match=r"'no_targets': best\(\) needs objectives.*it has none"):
        storage.experiments["no_targets"].best()


def _brute_front(losses: dict[int, tuple[float, ...]]) -> list[int]:
    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and a != b

    front = [t for t, v in losses.items() if not any(dominates(u, v) for u in losses.values())]
    return sorted(front, key=lambda t: (losses[t], t))


def test_best_matches_a_brute_force_front_for_one_two_and_three_objectives() -> None:
    rng = random.Random(7)
    with Storage() as storage:
        with _other_experiment(storage, "exp", opt_targets={"a": "min", "b": "max", "c": "min"}) as exp:
            for _ in range(60):  # few distinct values, so ties and duplicate points are common
                metrics = {"a": rng.randint(0, 5), "b": rng.randint(0, 5) / 2, "c": rng.choice([1, 2, 2.0])}
                if rng.random() < 0.1:
                    metrics["a"] = math.nan
                _run(exp, {}, rng.choice([Status.SUCCEEDED] * 4 + [Status.FAILED]), metrics)
        data = storage.experiments["exp"]
        table = data.results_table
        rows = [r for r in table.to_pylist() if r["status"] == "SUCCEEDED" and not math.isnan(r["result.a"])]
        signs = {"a": 1, "b": -1, "c": 1}
        for objectives in (["a"], ["b"], ["a", "b"], ["b", "c"], ["a", "b", "c"]):
            losses = {r["trial_id"]: tuple(signs[m] * r[f"result.{m}"] for m in objectives) for r in rows}
            best = data.best({m: ("max" if signs[m] < 0 else "min") for m in objectives})
            assert best.column("trial_id").to_pylist() == _brute_front(losses), objectives


def test_best_with_three_objectives_agrees_with_two_when_the_third_is_constant(storage: Storage) -> None:
    with _other_experiment(storage, "exp", opt_targets={"a": "min", "b": "min"}) as exp:
        for a, b in [(1, 5), (2, 2), (5, 1), (3, 3), (2, 2), (1, 6)]:
            _run(exp, {}, Status.SUCCEEDED, {"a": a, "b": b, "const": 0})
    data = storage.experiments["exp"]
    two = data.best().column("trial_id").to_pylist()
    assert two == [1, 2, 5, 3]  # (1,5), then the duplicate (2,2) twice, then (5,1)
    assert data.best({"a": "min", "b": "min", "const": "max"}).column("trial_id").to_pylist() == two


# ---------------------------------------------------------------- pandas


def test_results_df_is_results_table_with_exact_values(mixed: Fixture) -> None:
    frame = mixed.data.results_df
    table = mixed.data.results_table
    assert list(frame.columns) == table.column_names
    assert frame["trial_id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert frame["result.note"].tolist() == ["warm", 7, None, None, None, None, None]
    assert frame["config.cat_knob"].tolist() == ["a", "a", "a", "a", "b", "a", "a"]
    assert str(frame["ts_start"].dt.tz) == "UTC"


def test_long_df_forms_hold_exact_values(mixed: Fixture) -> None:
    trial = mixed.data.trials[1]
    results = trial.results_df
    assert list(results.columns) == ["metric", "value"]
    assert results["value"].tolist() == [10, "warm", 3]
    assert trial.metadata_df["value"].tolist() == [1]
    config = trial.tunable_config.config_df
    assert config["value"].tolist() == [False, "a", 0.5, 10]
    groups = mixed.data.tunable_config_trial_groups
    assert groups[mixed.config_ids["int20"]].results_df["trial_id"].tolist() == [2, 4, 6]
    assert list(trial.telemetry_df.columns) == ["ts", "metric", "value"]  # mlos_bench's, unpacked as three


def test_df_without_pandas_is_a_clear_error(mixed: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what an interpreter without pandas sees
    with pytest.raises(MissingDependencyError, match=r"need pandas.*pip install 'mlos_store\[pandas\]'") as info:
        _ = mixed.data.results_df
    assert isinstance(info.value, ImportError) and isinstance(info.value, StoreError)
    assert mixed.data.results_table.num_rows == 7  # the Arrow form needs nothing more


def test_importing_mlos_store_never_imports_pandas_or_matplotlib() -> None:
    code = ("import sys\nimport mlos_store\nfrom mlos_store import analysis, plot\n"
            "print('pandas' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_the_store_and_its_analysis_side_work_without_pandas(tmp_path: Any) -> None:
    """Run where ``import pandas`` fails: every Arrow form works, a ``*_df`` says what is missing."""
    script = (
        "import sys\n"
        "class NoPandas:  # this interpreter has no pandas\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pandas':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, NoPandas())\n"
        "from datetime import datetime, timezone\n"
        "from mlos_store import MissingDependencyError, Status, Storage\n"
        f"with Storage({str(tmp_path / 'store.duckdb')!r}) as s:\n"
        "    e = s.experiment(experiment_id='e', trial_id=1, root_env_config='', description='',\n"
        "                     tunables={'x': 1}, opt_targets={'y': 'min'})\n"
        "    with e:\n"
        "        t = e.new_trial({'x': 2}, config={'k': [1]})\n"
        "        now = datetime.now(timezone.utc)\n"
        "        t.update_telemetry(Status.RUNNING, now, [(now, 'cpu', 1.5)])\n"
        "        t.update(Status.SUCCEEDED, now, {'y': 1.0, 'note': 'ok'})\n"
        "    d = s.experiments['e']\n"
        "    assert d.results_table.column('result.y').to_pylist() == [1.0]\n"
        "    assert d.best().column('trial_id').to_pylist() == [1]\n"
        "    assert d.telemetry_table().num_rows == 1 and d.default_tunable_config_id is None\n"
        "    trial = d.trials[1]\n"
        "    assert trial.results_dict == {'note': 'ok', 'y': 1.0} and trial.metadata_dict == {'k': [1]}\n"
        "    assert trial.tunable_config.config_dict == {'x': 2}\n"
        "    assert trial.tunable_config_trial_group.results_table.num_rows == 1\n"
        "    try:\n"
        "        d.results_df\n"
        "    except MissingDependencyError as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "pip install 'mlos_store[pandas]'" in out


# ---------------------------------------------------------------- git origin


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout with one commit holding ``conf/env.jsonc``."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "checkout"
    (repo / "conf").mkdir(parents=True)
    (repo / "conf" / "env.jsonc").write_text("{}\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "conf/env.jsonc")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "env")
    return repo


def _experiment_at(storage: Storage, experiment_id: str, root_env_config: str) -> ExperimentData:
    with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config=root_env_config,
                            description="", tunables={"x": 1}, opt_targets={"score": "min"}):
        pass
    return storage.experiments[experiment_id]


def test_git_origin_is_the_remote_and_commit_of_the_checkout_holding_the_config(
        storage: Storage, checkout: Path) -> None:
    _git(checkout, "remote", "add", "origin", "https://example.com/team/configs.git")
    data = _experiment_at(storage, "exp", str(checkout / "conf" / "env.jsonc"))
    assert data.git_repo == "https://example.com/team/configs.git"
    assert data.git_commit == _git(checkout, "rev-parse", "HEAD")
    assert data.root_env_config == (str(checkout / "conf" / "env.jsonc"), data.git_repo, data.git_commit)


def test_git_origin_without_a_remote_is_the_checkout_folder(storage: Storage, checkout: Path) -> None:
    data = _experiment_at(storage, "exp", str(checkout / "conf" / "env.jsonc"))
    assert data.git_repo == _git(checkout, "rev-parse", "--show-toplevel")
    assert data.git_commit is not None and len(data.git_commit) == 40


def test_git_origin_is_none_outside_a_checkout_or_for_a_missing_file(storage: Storage, tmp_path: Path,
                                                                     checkout: Path) -> None:
    loose = tmp_path / "loose.jsonc"
    loose.write_text("{}\n")
    assert _experiment_at(storage, "loose", str(loose)).git_commit is None
    missing = _experiment_at(storage, "missing", str(checkout / "conf" / "absent.jsonc"))
    assert (missing.git_repo, missing.git_commit) == (None, None)


def test_git_origin_is_recorded_once_when_the_experiment_is_created(storage: Storage, checkout: Path) -> None:
    config = str(checkout / "conf" / "env.jsonc")
    first = _experiment_at(storage, "exp", config).git_commit
    (checkout / "conf" / "env.jsonc").write_text('{"changed": true}\n')
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "change")
    assert _experiment_at(storage, "exp", config).git_commit == first
