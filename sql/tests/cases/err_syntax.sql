-- expect-error: err_syntax.sql:5:44: Expected: ), found: FROM
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
-- a missing parenthesis
INSERT INTO lake.s.t SELECT upper(currency FROM orders;
