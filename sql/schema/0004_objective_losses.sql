-- The one definition of "a trial's score on the objectives", shared by
-- best() (the Pareto front), ranked() and `mlos-store results --best`.
-- For experiment exp_id and objectives given as parallel lists (metrics,
-- directions of 'min'/'max'): each SUCCEEDED trial holding a number (not
-- NaN) for every objective, with its losses in objective order, each a
-- value to minimise (a 'max' objective negated).
CREATE MACRO objective_losses(exp_id, metrics, directions) AS TABLE
WITH objectives AS (
    SELECT unnest(metrics) AS metric,
           unnest(list_transform(directions, lambda d: CASE d WHEN 'max' THEN -1.0 ELSE 1.0 END)) AS sign,
           unnest(range(len(metrics))) AS ordinal
),
scores AS (
    SELECT r.trial_id, o.ordinal, r.value * o.sign AS loss
    FROM trial t
    JOIN trial_result r ON r.experiment_id = t.experiment_id AND r.trial_id = t.trial_id
    JOIN objectives o ON o.metric = r.metric
    WHERE t.experiment_id = exp_id
      AND t.status = 'SUCCEEDED'
      AND r.value_kind IN ('int', 'float')
      AND NOT isnan(r.value)
)
SELECT trial_id, list(loss ORDER BY ordinal) AS losses
FROM scores
GROUP BY trial_id
HAVING count(*) = len(metrics);
