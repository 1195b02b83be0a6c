-- name: tunable_config_insert_new :one
-- Allocates a config id for a hash not seen before; no row if it exists.
-- (hash_key first: an integer scan, see 0007_config_hash_key.sql).
INSERT INTO tunable_config (config_id, config_hash, ts_created, hash_key)
SELECT nextval('tunable_config_id_seq'), $config_hash, now(), config_hash_key($config_hash)
WHERE NOT EXISTS (
    SELECT 1 FROM tunable_config
    WHERE hash_key = config_hash_key($config_hash) AND config_hash = $config_hash
)
RETURNING config_id;

-- name: tunable_config_id_by_hash :value
-- The config id stored for a canonical hash of tunable values.
SELECT config_id FROM tunable_config
WHERE hash_key = config_hash_key($config_hash) AND config_hash = $config_hash;

-- name: tunable_param_insert :rows
-- Stores the values of a newly allocated config.
INSERT INTO tunable_param (config_id, tunable_name, value_kind,
                           value, value_int, value_text)
SELECT $config_id, unnest($name::VARCHAR[]), unnest($value_kind::VARCHAR[]), unnest($value::DOUBLE[]),
       unnest($value_int::BIGINT[]), unnest($value_text::VARCHAR[]);

-- name: tunable_config_exists :value
-- Whether a config id is stored.
SELECT count(*) > 0 FROM tunable_config WHERE config_id = $config_id;

-- name: tunable_param_list :arrow
-- The values of several configs, by config id then tunable name.
SELECT config_id, tunable_name AS name, value_kind::VARCHAR AS value_kind, value, value_int, value_text
FROM tunable_param
WHERE list_contains($config_ids, config_id)
ORDER BY config_id, tunable_name;
