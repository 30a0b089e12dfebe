-- The dead-letter policy without a dead-letter table.
-- expect-error: needs the option 'dead-letter.table'
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (amount DOUBLE) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.t (amount DOUBLE, CHECK (amount > 0)) WITH ('on-violation' = 'dead-letter');
INSERT INTO lake.sales.t SELECT amount FROM s;
