-- expect-error: variable FLOE_CASE_UNSET_VARIABLE is not set
-- expect-error-at: 4:41
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE s (a INT) WITH ('topic' = '${FLOE_CASE_UNSET_VARIABLE}', 'connector' = 'kafka');
