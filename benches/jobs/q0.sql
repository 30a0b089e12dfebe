-- Nexmark q0, pass-through: every bid as it is.
SET 'job.name' = 'bench-q0';
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

CREATE TABLE lake.bench.q0 (
  auction BIGINT NOT NULL, bidder BIGINT NOT NULL, price BIGINT NOT NULL, channel VARCHAR,
  url VARCHAR, date_time TIMESTAMP NOT NULL, extra VARCHAR
) WITH ('commit.interval' = '${COMMIT_INTERVAL:-5s}');

INSERT INTO lake.bench.q0
SELECT auction, bidder, price, channel, url, dateTime, extra FROM bids;
