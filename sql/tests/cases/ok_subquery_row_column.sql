-- A subquery in FROM, with an alias and a wildcard, keeps rows traceable.
-- input: {"a": 1, "b": "x"}
-- input: {"a": 2, "b": "y"}
-- expect: {"a": 20, "b": "y"}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (a BIGINT, b VARCHAR) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.t (a BIGINT, b VARCHAR);
INSERT INTO lake.sales.t SELECT q.a * 10, q.b FROM (SELECT * FROM s WHERE a > 1) AS q;
