-- With 'schema.evolution' = 'add-columns', SELECT * maps by name, and the source's
-- columns the table lacks become new (nullable) columns; an undelivered one is NULL.
-- input: {"currency": "GBP", "order_id": 7, "amount": 1.5, "qty": 3}
-- expect: {"order_id": 7, "amount": 1.5, "currency": "GBP", "qty": 3}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (currency VARCHAR, order_id BIGINT NOT NULL, amount DOUBLE, qty BIGINT) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT NOT NULL, amount DOUBLE, gone VARCHAR, qty INT) WITH ('schema.evolution' = 'add-columns');
INSERT INTO lake.s.t SELECT * FROM orders;
