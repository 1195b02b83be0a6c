-- Merging experiments (warm starts) and importing other store files.

-- The experiments whose completed trials an experiment loads after its own
-- (Experiment.merge). One row per pair: merging twice adds nothing.
CREATE TABLE experiment_merge (
    experiment_id VARCHAR NOT NULL REFERENCES experiment (experiment_id),
    merged_experiment_id VARCHAR NOT NULL REFERENCES experiment (experiment_id),
    ts_merged TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (experiment_id, merged_experiment_id),
    CHECK (experiment_id <> merged_experiment_id)
);

-- Whether a value of one kind can stand for a tunable declared with
-- another: the same kind, ints and floats for each other, and None for
-- anything (a tunable whose default is None takes any value). The one
-- definition of "fits" for merges and imports.
CREATE MACRO value_kind_fits(kind, declared_kind) AS
    kind = 'null' OR declared_kind = 'null' OR kind = declared_kind
    OR (kind IN ('int', 'float') AND declared_kind IN ('int', 'float'));

-- The completed trials of every experiment merged into exp_id.
CREATE MACRO merged_completed_trial(exp_id) AS TABLE
SELECT t.experiment_id, t.trial_id, t.config_id, t.status, t.ts_start, t.ts_end
FROM experiment_merge m
JOIN completed_trial t ON t.experiment_id = m.merged_experiment_id
WHERE m.experiment_id = exp_id;

-- Work tables of Storage.import_store: filled and emptied inside the one
-- import transaction, so every other reader always sees them empty.
-- Which config id each imported config gets here (is_new: stored by the import).
CREATE TABLE import_config_map (
    source_config_id BIGINT PRIMARY KEY,
    config_id BIGINT NOT NULL,
    is_new BOOLEAN NOT NULL
);

-- The trials the import adds (those not stored here yet).
CREATE TABLE import_new_trial (
    experiment_id VARCHAR NOT NULL,
    trial_id BIGINT NOT NULL,
    PRIMARY KEY (experiment_id, trial_id)
);
