"""Another tool on Floe's tables: PyIceberg appends, deletes and expires snapshots.

Usage: foreign_writer.py CATALOG_URI WAREHOUSE COMMAND NAMESPACE.TABLE [ARGS ...]
  append TABLE FIRST_ID COUNT   appends COUNT rows with order_id FIRST_ID.. (other
                                columns: a fixed timestamp, nulls where allowed)
  delete TABLE FROM_ID          deletes the rows with order_id >= FROM_ID
  expire TABLE                  expires every snapshot but the current one; prints how
                                many snapshots are left
  rollback TABLE MILLIS         makes the newest snapshot older than MILLIS (epoch
                                milliseconds) the current one
  rename TABLE OLD NEW          renames a column (its field id stays)
  drop-column TABLE NAME        drops a column
  create-v1 TABLE               creates the orders job's orders_clean table as a
                                format-version 1 table (day(order_ts) partitions)
"""
import datetime
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import GreaterThanOrEqual

uri, warehouse, command, name = sys.argv[1:5]
args = sys.argv[5:]
catalog = SqlCatalog("lake", uri=uri, warehouse=warehouse)
table = catalog.load_table(name) if command != "create-v1" else None


def column(field, ids):
    """Values for one column of the appended rows."""
    if field.name == "order_id":
        return pa.array(ids, type=field.type)
    if pa.types.is_timestamp(field.type):
        ts = datetime.datetime(2026, 11, 23, 10, 0, 0)
        return pa.array([ts] * len(ids), type=field.type)
    if pa.types.is_date(field.type):
        return pa.array([datetime.date(2026, 11, 23)] * len(ids), type=field.type)
    if pa.types.is_decimal(field.type):
        return pa.array([None] * len(ids), type=field.type)
    if not field.nullable:
        raise SystemExit(f"no value for the required column {field.name}")
    return pa.nulls(len(ids), type=field.type)


if command == "append":
    first, count = int(args[0]), int(args[1])
    ids = list(range(first, first + count))
    schema = table.schema().as_arrow()
    rows = pa.Table.from_arrays([column(f, ids) for f in schema], schema=schema)
    table.append(rows)
elif command == "delete":
    table.delete(GreaterThanOrEqual("order_id", int(args[0])))
elif command == "expire":
    current = table.current_snapshot().snapshot_id
    old = [s.snapshot_id for s in table.snapshots() if s.snapshot_id != current]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    print(len(catalog.load_table(name).snapshots()))
elif command == "rollback":
    table.manage_snapshots().rollback_to_timestamp(int(args[0])).commit()
elif command == "rename":
    with table.update_schema() as update:
        update.rename_column(args[0], args[1])
elif command == "drop-column":
    with table.update_schema() as update:
        update.delete_column(args[0])
elif command == "create-v1":
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import DayTransform
    from pyiceberg.types import (
        DateType, DecimalType, IntegerType, LongType, NestedField, StringType, TimestampType,
    )
    schema = Schema(
        NestedField(1, "order_id", LongType(), required=True),
        NestedField(2, "customer_id", LongType(), required=False),
        NestedField(3, "amount", DecimalType(12, 2), required=False),
        NestedField(4, "currency", StringType(), required=False),
        NestedField(5, "order_ts", TimestampType(), required=True),
        NestedField(6, "order_date", DateType(), required=False),
        NestedField(7, "part", IntegerType(), required=False),
        NestedField(8, "off", LongType(), required=False),
    )
    spec = PartitionSpec(PartitionField(5, 1000, DayTransform(), "order_ts_day"))
    namespace = name.split(".")[0]
    catalog.create_namespace_if_not_exists(namespace)
    catalog.create_table(name, schema, partition_spec=spec, properties={"format-version": "1"})
else:
    raise SystemExit(f"unknown command {command}")
