-- expect-error: table lake.s.t: 'maintenance.max-manifests' must be at least 2
-- expect-error-at: 5:1
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (x INT) WITH ('connector' = 'kafka', 'format' = 'json', 'topic' = 'orders', 'properties.bootstrap.servers' = 'k:1');
CREATE TABLE lake.s.t (x INT) WITH ('maintenance.max-manifests' = '1', 'maintenance.interval' = '10s');
INSERT INTO lake.s.t SELECT x FROM orders;
