-- expect-error: lookup.refresh-interval must be at least 100ms
-- expect-error-at: 3:33
SET 'lookup.refresh-interval' = '10ms';
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE a (x INT) WITH ('connector' = 'kafka', 'topic' = 'a', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');
CREATE TABLE lake.s.t (x INT);
INSERT INTO lake.s.t SELECT x FROM a;
