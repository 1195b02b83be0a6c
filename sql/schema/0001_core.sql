-- Core schema of an mlos_store database.
--
-- Every typed value (a tunable value, a trial parameter, a result, a
-- telemetry point) is stored in the same four columns:
--   value_kind  what the caller gave: null, bool, int, float, str or json
--   value       the numeric view (int, float and bool as 0/1), for analytics
--   value_int   the exact integer for int and bool
--   value_text  the text for str, the JSON document for json
-- is_typed_value(), checked on each such table, makes any other
-- combination unrepresentable.

CREATE TABLE store_info (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

INSERT INTO store_info VALUES ('format', 'mlos_store');

CREATE TABLE schema_migration (
    version INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
);

CREATE TYPE trial_status AS ENUM (
    'UNKNOWN', 'PENDING', 'READY', 'RUNNING',
    'SUCCEEDED', 'CANCELED', 'FAILED', 'TIMED_OUT'
);

CREATE TYPE value_kind AS ENUM ('null', 'bool', 'int', 'float', 'str', 'json');

CREATE MACRO is_typed_value(kind, num, int_value, text_value) AS CASE kind
    WHEN 'null' THEN num IS NULL AND int_value IS NULL AND text_value IS NULL
    WHEN 'bool' THEN int_value IN (0, 1) AND num = int_value AND text_value IS NULL
    WHEN 'int' THEN int_value IS NOT NULL AND num IS NOT NULL AND text_value IS NULL
    WHEN 'float' THEN num IS NOT NULL AND int_value IS NULL AND text_value IS NULL
    ELSE text_value IS NOT NULL AND num IS NULL AND int_value IS NULL
END;

CREATE TABLE experiment (
    experiment_id VARCHAR PRIMARY KEY CHECK (experiment_id <> ''),
    description VARCHAR NOT NULL,
    root_env_config VARCHAR NOT NULL,
    git_repo VARCHAR,
    git_commit VARCHAR,
    -- The trial id given when the experiment was created: numbering starts here.
    first_trial_id BIGINT NOT NULL,
    ts_created TIMESTAMPTZ NOT NULL
);

CREATE TABLE objective (
    experiment_id VARCHAR NOT NULL REFERENCES experiment (experiment_id),
    optimization_target VARCHAR NOT NULL,
    optimization_direction VARCHAR NOT NULL
        CHECK (optimization_direction IN ('min', 'max')),
    ordinal INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, optimization_target)
);

-- The tunables an experiment declared, with their defaults.
CREATE TABLE experiment_tunable (
    experiment_id VARCHAR NOT NULL REFERENCES experiment (experiment_id),
    tunable_name VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    PRIMARY KEY (experiment_id, tunable_name),
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);

CREATE SEQUENCE tunable_config_id_seq START 1;

-- A set of tunable values, shared by every trial (of any experiment) that
-- used exactly those values; config_hash is the hash of the canonical values.
CREATE TABLE tunable_config (
    config_id BIGINT PRIMARY KEY,
    config_hash VARCHAR NOT NULL UNIQUE,
    ts_created TIMESTAMPTZ NOT NULL
);

CREATE TABLE tunable_param (
    config_id BIGINT NOT NULL REFERENCES tunable_config (config_id),
    tunable_name VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    PRIMARY KEY (config_id, tunable_name),
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);

CREATE TABLE trial (
    experiment_id VARCHAR NOT NULL REFERENCES experiment (experiment_id),
    trial_id BIGINT NOT NULL,
    config_id BIGINT NOT NULL REFERENCES tunable_config (config_id),
    status trial_status NOT NULL CHECK (status <> 'UNKNOWN'),
    -- When the trial was stored; never changes.
    ts_created TIMESTAMPTZ NOT NULL,
    -- When the trial is scheduled to start (PENDING) or did start.
    ts_start TIMESTAMPTZ NOT NULL,
    ts_end TIMESTAMPTZ,
    trial_runner_id INTEGER,
    PRIMARY KEY (experiment_id, trial_id),
    -- A trial has an end time exactly when its status is final.
    CHECK ((ts_end IS NOT NULL)
        = (status IN ('SUCCEEDED', 'CANCELED', 'FAILED', 'TIMED_OUT')))
);

-- The trial config: extra, non-tunable parameters of one trial.
CREATE TABLE trial_param (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    param_name VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    PRIMARY KEY (experiment_id, trial_id, param_name),
    FOREIGN KEY (experiment_id, trial_id) REFERENCES trial (experiment_id, trial_id),
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);

CREATE SEQUENCE trial_status_seq START 1;

-- Every status a trial went through; seq orders the changes as they were
-- made (callers' timestamps need not be monotonic).
CREATE TABLE trial_status (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    seq BIGINT NOT NULL UNIQUE,
    ts TIMESTAMPTZ NOT NULL,
    status trial_status NOT NULL CHECK (status <> 'UNKNOWN'),
    PRIMARY KEY (experiment_id, trial_id, ts, status),
    FOREIGN KEY (experiment_id, trial_id) REFERENCES trial (experiment_id, trial_id)
);

CREATE TABLE trial_result (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    metric VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    PRIMARY KEY (experiment_id, trial_id, metric),
    FOREIGN KEY (experiment_id, trial_id) REFERENCES trial (experiment_id, trial_id),
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);

-- Time series measured while a trial ran. A point is identified by
-- (experiment_id, trial_id, ts, metric); the ingest query keeps it unique by
-- an anti-join rather than a primary key, whose index would cost ~70 bytes a
-- row and slow bulk ingest several times. No foreign key for the same
-- reason: the ingest query only writes points of a trial it has just read.
CREATE TABLE trial_telemetry (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    metric VARCHAR NOT NULL,
    value_kind value_kind NOT NULL,
    value DOUBLE,
    value_int BIGINT,
    value_text VARCHAR,
    CHECK (is_typed_value(value_kind, value, value_int, value_text))
);

CREATE VIEW completed_trial AS
SELECT * FROM trial WHERE status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT');

-- The id the next new trial of an experiment gets: one past the largest
-- stored, never below the id the caller asked numbering to start from.
-- Used inside the insert itself, so the id is allocated by the database.
CREATE MACRO next_trial_id(exp_id, first_id) AS greatest(
    first_id,
    coalesce((SELECT max(trial_id) + 1 FROM trial WHERE experiment_id = exp_id), first_id)
);
