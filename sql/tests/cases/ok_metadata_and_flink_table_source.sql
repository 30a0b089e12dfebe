-- A Flink-style CREATE TABLE with a connector is a source; METADATA columns parse.
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE TABLE clicks (
  url VARCHAR,
  p INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset',
  ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
  k BYTES METADATA FROM 'key',
  topic VARCHAR METADATA
) WITH ('connector' = 'kafka', 'topic' = 'clicks', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092',
        'properties.security.protocol' = 'SASL_SSL', 'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '1700000000000');
CREATE TABLE lake.web.clicks (url VARCHAR, p INT, kafka_offset BIGINT, ts TIMESTAMP WITH TIME ZONE, topic VARCHAR)
  PARTITIONED BY (hour(ts), bucket(8, url), truncate(4, topic));
INSERT INTO lake.web.clicks SELECT url, p, kafka_offset, ts, topic FROM clicks;
