-- CHECK constraints are evaluated over the INSERT's output; NULL passes, as in SQL;
-- a row is reported for the first constraint it breaks. SELECT * leaves the hidden row
-- column out.
-- input: {"order_id": 1, "amount": 12.5, "currency": "EUR"}
-- input: {"order_id": 2, "amount": -1, "currency": "USD"}
-- input: {"order_id": 3, "amount": 3, "currency": "XYZ"}
-- input: {"order_id": 4, "amount": null, "currency": null}
-- input: {"order_id": 5, "amount": 0, "currency": "ABC"}
-- expect: {"order_id": 1, "amount": 12.5, "currency": "EUR"}
-- expect: {"order_id": 4}
-- expect-violation: positive_amount {"order_id": 2, "amount": -1.0, "currency": "USD"}
-- expect-violation: known_currency {"order_id": 3, "amount": 3.0, "currency": "XYZ"}
-- expect-violation: positive_amount {"order_id": 5, "amount": 0.0, "currency": "ABC"}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2), currency VARCHAR)
  WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.orders_clean (
  order_id BIGINT NOT NULL,
  amount   DECIMAL(12, 2),
  currency VARCHAR,
  CONSTRAINT positive_amount CHECK (amount > 0),
  CONSTRAINT known_currency  CHECK (currency IN ('EUR', 'USD', 'GBP')) NOT ENFORCED
) WITH (
  'on-violation' = 'dead-letter',
  'on-violation.known_currency' = 'drop',
  'on-violation.malformed' = 'fail',
  'dead-letter.table' = 'lake.quality.orders_dlq'
);
INSERT INTO lake.sales.orders_clean SELECT * FROM orders;
