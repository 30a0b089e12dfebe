-- expect-error: sources a and b both read topic 'orders'
-- expect-error-at: 6:1
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE a (x INT) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');
-- the same topic name on another cluster: the tables' offsets would still collide
CREATE SOURCE b (x INT) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'other:1');
CREATE TABLE lake.s.t (x INT);
CREATE TABLE lake.s.u (x INT);
INSERT INTO lake.s.t SELECT x FROM a;
INSERT INTO lake.s.u SELECT x FROM b;
