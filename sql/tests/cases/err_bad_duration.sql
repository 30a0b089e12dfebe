-- expect-error: option 'commit.interval' of table lake.s.t: 'soon' is not a duration
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT) WITH ('commit.interval' = 'soon');
INSERT INTO lake.s.t SELECT order_id FROM orders;
