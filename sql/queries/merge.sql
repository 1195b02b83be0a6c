-- name: merge_record :count
-- Records that an experiment loads the completed trials of others after
-- its own; pairs already recorded are skipped, so merging twice adds nothing.
INSERT INTO experiment_merge (experiment_id, merged_experiment_id, ts_merged)
SELECT $experiment_id, m.merged_experiment_id, now()
FROM (SELECT unnest($merged_experiment_ids) AS merged_experiment_id) AS m
WHERE m.merged_experiment_id NOT IN (
    SELECT merged_experiment_id FROM experiment_merge WHERE experiment_id = $experiment_id
);

-- name: merge_list :arrow
-- The experiments merged into one, by id.
SELECT merged_experiment_id, ts_merged
FROM experiment_merge
WHERE experiment_id = $experiment_id
ORDER BY merged_experiment_id;

-- name: merged_trial_list :arrow
-- The completed trials of the experiments merged into one, by experiment
-- id then trial id, shaped as trial_list_completed's rows.
SELECT experiment_id, trial_id, config_id AS tunable_config_id,
       status::VARCHAR AS status, ts_start, ts_end
FROM merged_completed_trial($experiment_id)
ORDER BY experiment_id, trial_id;

-- name: merged_trial_values :arrow
-- The tunable values and results of the same trials as merged_trial_list,
-- long, shaped as trial_values' rows plus the experiment id (a trial is
-- matched to its row of merged_trial_list by both ids). Only the merging
-- experiment's tunables are kept: one it lacks in a trial's config, or
-- holding a value that does not fit its declared type, is its declared
-- default, flagged imputed.
WITH selected AS (
    SELECT experiment_id, trial_id, config_id
    FROM merged_completed_trial($experiment_id)
),
declared AS (
    SELECT tunable_name, value_kind, value, value_int, value_text
    FROM experiment_tunable
    WHERE experiment_id = $experiment_id
),
config AS (
    SELECT s.experiment_id, s.trial_id, d.tunable_name AS name,
           p.tunable_name IS NULL
               OR NOT value_kind_fits(p.value_kind::VARCHAR, d.value_kind::VARCHAR) AS imputed,
           d.value_kind AS default_kind, d.value AS default_value,
           d.value_int AS default_int, d.value_text AS default_text,
           p.value_kind, p.value, p.value_int, p.value_text
    FROM selected s
    CROSS JOIN declared d
    LEFT JOIN tunable_param p
      ON p.config_id = s.config_id AND p.tunable_name = d.tunable_name
)
SELECT 'config' AS source, name, experiment_id, trial_id,
       (CASE WHEN imputed THEN default_kind ELSE value_kind END)::VARCHAR AS value_kind,
       CASE WHEN imputed THEN default_value ELSE value END AS value,
       CASE WHEN imputed THEN default_int ELSE value_int END AS value_int,
       CASE WHEN imputed THEN default_text ELSE value_text END AS value_text,
       imputed
FROM config
UNION ALL
SELECT 'result' AS source, r.metric AS name, s.experiment_id, s.trial_id,
       r.value_kind::VARCHAR AS value_kind, r.value, r.value_int, r.value_text,
       false AS imputed
FROM selected s
JOIN trial_result r
  ON r.experiment_id = s.experiment_id AND r.trial_id = s.trial_id;

-- name: merge_tunable_comparison :arrow
-- The tunables two experiments declare, side by side by name: which side
-- declares each, and whether the merged experiment's declared type fits
-- this one's (a name declared on one side only always fits).
SELECT coalesce(here.tunable_name, there.tunable_name) AS name,
       here.tunable_name IS NOT NULL AS declared_here,
       there.tunable_name IS NOT NULL AS declared_there,
       here.value_kind::VARCHAR AS kind_here,
       there.value_kind::VARCHAR AS kind_there,
       coalesce(value_kind_fits(there.value_kind::VARCHAR, here.value_kind::VARCHAR), true) AS fits
FROM (SELECT * FROM experiment_tunable WHERE experiment_id = $experiment_id) AS here
FULL JOIN (SELECT * FROM experiment_tunable WHERE experiment_id = $merged_experiment_id) AS there
  ON here.tunable_name = there.tunable_name
ORDER BY name;
