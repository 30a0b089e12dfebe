-- The quickstart in Avro: orders in the Confluent wire format, their schema in a Schema
-- Registry, cleaned and partitioned by day into Iceberg.
--
-- Without KAFKA_BOOTSTRAP and SCHEMA_REGISTRY_URL set, the source uses the broker and the
-- Schema Registry embedded in `floe`; the built-in generator registers the orders' Avro
-- schema and writes the orders through it. Set both to read a real cluster.

SET 'job.name' = 'avro-quickstart';

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
  order_ts    TIMESTAMP NOT NULL,
  kafka_partition INT    METADATA FROM 'partition',
  kafka_offset    BIGINT METADATA FROM 'offset'
) WITH (
  'connector' = 'kafka',
  'topic' = 'orders_avro',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP:-embedded}',
  'properties.group.id' = 'floe-avro-quickstart',
  'format' = 'avro-confluent',
  'avro-confluent.url' = '${SCHEMA_REGISTRY_URL:-embedded}',
  'scan.startup.mode' = 'earliest-offset',
  -- Used only with the embedded broker:
  'embedded.generator' = 'orders',
  'embedded.records' = '${QUICKSTART_RECORDS:-200000}',
  'embedded.rate' = '${QUICKSTART_RATE:-25000}',
  'embedded.partitions' = '4'
);

CREATE TABLE lake.sales.orders_avro (
  order_id    BIGINT NOT NULL,
  customer_id BIGINT,
  amount      DECIMAL(12, 2),
  currency    VARCHAR,
  order_ts    TIMESTAMP NOT NULL,
  order_date  DATE,
  kafka_partition INT,
  kafka_offset    BIGINT
) PARTITIONED BY (day(order_ts))
  WITH ('commit.interval' = '2s');

INSERT INTO lake.sales.orders_avro
SELECT order_id, customer_id, amount, upper(trim(currency)), order_ts, CAST(order_ts AS DATE),
       kafka_partition, kafka_offset
FROM orders
WHERE amount > 0;
