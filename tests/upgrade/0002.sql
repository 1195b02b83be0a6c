-- Rows a store could hold from schema version 2 on (sql/schema/0002_merge.sql): a merge.
--
-- tests/test_upgrade.py runs this file on a store migrated to version 2
-- (after 0001.sql ran at version 1). Never edit it: add a file for the
-- rows a later schema makes possible instead.
--
-- Experiment 'warm' declares exp's tunables plus 'level' and exp's
-- objectives, holds no trial of its own, and merges exp in: a full load
-- of 'warm' gives exp's completed trials with 'level' imputed.

INSERT INTO experiment VALUES
    ('warm', 'written at schema 2', 'warm.jsonc', NULL, NULL, 100, '2026-01-02 09:00:00+00');

INSERT INTO objective VALUES ('warm', 'score', 'min', 0), ('warm', 'speed', 'max', 1);

INSERT INTO experiment_tunable VALUES
    ('warm', 'anything', 'null', NULL, NULL, NULL),
    ('warm', 'count', 'int', 3.0, 3, NULL),
    ('warm', 'flag', 'bool', 1.0, 1, NULL),
    ('warm', 'level', 'int', 1.0, 1, NULL),
    ('warm', 'mode', 'str', NULL, NULL, 'a'),
    ('warm', 'ratio', 'float', 0.5, NULL, NULL);

INSERT INTO experiment_merge VALUES ('warm', 'exp', '2026-01-02 09:00:01+00');
