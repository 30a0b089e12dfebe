-- An INSERT's SELECT runs per micro-batch, so it must be row-wise.
-- expect-error: must work row by row; aggregates and GROUP BY
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (k VARCHAR, amount DOUBLE) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.t (k VARCHAR, total DOUBLE);
INSERT INTO lake.sales.t SELECT k, sum(amount) FROM s GROUP BY k;
