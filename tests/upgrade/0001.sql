-- Rows of every kind, as a store at schema version 1 held them (sql/schema/0001_core.sql).
--
-- tests/test_upgrade.py runs this file on a store migrated to version 1,
-- then opens the store with the current code and checks every value below.
-- Written as the version-1 code stored rows: ids from the sequences, every
-- typed value in its four columns, config hashes as config_hash_of makes
-- them (so a trial of the same values after the upgrade reuses the config).
-- Never edit this file: it stands for files already written by users.
--
-- Experiment 'exp': five declared tunables (one of each tunable kind), two
-- objectives, two configs, seven trials (one per ending, one running, one
-- pending), trial configs and results of every value kind, telemetry.

INSERT INTO experiment VALUES
    ('exp', 'written at schema 1', 'env.jsonc', 'https://example.org/repo.git', 'abc123', 1,
     '2026-01-01 11:00:00+00');

INSERT INTO objective VALUES ('exp', 'score', 'min', 0), ('exp', 'speed', 'max', 1);

INSERT INTO experiment_tunable VALUES
    ('exp', 'anything', 'null', NULL, NULL, NULL),
    ('exp', 'count', 'int', 3.0, 3, NULL),
    ('exp', 'flag', 'bool', 1.0, 1, NULL),
    ('exp', 'mode', 'str', NULL, NULL, 'a'),
    ('exp', 'ratio', 'float', 0.5, NULL, NULL);

-- Config 1: anything=7, count=4, flag=true, mode='a', ratio=0.5.
INSERT INTO tunable_config VALUES
    (nextval('tunable_config_id_seq'), '0142a3cd01b4e00ee398b8fddfa1202f501917cb680eaa11182865a4193532a2',
     '2026-01-01 11:00:01+00');
INSERT INTO tunable_param VALUES
    (1, 'anything', 'int', 7.0, 7, NULL),
    (1, 'count', 'int', 4.0, 4, NULL),
    (1, 'flag', 'bool', 1.0, 1, NULL),
    (1, 'mode', 'str', NULL, NULL, 'a'),
    (1, 'ratio', 'float', 0.5, NULL, NULL);

-- Config 2: anything=None, count=3, flag=false, mode='b', ratio=-1.25.
INSERT INTO tunable_config VALUES
    (nextval('tunable_config_id_seq'), 'b2f7d2a016ab77890ec700aec055a9e45458db55a101b3b79317d6f6de12b664',
     '2026-01-01 11:00:02+00');
INSERT INTO tunable_param VALUES
    (2, 'anything', 'null', NULL, NULL, NULL),
    (2, 'count', 'int', 3.0, 3, NULL),
    (2, 'flag', 'bool', 0.0, 0, NULL),
    (2, 'mode', 'str', NULL, NULL, 'b'),
    (2, 'ratio', 'float', -1.25, NULL, NULL);

-- Trials: (id, config, status, created, start, end, runner).
INSERT INTO trial VALUES
    ('exp', 1, 1, 'SUCCEEDED', '2026-01-01 11:01:00+00', '2026-01-01 12:00:00.123456+00',
     '2026-01-01 12:00:05.123456+00', 1),
    ('exp', 2, 2, 'SUCCEEDED', '2026-01-01 11:02:00+00', '2026-01-01 12:01:00+00', '2026-01-01 12:01:05+00', NULL),
    ('exp', 3, 2, 'FAILED', '2026-01-01 11:03:00+00', '2026-01-01 12:02:00+00', '2026-01-01 12:02:05+00', NULL),
    ('exp', 4, 1, 'RUNNING', '2026-01-01 11:04:00+00', '2026-01-01 12:03:00+00', NULL, 2),
    ('exp', 5, 2, 'PENDING', '2026-01-01 11:05:00+00', '2026-01-01 13:00:00+00', NULL, NULL),
    ('exp', 6, 1, 'TIMED_OUT', '2026-01-01 11:06:00+00', '2026-01-01 12:04:00+00', '2026-01-01 12:04:05+00', NULL),
    ('exp', 7, 2, 'CANCELED', '2026-01-01 11:07:00+00', '2026-01-01 12:05:00+00', '2026-01-01 12:05:05+00', NULL);

-- Trial 1's config: a value of every kind, the extremes included.
INSERT INTO trial_param VALUES
    ('exp', 1, 'b', 'bool', 0.0, 0, NULL),
    ('exp', 1, 'f', 'float', 1e300, NULL, NULL),
    ('exp', 1, 'i', 'int', -9223372036854775808.0, -9223372036854775808, NULL),
    ('exp', 1, 'j', 'json', NULL, NULL, '{"k": [1, 2.5, null]}'),
    ('exp', 1, 'n', 'null', NULL, NULL, NULL),
    ('exp', 1, 's', 'str', NULL, NULL, 'x''y'),
    ('exp', 4, 's', 'str', NULL, NULL, 'running');

-- Status history, in the order the changes were made (seq from the sequence).
INSERT INTO trial_status
SELECT experiment_id, trial_id, nextval('trial_status_seq'), ts::TIMESTAMPTZ, status
FROM (VALUES
    ('exp', 1, '2026-01-01 11:01:00+00', 'PENDING'),
    ('exp', 1, '2026-01-01 12:00:00.123456+00', 'RUNNING'),
    ('exp', 2, '2026-01-01 11:02:00+00', 'PENDING'),
    ('exp', 1, '2026-01-01 12:00:05.123456+00', 'SUCCEEDED'),
    ('exp', 2, '2026-01-01 12:01:00+00', 'RUNNING'),
    ('exp', 2, '2026-01-01 12:01:05+00', 'SUCCEEDED'),
    ('exp', 3, '2026-01-01 11:03:00+00', 'PENDING'),
    ('exp', 3, '2026-01-01 12:02:00+00', 'RUNNING'),
    ('exp', 3, '2026-01-01 12:02:05+00', 'FAILED'),
    ('exp', 4, '2026-01-01 11:04:00+00', 'PENDING'),
    ('exp', 4, '2026-01-01 12:03:00+00', 'RUNNING'),
    ('exp', 5, '2026-01-01 11:05:00+00', 'PENDING'),
    ('exp', 6, '2026-01-01 11:06:00+00', 'PENDING'),
    ('exp', 6, '2026-01-01 12:04:00+00', 'RUNNING'),
    ('exp', 6, '2026-01-01 12:04:05+00', 'TIMED_OUT'),
    ('exp', 7, '2026-01-01 11:07:00+00', 'PENDING'),
    ('exp', 7, '2026-01-01 12:05:05+00', 'CANCELED')
) AS history(experiment_id, trial_id, ts, status)
ORDER BY ts;

INSERT INTO trial_result VALUES
    ('exp', 1, 'detail', 'json', NULL, NULL, '[1, "two"]'),
    ('exp', 1, 'missing', 'null', NULL, NULL, NULL),
    ('exp', 1, 'note', 'str', NULL, NULL, 'fine'),
    ('exp', 1, 'passed', 'bool', 1.0, 1, NULL),
    ('exp', 1, 'score', 'float', 1.5, NULL, NULL),
    ('exp', 1, 'speed', 'int', 100.0, 100, NULL),
    ('exp', 2, 'score', 'float', 0.5, NULL, NULL),
    ('exp', 2, 'speed', 'int', 50.0, 50, NULL),
    ('exp', 3, 'score', 'float', 'NaN', NULL, NULL),
    ('exp', 6, 'score', 'float', 'inf', NULL, NULL);

INSERT INTO trial_telemetry VALUES
    ('exp', 1, '2026-01-01 12:00:00.123456+00', 'cpu', 'float', 0.25, NULL, NULL),
    ('exp', 1, '2026-01-01 12:00:00.123456+00', 'gone', 'null', NULL, NULL, NULL),
    ('exp', 1, '2026-01-01 12:00:00.123456+00', 'ok', 'bool', 1.0, 1, NULL),
    ('exp', 1, '2026-01-01 12:00:00.123456+00', 'phase', 'str', NULL, NULL, 'warm'),
    ('exp', 1, '2026-01-01 12:00:01.123456+00', 'cpu', 'int', 3.0, 3, NULL),
    ('exp', 4, '2026-01-01 12:03:01+00', 'cpu', 'float', 0.75, NULL, NULL);
