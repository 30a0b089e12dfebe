-- expect-error: INSERT INTO lake.s.t: column d is DATE but the query's column ts is VARCHAR
-- expect-error: write CAST(ts AS DATE)
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (ts VARCHAR) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');
CREATE TABLE lake.s.t (d DATE);
INSERT INTO lake.s.t SELECT ts FROM s;
