-- The long-run job: Nexmark bids committed every 200 ms for hours, into a table
-- partitioned by bucket, with maintenance on or off ('${MAINTENANCE}').
SET 'job.name' = 'bench-long-run';
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
  extra    VARCHAR
) WITH (
  'connector' = 'kafka',
  'topic' = '${BENCH_TOPIC:-bids}',
  'format' = 'json',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}',
  'properties.group.id' = '${BENCH_GROUP:-floe-bench}',
  'scan.startup.mode' = 'earliest-offset'
);

CREATE TABLE lake.bench.long_run (
  auction BIGINT NOT NULL, bidder BIGINT NOT NULL, price BIGINT NOT NULL, channel VARCHAR,
  url VARCHAR, date_time TIMESTAMP NOT NULL, extra VARCHAR
) PARTITIONED BY (bucket(4, auction)) WITH (
  'commit.interval' = '200ms',
  'maintenance.enabled' = '${MAINTENANCE}',
  'maintenance.interval' = '10s',
  'maintenance.snapshot-retention' = '1m',
  'maintenance.min-snapshots' = '10',
  'maintenance.orphan-age' = '10m'
);

INSERT INTO lake.bench.long_run
SELECT auction, bidder, price, channel, url, dateTime, extra FROM bids;
