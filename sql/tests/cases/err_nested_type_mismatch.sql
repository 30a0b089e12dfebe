-- expect-error: lines
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (id BIGINT NOT NULL, lines ARRAY<ROW<sku VARCHAR, qty INT>>)
  WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.orders (id BIGINT NOT NULL, lines ARRAY<VARCHAR>);
INSERT INTO lake.sales.orders SELECT id, lines FROM orders;
