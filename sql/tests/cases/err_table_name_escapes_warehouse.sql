-- expect-error: '..' cannot be part of a table name
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE TABLE lake."..".t (id BIGINT);
