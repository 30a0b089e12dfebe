-- Clean and validate: casts, trims, CHECK rules, a dead-letter table, a target
-- partitioned by hour.
SET 'job.name' = 'bench-validate';
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

CREATE TABLE lake.bench.validated (
  auction   BIGINT NOT NULL,
  bidder    BIGINT NOT NULL,
  price_usd DECIMAL(12, 2) NOT NULL,
  channel   VARCHAR NOT NULL,
  url       VARCHAR,
  date_time TIMESTAMP NOT NULL,
  CONSTRAINT positive_price CHECK (price_usd > 0),
  CONSTRAINT known_channel  CHECK (channel IN ('google', 'facebook', 'baidu', 'apple'))
) PARTITIONED BY (hour(date_time))
  WITH (
    'commit.interval'   = '${COMMIT_INTERVAL:-5s}',
    'dead-letter.table' = 'lake.bench.validated_dlq'
  );

INSERT INTO lake.bench.validated
SELECT auction, bidder, CAST(price AS DECIMAL(12, 2)) / 100, lower(trim(channel)), trim(url), dateTime
FROM bids;
