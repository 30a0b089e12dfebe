-- Shift-left quality: rules enforced in the stream, bad records kept with the reason.
--
-- The embedded feed makes one record in 20 bad, taking turns through every kind: not
-- JSON, truncated, invalid UTF-8, wrong types, missing fields, too large, an unknown
-- currency, a customer id that does not fit the table. Good records land in
-- lake.sales.orders_checked; bad ones in lake.quality.orders_dlq with the raw bytes.

SET 'job.name' = 'quality';

CREATE CATALOG lake WITH (
  'type'      = 'sql',
  'uri'       = 'sqlite://${FLOE_HOME:-./floe-data}/catalog.db',
  'warehouse' = 'file://${FLOE_HOME:-./floe-data}/warehouse'
);

CREATE SOURCE orders (
  order_id    BIGINT NOT NULL,
  customer_id BIGINT,
  amount      DECIMAL(12, 2),
  currency    VARCHAR,
  order_ts    TIMESTAMP
) WITH (
  'connector' = 'kafka',
  'topic' = 'orders',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP:-embedded}',
  'format' = 'json',
  'source.max-record-bytes' = '1KB',
  'embedded.records' = '${QUALITY_RECORDS:-100000}',
  'embedded.rate' = '${QUALITY_RATE:-25000}',
  'embedded.dirty-every' = '20'
);

CREATE TABLE lake.sales.orders_checked (
  order_id    BIGINT NOT NULL,
  customer_id SMALLINT,
  amount      DECIMAL(12, 2),
  currency    VARCHAR,
  order_ts    TIMESTAMP NOT NULL,
  CONSTRAINT positive_amount CHECK (amount > 0),
  CONSTRAINT known_currency  CHECK (currency IN ('EUR', 'USD', 'GBP'))
) PARTITIONED BY (day(order_ts))
  WITH (
    'commit.interval'   = '2s',
    'on-violation'      = 'dead-letter',
    'dead-letter.table' = 'lake.quality.orders_dlq'
  );

INSERT INTO lake.sales.orders_checked
SELECT order_id, CAST(customer_id AS SMALLINT), amount, upper(trim(currency)), order_ts
FROM orders
WHERE customer_id IS NULL OR customer_id % 13 <> 0;
