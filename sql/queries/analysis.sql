-- name: experiment_list :arrow
-- Every stored experiment's record, by experiment id: the analysis side's index.
SELECT experiment_id, description, root_env_config, git_repo, git_commit
FROM experiment
ORDER BY experiment_id;

-- name: analysis_trial_list :arrow
-- An experiment's trials (all statuses), or only those of one config when
-- $config_id is not NULL, by trial id. A trial's group is the smallest trial
-- id of the experiment using the same config, counted over every trial.
WITH grouped AS (
    SELECT trial_id, ts_start, ts_end, config_id AS tunable_config_id,
           min(trial_id) OVER (PARTITION BY config_id) AS tunable_config_trial_group_id,
           status::VARCHAR AS status, trial_runner_id
    FROM trial
    WHERE experiment_id = $experiment_id
)
SELECT *
FROM grouped
WHERE $config_id IS NULL OR tunable_config_id = $config_id
ORDER BY trial_id;

-- name: analysis_trial_get :arrow
-- One trial of an experiment, as a row of analysis_trial_list (no row if
-- the experiment has no such trial); its group is counted over the trials
-- of its config only, so the read does not grow with the experiment.
SELECT t.trial_id, t.ts_start, t.ts_end, t.config_id AS tunable_config_id,
       (SELECT min(g.trial_id) FROM trial g
        WHERE g.experiment_id = $experiment_id AND g.config_id = t.config_id) AS tunable_config_trial_group_id,
       t.status::VARCHAR AS status, t.trial_runner_id
FROM trial t
WHERE t.experiment_id = $experiment_id AND t.trial_id = $trial_id;

-- name: trial_result_list :arrow
-- The results of one trial, by metric name.
SELECT metric AS name, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM trial_result
WHERE experiment_id = $experiment_id AND trial_id = $trial_id
ORDER BY metric;

-- name: experiment_default_config_id :one
-- The config of the experiment's first trial if it is the config whose
-- canonical hash is $config_hash (the declared defaults'), else no row.
SELECT config_id
FROM trial
WHERE experiment_id = $experiment_id
  AND trial_id = (SELECT min(trial_id) FROM trial WHERE experiment_id = $experiment_id)
  AND config_id IN (SELECT config_id FROM tunable_config WHERE config_hash = $config_hash);

-- name: experiment_pareto_front_2d :arrow
-- The best SUCCEEDED trials on one or two objectives, given as parallel
-- lists ($metrics, $directions of 'min'/'max'): those no other trial
-- dominates (at least as good on each, better on one). A trial lacking an
-- objective, or holding a non-numeric or NaN value for one, is left out
-- (see the objective_losses macro). With one objective, every trial tied
-- for the best value. A sweep in (first, second) order: a trial is
-- dominated exactly when a trial strictly before it in that order is at
-- least as good on the second objective.
-- By the objectives' values (best first), then trial id.
WITH swept AS (
    SELECT trial_id, losses, coalesce(losses[2], 0.0) AS second,
           min(coalesce(losses[2], 0.0)) OVER (
               ORDER BY losses[1], coalesce(losses[2], 0.0)
               GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS best_second_before
    FROM objective_losses($experiment_id, $metrics, $directions)
)
SELECT trial_id
FROM swept
WHERE best_second_before IS NULL OR best_second_before > second
ORDER BY losses, trial_id;

-- name: experiment_pareto_front :arrow
-- As experiment_pareto_front_2d for any number of objectives: each
-- candidate is compared with those at least as good on the first two
-- objectives, so the cost grows with the square of the candidates.
WITH candidates AS (
    SELECT trial_id, losses, losses[1] AS first, coalesce(losses[2], 0.0) AS second
    FROM objective_losses($experiment_id, $metrics, $directions)
),
dominated AS (
    SELECT DISTINCT a.trial_id
    FROM candidates a
    JOIN candidates b ON b.first <= a.first AND b.second <= a.second
    WHERE b.losses <> a.losses
      AND list_bool_and(list_transform(range(1, len(a.losses) + 1), lambda i: b.losses[i] <= a.losses[i]))
)
SELECT trial_id
FROM candidates
WHERE trial_id NOT IN (SELECT trial_id FROM dominated)
ORDER BY losses, trial_id;
