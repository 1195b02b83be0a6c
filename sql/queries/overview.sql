-- name: overview_experiment_counts :arrow
-- Per stored experiment: its trials, how many are in each status (UNKNOWN
-- is never stored), and its telemetry points; what `mlos-store info`
-- summarises. By experiment id; experiments without trials count zeros.
WITH trials AS (
    SELECT experiment_id,
           count(*) AS trials,
           count(*) FILTER (WHERE status = 'PENDING') AS pending,
           count(*) FILTER (WHERE status = 'READY') AS ready,
           count(*) FILTER (WHERE status = 'RUNNING') AS running,
           count(*) FILTER (WHERE status = 'SUCCEEDED') AS succeeded,
           count(*) FILTER (WHERE status = 'CANCELED') AS canceled,
           count(*) FILTER (WHERE status = 'FAILED') AS failed,
           count(*) FILTER (WHERE status = 'TIMED_OUT') AS timed_out
    FROM trial
    GROUP BY experiment_id
),
points AS (
    SELECT experiment_id, count(*) AS telemetry_points
    FROM trial_telemetry
    GROUP BY experiment_id
)
SELECT e.experiment_id,
       coalesce(t.trials, 0) AS trials,
       coalesce(t.pending, 0) AS pending,
       coalesce(t.ready, 0) AS ready,
       coalesce(t.running, 0) AS running,
       coalesce(t.succeeded, 0) AS succeeded,
       coalesce(t.canceled, 0) AS canceled,
       coalesce(t.failed, 0) AS failed,
       coalesce(t.timed_out, 0) AS timed_out,
       coalesce(p.telemetry_points, 0) AS telemetry_points
FROM experiment e
LEFT JOIN trials t USING (experiment_id)
LEFT JOIN points p USING (experiment_id)
ORDER BY e.experiment_id;

-- name: experiment_trials_ranked :arrow
-- The SUCCEEDED trials holding a number (not NaN) for every objective
-- ($metrics, $directions of 'min'/'max', as experiment_pareto_front_2d),
-- best first: ordered by the first objective in its direction, ties by the
-- next, then by trial id. With one objective, the N best trials are the
-- first N rows (`mlos-store results --best N`).
SELECT trial_id
FROM objective_losses($experiment_id, $metrics, $directions)
ORDER BY losses, trial_id;
