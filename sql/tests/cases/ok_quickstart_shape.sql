-- The canonical job shape parses and plans; the SELECT runs over records.
-- input: {"order_id": 1, "amount": 12.5, "currency": " eur ", "order_ts": "2026-11-01T10:00:00Z"}
-- input: {"order_id": 2, "amount": -1, "currency": "usd", "order_ts": "2026-11-02T10:00:00Z"}
-- input: {"order_id": 3, "amount": 3, "currency": null, "order_ts": "2026-11-02T23:59:59"}
-- expect: {"order_id": 1, "amount": 12.5, "currency": "EUR", "order_date": "2026-11-01"}
-- expect: {"order_id": 3, "amount": 3.0, "order_date": "2026-11-02"}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.orders_clean (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_date DATE)
  PARTITIONED BY (day(order_date)) WITH ('commit.interval' = '5s');
INSERT INTO lake.sales.orders_clean
SELECT order_id, amount, upper(trim(currency)), CAST(order_ts AS DATE) FROM orders WHERE amount > 0;
