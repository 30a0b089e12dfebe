-- expect-error: the query produces 2 columns but the table has 1 (amount)
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (amount DOUBLE);
INSERT INTO lake.s.t SELECT amount, currency FROM orders;
