-- expect-error: has no name
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DOUBLE) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT NOT NULL) WITH ('schema.evolution' = 'add-columns');
INSERT INTO lake.s.t SELECT order_id, amount * 2 FROM orders;
