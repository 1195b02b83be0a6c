-- Stores that stay fast as they grow: no index-backed constraints.
--
-- A store shared between processes is checkpointed at the end of every
-- turn. Measured on DuckDB 2.0.1, the ART indexes behind PRIMARY KEY,
-- UNIQUE and FOREIGN KEY constraints (26 of them) made every later attach
-- and write of a file written that way slower than the one before (a
-- store of 1,500 trials written a turn per call cost 11x more per trial
-- than an empty one, and its file was 2.5x the size of the same rows
-- written at once); without them both stay flat. What they guarded is
-- kept by the statements, which cost no index: a file has one writer at a
-- time (the turn, or the exclusive mode, both under the OS lock), every
-- insert of a key that could already exist is an anti-join or follows a
-- read in the same transaction (config hashes, experiments, tunables,
-- history entries, telemetry points), ids come from max + 1 or sequences
-- inside the insert, and child rows are only written for a trial the same
-- transaction has just created or moved. Each guarantee has a test that
-- tries to break it. The CHECK constraints stay: they cost no index.
--
-- DuckDB cannot drop a constraint: each table is rebuilt as it was minus
-- its keys, and its rows copied in key order (rewritten compactly, in the
-- order per-trial reads filter on, so zone maps skip the rest).

CREATE TABLE experiment_v5 (
    experiment_id VARCHAR NOT NULL CHECK (experiment_id <> ''),
    description VARCHAR NOT NULL,
    root_env_config VARCHAR NOT NULL,
    git_repo VARCHAR,
    git_commit VARCHAR,
    -- The trial id given when the experiment was created: numbering starts here.
    first_trial_id BIGINT NOT NULL,
    ts_created TIMESTAMPTZ NOT NULL
);
INSERT INTO experiment_v5 SELECT * FROM experiment ORDER BY experiment_id;

CREATE TABLE objective_v5 (
    experiment_id VARCHAR NOT NULL,
    optimization_target VARCHAR NOT NULL,
    optimization_direction VARCHAR NOT NULL
        CHECK (optimization_direction IN ('min', 'max')),
    ordinal INTEGER NOT NULL
);
INSERT INTO objective_v5 SELECT * FROM objective ORDER BY experiment_id, ordinal;

-- The tunables an experiment declared, with their defaults.
CREATE TABLE experiment_tunable_v5 (
    experiment_id VARCHAR NOT NULL,
    tunable_name VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);
INSERT INTO experiment_tunable_v5 SELECT * FROM experiment_tunable ORDER BY experiment_id, tunable_name;

-- A set of tunable values, shared by every trial (of any experiment) that
-- used exactly those values; config_hash is the hash of the canonical values.
CREATE TABLE tunable_config_v5 (
    config_id BIGINT NOT NULL,
    config_hash VARCHAR NOT NULL,
    ts_created TIMESTAMPTZ NOT NULL
);
INSERT INTO tunable_config_v5 SELECT * FROM tunable_config ORDER BY config_id;

CREATE TABLE tunable_param_v5 (
    config_id BIGINT NOT NULL,
    tunable_name VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);
INSERT INTO tunable_param_v5 SELECT * FROM tunable_param ORDER BY config_id, tunable_name;

CREATE TABLE trial_v5 (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    config_id BIGINT NOT NULL,
    status trial_status NOT NULL CHECK (status <> 'UNKNOWN'),
    -- When the trial was stored; never changes.
    ts_created TIMESTAMPTZ NOT NULL,
    -- When the trial is scheduled to start (PENDING) or did start.
    ts_start TIMESTAMPTZ NOT NULL,
    ts_end TIMESTAMPTZ,
    trial_runner_id INTEGER,
    -- A trial has an end time exactly when its status is final.
    CHECK ((ts_end IS NOT NULL)
        = (status IN ('SUCCEEDED', 'CANCELED', 'FAILED', 'TIMED_OUT')))
);
INSERT INTO trial_v5 SELECT * FROM trial ORDER BY experiment_id, trial_id;

-- The trial config: extra, non-tunable parameters of one trial.
CREATE TABLE trial_param_v5 (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    param_name VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);
INSERT INTO trial_param_v5 SELECT * FROM trial_param ORDER BY experiment_id, trial_id, param_name;

-- Every status a trial went through; seq orders the changes as they were
-- made (callers' timestamps need not be monotonic).
CREATE TABLE trial_status_v5 (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    status trial_status NOT NULL CHECK (status <> 'UNKNOWN')
);
INSERT INTO trial_status_v5 SELECT * FROM trial_status ORDER BY seq;

CREATE TABLE trial_result_v5 (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    metric VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);
INSERT INTO trial_result_v5 SELECT * FROM trial_result ORDER BY experiment_id, trial_id, metric;

-- The experiments whose completed trials an experiment loads after its own
-- (Experiment.merge). One row per pair: merging twice adds nothing.
CREATE TABLE experiment_merge_v5 (
    experiment_id VARCHAR NOT NULL,
    merged_experiment_id VARCHAR NOT NULL,
    ts_merged TIMESTAMPTZ NOT NULL,
    CHECK (experiment_id <> merged_experiment_id)
);
INSERT INTO experiment_merge_v5 SELECT * FROM experiment_merge ORDER BY experiment_id, merged_experiment_id;

-- Referencing tables first, then the tables they referenced.
DROP TABLE experiment_merge;
DROP TABLE trial_result;
DROP TABLE trial_status;
DROP TABLE trial_param;
DROP TABLE trial;
DROP TABLE tunable_param;
DROP TABLE tunable_config;
DROP TABLE experiment_tunable;
DROP TABLE objective;
DROP TABLE experiment;

ALTER TABLE experiment_v5 RENAME TO experiment;
ALTER TABLE objective_v5 RENAME TO objective;
ALTER TABLE experiment_tunable_v5 RENAME TO experiment_tunable;
ALTER TABLE tunable_config_v5 RENAME TO tunable_config;
ALTER TABLE tunable_param_v5 RENAME TO tunable_param;
ALTER TABLE trial_v5 RENAME TO trial;
ALTER TABLE trial_param_v5 RENAME TO trial_param;
ALTER TABLE trial_status_v5 RENAME TO trial_status;
ALTER TABLE trial_result_v5 RENAME TO trial_result;
ALTER TABLE experiment_merge_v5 RENAME TO experiment_merge;
