-- expect-error: joins the streams a and b: a join between two streams is not supported
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE a (x INT) WITH ('connector' = 'kafka', 'topic' = 'a', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');
CREATE SOURCE b (x INT) WITH ('connector' = 'kafka', 'topic' = 'b', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');
CREATE TABLE lake.s.t (x INT);
INSERT INTO lake.s.t SELECT a.x FROM a JOIN b ON a.x = b.x;
