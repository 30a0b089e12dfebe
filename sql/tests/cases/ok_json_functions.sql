-- JSON held in a VARCHAR column is taken apart in SQL: json_get_str and json_get_int with
-- a path, and the -> / ->> operators; a missing key or a value that is not JSON gives NULL.
-- input: {"id": 1, "payload": "{\"customer\": {\"name\": \"Ada\", \"segment\": \"gold\"}, \"n\": 3}"}
-- input: {"id": 2, "payload": "not json"}
-- input: {"id": 3, "payload": "{\"n\": 4}"}
-- expect: {"id": 1, "name": "Ada", "segment": "gold", "n": 3}
-- expect: {"id": 2}
-- expect: {"id": 3, "n": 4}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE events (id BIGINT NOT NULL, payload VARCHAR)
  WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.raw.events_flat (
  id      BIGINT NOT NULL,
  name    VARCHAR,
  segment VARCHAR,
  n       BIGINT
);
INSERT INTO lake.raw.events_flat
SELECT id, json_get_str(payload, 'customer', 'name'), payload->'customer'->>'segment', json_get_int(payload, 'n')
FROM events;
