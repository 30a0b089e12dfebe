-- DataFusion's scalar functions are available: string, math, date, regex, hashing.
-- input: {"order_id": 10, "amount": 2.5, "currency": "abc", "order_ts": "2026-11-01T10:30:00"}
-- expect: {"a": "ABC", "b": 3, "c": "2026-11-01T10:00:00", "d": true, "e": "900150983cd24fb0d6963f7d28e17f72", "f": 3}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.f (a VARCHAR, b BIGINT, c TIMESTAMP, d BOOLEAN, e VARCHAR, f INT);
INSERT INTO lake.s.f
SELECT upper(currency), CAST(ceil(amount) AS BIGINT), date_trunc('hour', order_ts), regexp_like(currency, '^a'),
       md5(currency), length(currency)
FROM orders;
