"""Hostile text everywhere: quotes, SQL fragments, placeholders, escapes, unicode.

Every such string must be stored and returned exactly, refer to exactly the
object it names, and leave the store working (values reach DuckDB only as
bound parameters or Arrow data).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pyarrow as pa
import pytest
from conftest import T0

from mlos_store import Experiment, ObjectiveConflictError, Status, Storage

HOSTILE = [
    pytest.param("'", id="single-quote"),
    pytest.param('"', id="double-quote"),
    pytest.param("it''s \"\"quoted\"\"", id="doubled-quotes"),
    pytest.param("a; -- b", id="semicolon-comment"),
    pytest.param("/* c */", id="block-comment"),
    pytest.param("'; DROP TABLE trial; --", id="drop-trial"),
    pytest.param("\"; DROP TABLE experiment; --", id="drop-experiment"),
    pytest.param("x' OR '1'='1", id="or-true"),
    pytest.param("$experiment_id", id="named-placeholder"),
    pytest.param("$1 ? :name", id="other-placeholders"),
    pytest.param("back\\slash \\' \\n", id="backslashes"),
    pytest.param("line\nbreak\r\n\ttab", id="newlines"),
    pytest.param("%_%", id="like-wildcards"),
    pytest.param("NULL", id="NULL"),
    pytest.param("żółw 🐢 日本語 \u202e", id="unicode"),
    pytest.param(" padded ", id="spaces"),
]

LATER = T0 + timedelta(days=1)
SEC = timedelta(seconds=1)


def _store_bystander(storage: Storage) -> None:
    with storage.experiment(experiment_id="bystander", trial_id=1, root_env_config="env.jsonc",
                            description="innocent", tunables={"x": 1}, opt_targets={"score": "min"}) as exp:
        trial = exp.new_trial({"x": 2}, config={"k": "v"})
        trial.update_telemetry(Status.RUNNING, T0, [(T0, "cpu", 0.5)])
        trial.update(Status.SUCCEEDED, T0, {"score": 1.5})


def assert_bystander_intact(storage: Storage) -> None:
    """The plain experiment stored before any hostile text is unchanged and still usable."""
    with storage.experiment(experiment_id="bystander", trial_id=1, root_env_config="env.jsonc",
                            description="innocent", tunables={"x": 1}, opt_targets={"score": "min"}) as exp:
        assert exp.description == "innocent"
        assert exp.load() == ([1], [{"x": 2}], [{"score": 1.5}], [Status.SUCCEEDED])
        assert exp.load_telemetry(1) == [(T0, "cpu", 0.5)]
        assert exp.trial_id == 2


@pytest.fixture(scope="module", params=["memory", "file"])
def shared_storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """One store per backend for the table of hostile strings, with a plain 'bystander' experiment.

    Each hostile string gets its own experiment (its id is the string), so
    the cases stay independent; a fresh store per case would make this file
    several times slower.
    """
    path = None if request.param == "memory" else tmp_path_factory.mktemp("hostile") / "store.duckdb"
    with Storage(path) as store:
        _store_bystander(store)
        yield store


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_stored_and_returned_exactly_everywhere(shared_storage: Storage, text: str) -> None:
    """As experiment id, description, root_env_config, objective, tunable name and value,
    trial config key and value, result name and value, telemetry metric and value."""
    value = text + " value"
    nested = [text, {text: [text, None]}]
    exp = shared_storage.experiment(experiment_id=text, trial_id=1, root_env_config=text, description=text,
                                    tunables={text: text, "plain": 1}, opt_targets={text: "max"})
    with exp:
        assert (exp.experiment_id, exp.description, exp.root_env_config) == (text, text, text)
        trial = exp.new_trial({text: value}, ts_start=T0, config={text: text, "nested": nested})
        (pending,) = exp.pending_trials(LATER, running=False)
        assert dict(pending.tunables) == {text: value, "plain": 1}
        assert pending.config()[text] == text
        assert pending.config()["nested"] == nested
        assert exp.load_tunable_config(trial.tunable_config_id) == {text: value, "plain": 1}

        trial.update_telemetry(Status.RUNNING, T0, [(T0, text, text), (T0, "plain", 1.0)])
        trial.update_telemetry(Status.RUNNING, T0, pa.table({
            "ts": pa.array([T0 + SEC], pa.timestamp("us", tz="UTC")), "metric": [text], "value": [text]}))
        trial.update(Status.SUCCEEDED, LATER, {text: text, "plain": 2, "nested": nested})

        assert exp.load() == ([trial.trial_id], [{text: value, "plain": 1}],
                              [{text: text, "plain": 2, "nested": nested}], [Status.SUCCEEDED])
        table = exp.load_table()
        assert table.column(f"config.{text}").to_pylist() == [value]
        assert table.column(f"result.{text}").to_pylist() == [text]
        assert table.column("experiment_id").to_pylist() == [text]
        assert exp.load_telemetry(trial.trial_id) == sorted(
            [(T0, text, text), (T0, "plain", 1.0), (T0 + SEC, text, text)], key=lambda p: (p[0], p[1]))
        only = exp.telemetry_table(metrics=text)
        assert only.column("metric").to_pylist() == [text, text]
        assert only.column("value").to_pylist() == [text, text]
        assert exp.telemetry_table(metrics=[text, "plain"]).num_rows == 3
        assert exp.telemetry_table(metrics=[text + "' OR '1'='1", "%", "' OR 1=1 --"]).num_rows == 0

    engine = shared_storage.engine
    assert engine.fetch_one(engine.catalog.experiment_get, experiment_id=text)[:2] == (text, text)  # type: ignore[index]
    # Entering again (another description given) finds exactly this experiment.
    again = shared_storage.experiment(experiment_id=text, trial_id=1, root_env_config="other",
                                      description="other", tunables={text: text, "plain": 1},
                                      opt_targets={text: "max"})
    with again:
        assert again.description == text
        assert again.trial_id == trial.trial_id + 1
        assert again.load()[0] == [trial.trial_id]
    assert_bystander_intact(shared_storage)


def test_each_hostile_id_refers_to_exactly_its_own_experiment(storage: Storage) -> None:
    """Ids that differ only by quotes, wildcards, case, spaces or SQL fragments never see each other's data."""
    ids = ["exp", "EXP", "exp ", "exp'", "exp''", "exp\"", "exp%", "exp_", "ex%", "e_p", "exp\\", "exp\n", "éxp",
           "exp' OR '1'='1", "exp' --", "exp'; DROP TABLE experiment; --", "$experiment_id", "%"]
    assert len(set(ids)) == len(ids)
    for n, experiment_id in enumerate(ids):
        with storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config=experiment_id,
                                description=experiment_id, tunables={"n": 0},
                                opt_targets={"score": "min"}) as exp:
            for i in range(n % 2 + 1):
                trial = exp.new_trial({"n": n})
                if i == n % 2:  # the last trial reports telemetry, before it ends
                    trial.update_telemetry(Status.RUNNING, T0, [(T0, "owner", experiment_id)])
                trial.update(Status.SUCCEEDED, T0, {"score": float(n), "owner": experiment_id})
    for n, experiment_id in enumerate(ids):
        count = n % 2 + 1
        exp = storage.experiment(experiment_id=experiment_id, trial_id=1, root_env_config="other",
                                 description="other", tunables={"n": 0}, opt_targets={"score": "min"})
        with exp:
            assert exp.description == experiment_id
            assert exp.load() == (list(range(1, count + 1)), [{"n": n}] * count,
                                  [{"owner": experiment_id, "score": float(n)}] * count,
                                  [Status.SUCCEEDED] * count), experiment_id
            telemetry = exp.telemetry_table()
            assert telemetry.column("experiment_id").to_pylist() == [experiment_id]
            assert telemetry.column("value").to_pylist() == [experiment_id]
            assert exp.trial_id == count + 1


def test_hostile_objective_conflict_is_still_detected(storage: Storage) -> None:
    """A stored objective named with SQL text is compared as exact text."""
    text = "'; DROP TABLE objective; --"

    def experiment(opt_targets: dict[str, str]) -> Experiment:
        return storage.experiment(experiment_id=text, trial_id=1, root_env_config=text, description=text,
                                  tunables={text: text}, opt_targets=opt_targets)

    with experiment({text: "max"}):
        pass
    for other_targets in ({text: "min"}, {text + " ": "max"}, {"%": "max"}, {text: "max", "' OR 1=1": "min"}):
        with pytest.raises(ObjectiveConflictError, match="objectives"):
            with experiment(other_targets):
                pass
    with experiment({text: "max"}) as exp:
        assert exp.opt_targets == {text: "max"}


def test_tunable_values_differing_only_in_hostile_text_get_their_own_configs(storage: Storage) -> None:
    texts = ["a'b", "a''b", "a\\'b", "a\"b", "a%b", "a_b", "a\nb", "a;b", "a b", "a'; DROP TABLE tunable_config; --"]
    with storage.experiment(experiment_id="configs", trial_id=1, root_env_config="env", description="",
                            tunables={"t": "default"}, opt_targets={}) as exp:
        config_ids = [exp.new_trial({"t": text}).tunable_config_id for text in texts]
        assert len(set(config_ids)) == len(texts)
        assert [exp.load_tunable_config(c) for c in config_ids] == [{"t": text} for text in texts]
        assert exp.new_trial({"t": "a'b"}).tunable_config_id == config_ids[0]
