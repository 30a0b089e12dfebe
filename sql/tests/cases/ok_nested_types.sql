-- Nested columns (ROW, ARRAY, MAP) are declared in Flink SQL's spelling, selected whole
-- or taken apart in SQL (a field, an element, a map value, a length), and checked by rules.
-- input: {"id": 1, "customer": {"name": "Ada", "segment": "gold"}, "lines": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}], "attrs": {"channel": "web"}}
-- input: {"id": 2, "customer": {"name": "Bo"}, "lines": [], "attrs": {}}
-- expect: {"id": 1, "customer": {"name": "Ada", "segment": "gold"}, "segment": "gold", "line_count": 2, "first_sku": "a-1", "channel": "web", "lines": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}]}
-- expect-violation: has_lines {"id": 2, "customer": {"name": "Bo"}, "line_count": 0, "lines": []}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (
  id       BIGINT NOT NULL,
  customer ROW<name VARCHAR NOT NULL, segment VARCHAR>,
  lines    ARRAY<ROW<sku VARCHAR NOT NULL, qty INT>>,
  attrs    MAP<VARCHAR, VARCHAR>
) WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.sales.orders (
  id         BIGINT NOT NULL,
  customer   ROW(name VARCHAR NOT NULL, segment VARCHAR),
  segment    VARCHAR,
  line_count INT,
  first_sku  VARCHAR,
  channel    VARCHAR,
  lines      ARRAY<ROW<sku VARCHAR NOT NULL, qty INT>>,
  CONSTRAINT has_lines CHECK (line_count > 0)
) WITH ('on-violation' = 'drop');
INSERT INTO lake.sales.orders
SELECT id, customer, customer.segment, cardinality(lines), lines[1]['sku'], attrs['channel'], lines
FROM orders;
