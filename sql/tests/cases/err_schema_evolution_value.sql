-- expect-error: 'add-column' is not one of none, add-columns; did you mean 'add-columns'?
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT NOT NULL) WITH ('schema.evolution' = 'add-column');
INSERT INTO lake.s.t SELECT * FROM orders;
