-- expect-error: column shape: type GEOMETRY is not supported
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE TABLE lake.s.t (shape GEOMETRY);
