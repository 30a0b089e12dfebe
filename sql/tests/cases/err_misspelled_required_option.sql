-- expect-error: unknown option 'formt' for source orders; did you mean 'format'?
-- expect-error-at: 5:59
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
-- 'format' is required; the typo is what to point at
CREATE SOURCE orders (x INT) WITH ('connector' = 'kafka', 'formt' = 'json', 'topic' = 'orders', 'properties.bootstrap.servers' = 'k:1');
CREATE TABLE lake.s.t (x INT);
INSERT INTO lake.s.t SELECT x FROM orders;
