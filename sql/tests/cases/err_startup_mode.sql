-- expect-error: 'earliest' is not one of earliest-offset, latest-offset, timestamp, group-offsets; did you mean 'earliest-offset'?
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (a INT) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1', 'scan.startup.mode' = 'earliest');
