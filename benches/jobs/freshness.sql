-- Freshness: q0 with each record's partition, offset and Kafka timestamp kept, so the
-- time from produce to a visible snapshot can be measured per record.
SET 'job.name' = 'bench-freshness';
CREATE CATALOG lake WITH (
  'type' = 'sql',
  'uri' = 'sqlite://${BENCH_HOME}/catalog.db',
  'warehouse' = 'file://${BENCH_HOME}/warehouse'
);

CREATE SOURCE bids (
  auction  BIGINT NOT NULL,
  bidder   BIGINT NOT NULL,
  price    BIGINT NOT NULL,
  channel  VARCHAR,
  url      VARCHAR,
  dateTime TIMESTAMP NOT NULL,
  extra    VARCHAR,
  kafka_partition INT    METADATA FROM 'partition',
  kafka_offset    BIGINT METADATA FROM 'offset',
  kafka_ts        TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'
) WITH (
  'connector' = 'kafka',
  'topic' = '${BENCH_TOPIC:-bids}',
  'format' = 'json',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}',
  'properties.group.id' = '${BENCH_GROUP:-floe-bench}',
  'scan.startup.mode' = 'earliest-offset'
);

CREATE TABLE lake.bench.fresh (
  auction BIGINT NOT NULL, price BIGINT NOT NULL, kafka_partition INT, kafka_offset BIGINT,
  kafka_ts TIMESTAMP WITH TIME ZONE
) WITH ('commit.interval' = '${COMMIT_INTERVAL:-1s}');

INSERT INTO lake.bench.fresh
SELECT auction, price, kafka_partition, kafka_offset, kafka_ts FROM bids;
