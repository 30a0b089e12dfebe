-- expect-error: an Iceberg table declares its columns
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t WITH ('commit.interval' = '2s');
INSERT INTO lake.s.t SELECT order_id FROM orders;
