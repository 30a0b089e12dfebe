-- expect-error: source orders takes its columns from its writer schema, which was not read before planning
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (k VARCHAR METADATA FROM 'key') WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'avro-confluent', 'avro-confluent.url' = 'http://127.0.0.1:1', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (k VARCHAR);
INSERT INTO lake.s.t SELECT k FROM orders;
