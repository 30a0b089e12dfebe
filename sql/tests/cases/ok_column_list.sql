-- An INSERT column list maps by name; unlisted nullable columns are NULL.
-- input: {"order_id": 7, "amount": 1, "currency": "GBP"}
-- expect: {"order_id": 7, "note": "GBP"}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT NOT NULL, amount DOUBLE, note VARCHAR);
INSERT INTO lake.s.t (note, order_id) SELECT currency, order_id FROM orders;
