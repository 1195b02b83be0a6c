-- The engine-limit baseline for bench_import.py: every table of a store
-- file attached as import_source copied by a bare INSERT ... SELECT, with
-- no conflict checks, id mapping or deduplication.

-- name: baseline_copy_experiment :none
-- Bare copy of the experiments.
INSERT INTO experiment SELECT * FROM import_source.experiment;

-- name: baseline_copy_objective :none
-- Bare copy of the objectives.
INSERT INTO objective SELECT * FROM import_source.objective;

-- name: baseline_copy_experiment_tunable :none
-- Bare copy of the declared tunables.
INSERT INTO experiment_tunable SELECT * FROM import_source.experiment_tunable;

-- name: baseline_copy_tunable_config :none
-- Bare copy of the configs.
INSERT INTO tunable_config SELECT * FROM import_source.tunable_config;

-- name: baseline_copy_tunable_param :none
-- Bare copy of the config values.
INSERT INTO tunable_param SELECT * FROM import_source.tunable_param;

-- name: baseline_copy_trial :none
-- Bare copy of the trials.
INSERT INTO trial SELECT * FROM import_source.trial;

-- name: baseline_copy_trial_param :none
-- Bare copy of the trial configs.
INSERT INTO trial_param SELECT * FROM import_source.trial_param;

-- name: baseline_copy_trial_status :none
-- Bare copy of the status histories.
INSERT INTO trial_status SELECT * FROM import_source.trial_status;

-- name: baseline_copy_trial_result :none
-- Bare copy of the results.
INSERT INTO trial_result SELECT * FROM import_source.trial_result;

-- name: baseline_copy_trial_telemetry :none
-- Bare copy of the telemetry.
INSERT INTO trial_telemetry SELECT * FROM import_source.trial_telemetry;
