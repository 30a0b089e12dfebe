-- Bids enriched with their auction: a lookup join against a compacted topic of 100 000
-- auctions keyed by id (the bench produces it before the run), read to its end at start.
SET 'job.name' = 'bench-enrich-topic';
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

CREATE SOURCE auctions (
  id       BIGINT NOT NULL,
  itemName VARCHAR,
  seller   BIGINT,
  category BIGINT
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'auctions',
  'format' = 'json',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}'
);

CREATE TABLE lake.bench.enrich (
  auction BIGINT NOT NULL, bidder BIGINT NOT NULL, price BIGINT NOT NULL, channel VARCHAR,
  date_time TIMESTAMP NOT NULL, seller BIGINT, category BIGINT, item_name VARCHAR
) WITH ('commit.interval' = '${COMMIT_INTERVAL:-5s}');

INSERT INTO lake.bench.enrich
SELECT b.auction, b.bidder, b.price, b.channel, b.dateTime, a.seller, a.category, a.itemName
FROM bids AS b
JOIN auctions FOR SYSTEM_TIME AS OF b.proc_time AS a ON b.auction = a.id;
