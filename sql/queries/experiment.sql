-- name: experiment_get :one
-- The stored record of one experiment, or no row.
SELECT description, root_env_config, first_trial_id
FROM experiment
WHERE experiment_id = $experiment_id;

-- name: experiment_insert :none
-- Creates the experiment record; its objectives and tunables follow.
INSERT INTO experiment (experiment_id, description, root_env_config,
                        git_repo, git_commit, first_trial_id, ts_created)
VALUES ($experiment_id, $description, $root_env_config,
        $git_repo, $git_commit, $first_trial_id, now());

-- name: objective_list :arrow
-- The experiment's optimization targets in the order they were declared.
SELECT optimization_target, optimization_direction
FROM objective
WHERE experiment_id = $experiment_id
ORDER BY ordinal;

-- name: objective_insert :ingest
-- Stores the objectives given as Arrow rows (target, direction, ordinal).
INSERT INTO objective (experiment_id, optimization_target,
                       optimization_direction, ordinal)
SELECT $experiment_id, optimization_target, optimization_direction, ordinal
FROM incoming;

-- name: experiment_tunable_insert :ingest
-- Stores the declared tunables and their defaults as typed values; names
-- already stored for the experiment keep their stored default.
INSERT INTO experiment_tunable (experiment_id, tunable_name, value_kind,
                                value, value_int, value_text)
SELECT $experiment_id, name, value_kind, value, value_int, value_text
FROM incoming
WHERE name NOT IN (
    SELECT tunable_name FROM experiment_tunable WHERE experiment_id = $experiment_id
);

-- name: experiment_tunable_list :arrow
-- The declared tunables and their defaults, by name.
SELECT tunable_name AS name, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM experiment_tunable
WHERE experiment_id = $experiment_id
ORDER BY tunable_name;

-- name: experiment_next_trial_id :value
-- The id the next new trial will get: one past the largest stored, and
-- never below the id the experiment was asked to start from.
SELECT next_trial_id($experiment_id, $first_trial_id);
