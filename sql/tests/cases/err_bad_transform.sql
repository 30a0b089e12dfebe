-- expect-error: unknown partition transform 'weekly'
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE TABLE lake.s.t (ts TIMESTAMP) PARTITIONED BY (weekly(ts));
