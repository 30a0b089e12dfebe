-- expect-error: source orders declares no payload columns: a 'json' source declares the fields it reads
-- expect-error-at: 4:1
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT);
INSERT INTO lake.s.t SELECT order_id FROM orders;
