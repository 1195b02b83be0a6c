-- name: trial_runner_assign :count
-- Assigns a trial to a runner while the trial is PENDING (a scheduler may
-- still move it) or has no runner yet; otherwise changes nothing.
UPDATE trial
SET trial_runner_id = $trial_runner_id
WHERE experiment_id = $experiment_id AND trial_id = $trial_id
  AND (status = 'PENDING' OR trial_runner_id IS NULL);

-- name: trial_runner_get :one
-- The runner a trial is assigned to (NULL if none), or no row if there is
-- no such trial.
SELECT trial_runner_id
FROM trial
WHERE experiment_id = $experiment_id AND trial_id = $trial_id;

-- name: trial_get_stored :one
-- What restoring one trial needs: its config id and runner, or no row.
SELECT config_id, trial_runner_id
FROM trial
WHERE experiment_id = $experiment_id AND trial_id = $trial_id;
