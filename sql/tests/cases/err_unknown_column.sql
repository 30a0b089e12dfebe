-- expect-error: No field named amout
-- expect-error-at: 5:1
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
INSERT INTO lake.s.t SELECT amout FROM orders;
CREATE TABLE lake.s.t (amount DOUBLE);
