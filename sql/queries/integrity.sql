-- name: store_integrity_violations :arrow
-- Each guarantee that keys and foreign keys enforced before schema 0005,
-- now kept by the statements, with how many rows break it; only broken
-- ones are listed, so an empty result is a store in order. Read by
-- Storage.check_integrity and by the tests that try to break each one.
WITH checks(guarantee, violations) AS (
    SELECT 'experiment ids are unique', count(*) - count(DISTINCT experiment_id) FROM experiment
    UNION ALL
    SELECT 'an objective is declared once per experiment',
           count(*) - count(DISTINCT (experiment_id, optimization_target)) FROM objective
    UNION ALL
    SELECT 'a tunable is declared once per experiment',
           count(*) - count(DISTINCT (experiment_id, tunable_name)) FROM experiment_tunable
    UNION ALL
    SELECT 'config ids are unique', count(*) - count(DISTINCT config_id) FROM tunable_config
    UNION ALL
    SELECT 'config hashes are unique', count(*) - count(DISTINCT config_hash) FROM tunable_config
    UNION ALL
    SELECT 'a config holds one value per tunable',
           count(*) - count(DISTINCT (config_id, tunable_name)) FROM tunable_param
    UNION ALL
    SELECT 'trial ids are unique per experiment',
           count(*) - count(DISTINCT (experiment_id, trial_id)) FROM trial
    UNION ALL
    SELECT 'a trial config holds one value per name',
           count(*) - count(DISTINCT (experiment_id, trial_id, param_name)) FROM trial_param
    UNION ALL
    SELECT 'a trial holds one value per result metric',
           count(*) - count(DISTINCT (experiment_id, trial_id, metric)) FROM trial_result
    UNION ALL
    SELECT 'a status is recorded once per trial and timestamp',
           count(*) - count(DISTINCT (experiment_id, trial_id, ts, status)) FROM trial_status
    UNION ALL
    SELECT 'history sequence numbers are unique', count(*) - count(DISTINCT seq) FROM trial_status
    UNION ALL
    SELECT 'a telemetry point is stored once',
           count(*) - count(DISTINCT (experiment_id, trial_id, ts, metric)) FROM trial_telemetry
    UNION ALL
    SELECT 'a merge is recorded once',
           count(*) - count(DISTINCT (experiment_id, merged_experiment_id)) FROM experiment_merge
    UNION ALL
    SELECT 'a sync watermark is kept once per source and experiment',
           count(*) - count(DISTINCT (source_store_id, experiment_id)) FROM sync_source
    UNION ALL
    SELECT 'sync watermarks belong to a stored experiment', count(*)
    FROM sync_source WHERE experiment_id NOT IN (SELECT experiment_id FROM experiment)
    UNION ALL
    SELECT 'objectives and tunables belong to a stored experiment', count(*)
    FROM (SELECT experiment_id FROM objective UNION ALL SELECT experiment_id FROM experiment_tunable) AS o
    WHERE experiment_id NOT IN (SELECT experiment_id FROM experiment)
    UNION ALL
    SELECT 'merges name stored experiments', count(*)
    FROM experiment_merge
    WHERE experiment_id NOT IN (SELECT experiment_id FROM experiment)
       OR merged_experiment_id NOT IN (SELECT experiment_id FROM experiment)
    UNION ALL
    SELECT 'a trial belongs to a stored experiment', count(*)
    FROM trial WHERE experiment_id NOT IN (SELECT experiment_id FROM experiment)
    UNION ALL
    SELECT 'a trial and a config value belong to a stored config', count(*)
    FROM (SELECT config_id FROM trial UNION ALL SELECT config_id FROM tunable_param) AS c
    WHERE config_id NOT IN (SELECT config_id FROM tunable_config)
    UNION ALL
    SELECT 'trial configs, results, history and telemetry belong to a stored trial', count(*)
    FROM (
        SELECT experiment_id, trial_id FROM trial_param
        UNION ALL SELECT experiment_id, trial_id FROM trial_result
        UNION ALL SELECT experiment_id, trial_id FROM trial_status
        UNION ALL SELECT DISTINCT experiment_id, trial_id FROM trial_telemetry
    ) AS child
    ANTI JOIN trial t USING (experiment_id, trial_id)
)
SELECT guarantee, violations
FROM checks
WHERE violations > 0
ORDER BY guarantee;
