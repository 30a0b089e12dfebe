-- A policy override for a rule that does not exist names the nearest one.
-- expect-error: did you mean 'positive_amount'?
-- expect-error-at: 7:9
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (amount DOUBLE) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.t (amount DOUBLE, CONSTRAINT positive_amount CHECK (amount > 0))
  WITH ('on-violation.positive_amout' = 'drop');
INSERT INTO lake.sales.t SELECT amount FROM s;
