-- name: telemetry_summary :arrow
-- Per trial and metric of an experiment (filtered as telemetry_list): the
-- number of points, then min, max, mean, sample stddev and the exact
-- percentiles p50/p90/p95/p99 of the numeric values (ints, floats, bools as
-- 0/1; NaN, strings and None left out), and the first and last timestamp.
-- By trial id, then metric.
SELECT trial_id, metric, count, min, max, mean, stddev,
       q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99, first_ts, last_ts
FROM (
    SELECT trial_id, metric, count(*) AS count,
           min(num) AS min, max(num) AS max, avg(num) AS mean, stddev_samp(num) AS stddev,
           quantile_cont(num, [0.5, 0.9, 0.95, 0.99]) AS q,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM telemetry_numbers($experiment_id, $trial_ids, $metrics, $start, $end)
    GROUP BY trial_id, metric
)
ORDER BY trial_id, metric;

-- name: telemetry_extents :arrow
-- Per trial and metric (filtered as telemetry_list): the number of points,
-- the min, max and mean of the numeric values, and the first and last
-- timestamp: telemetry_summary's columns without the stddev and the
-- percentiles, which sort every point (several times slower on millions).
-- By trial id, then metric.
SELECT trial_id, metric, count(*) AS count,
       min(num) AS min, max(num) AS max, avg(num) AS mean,
       min(ts) AS first_ts, max(ts) AS last_ts
FROM telemetry_numbers($experiment_id, $trial_ids, $metrics, $start, $end)
GROUP BY trial_id, metric
ORDER BY trial_id, metric;

-- name: telemetry_downsample :arrow
-- Per trial, metric and time bucket of $bucket_us microseconds (aligned to
-- the Unix epoch, labelled by its start): the number of points and the
-- mean, min and max of the numeric values (as telemetry_summary), so a plot
-- of a million points gets one row per bucket. By trial id, metric, bucket.
-- A bucket is found by integer arithmetic on microseconds since the epoch
-- (floored, so times before 1970 too), not time_bucket(), which goes
-- through the calendar for every point (2-3x slower on a million points).
SELECT trial_id, metric, make_timestamptz(bucket_us) AS bucket, count(*) AS count,
       avg(num) AS mean, min(num) AS min, max(num) AS max
FROM (SELECT trial_id, metric,
             epoch_us(ts) - ((epoch_us(ts) % $bucket_us) + $bucket_us) % $bucket_us AS bucket_us, num
      FROM telemetry_numbers($experiment_id, $trial_ids, $metrics, $start, $end))
GROUP BY trial_id, metric, bucket_us
ORDER BY trial_id, metric, bucket_us;

-- name: telemetry_by_config :arrow
-- One metric summarised per tunable config over every point of the
-- experiment's trials of that config (in [$start, $end) when given): trials
-- measured, points, and the statistics of telemetry_summary; by config id.
SELECT tunable_config_id, trials, count, min, max, mean, stddev,
       q[1] AS p50, q[2] AS p90, q[3] AS p95, q[4] AS p99
FROM (
    SELECT t.config_id AS tunable_config_id, count(DISTINCT t.trial_id) AS trials, count(*) AS count,
           min(num) AS min, max(num) AS max, avg(num) AS mean, stddev_samp(num) AS stddev,
           quantile_cont(num, [0.5, 0.9, 0.95, 0.99]) AS q
    FROM (SELECT trial_id, CASE WHEN isnan(value) THEN NULL ELSE value END AS num
          FROM trial_telemetry
          WHERE experiment_id = $experiment_id AND metric = $metric
            AND ($start IS NULL OR ts >= $start)
            AND ($end IS NULL OR ts < $end)) AS m
    JOIN trial AS t ON t.experiment_id = $experiment_id AND t.trial_id = m.trial_id
    GROUP BY t.config_id
)
ORDER BY tunable_config_id;

-- name: telemetry_config_values :arrow
-- The tunable values of the configs $config_ids and the mean of each
-- numeric result over the experiment's SUCCEEDED trials of each, long: one
-- row per value, row_pos the config's position in $config_ids, sorted so
-- each name's values are contiguous (the shape trial_values has).
WITH selected AS (
    SELECT unnest($config_ids) AS config_id,
           generate_subscripts($config_ids, 1) - 1 AS row_pos
)
SELECT 'config' AS source, p.tunable_name AS name, s.row_pos,
       p.value_kind::VARCHAR AS value_kind, p.value, p.value_int, p.value_text
FROM selected s
JOIN tunable_param p ON p.config_id = s.config_id
UNION ALL
SELECT 'result' AS source, r.metric AS name, s.row_pos,
       'float' AS value_kind, avg(r.value) AS value, NULL AS value_int, NULL AS value_text
FROM selected s
JOIN trial t ON t.experiment_id = $experiment_id AND t.config_id = s.config_id AND t.status = 'SUCCEEDED'
JOIN trial_result r ON r.experiment_id = t.experiment_id AND r.trial_id = t.trial_id
WHERE r.value_kind IN ('int', 'float') AND NOT isnan(r.value)
GROUP BY r.metric, s.row_pos
ORDER BY source, name, row_pos;
