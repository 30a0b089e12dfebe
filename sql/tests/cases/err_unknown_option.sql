-- expect-error: unknown option 'comit.interval' for table lake.s.t; did you mean 'commit.interval'?
-- expect-error-at: 6:47
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
-- a typo in an option name
CREATE TABLE lake.s.t (order_id BIGINT) WITH ('comit.interval' = '5s');
INSERT INTO lake.s.t SELECT order_id FROM orders;
