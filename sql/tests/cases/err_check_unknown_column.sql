-- A CHECK names a column the table does not have.
-- expect-error: CHECK positive of lake.sales.t
-- expect-error: amt
-- expect-error-at: 8:3
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (amount DOUBLE) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.t (amount DOUBLE,
  CONSTRAINT positive CHECK (amt > 0));
INSERT INTO lake.sales.t SELECT amount FROM s;
