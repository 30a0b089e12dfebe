-- expect-error: column tags: type
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE TABLE lake.s.t (tags ARRAY<VARCHAR>);
