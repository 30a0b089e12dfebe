"""Reads a table written by Floe with PyIceberg, an independent Iceberg implementation.

Usage: read_table.py CATALOG_URI WAREHOUSE NAMESPACE.TABLE [KEY=VALUE ...]
CATALOG_URI is an SQLAlchemy URI (SQL catalog) or an http:// URL (REST catalog); the
KEY=VALUE pairs are catalog properties, such as s3.endpoint or credential, and
`rows=all`, which prints every row as well.
Prints JSON: the order ids (or, for a dead-letter table, the record keys and error
kinds), the current snapshot's summary and operation, the partition spec, and the table's
shape: snapshots, schemas, manifests of the current snapshot, live data files.
"""
import json
import sys

from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.catalog.sql import SqlCatalog

uri, warehouse, name = sys.argv[1:4]
props = dict(arg.split("=", 1) for arg in sys.argv[4:])
# `rows=all`: print every row too (for small tables with nested columns).
all_rows = props.pop("rows", None) == "all"
if uri.startswith("http"):
    catalog = RestCatalog("lake", uri=uri, warehouse=warehouse, **props)
else:
    catalog = SqlCatalog("lake", uri=uri, warehouse=warehouse, **props)
table = catalog.load_table(name)
rows = table.scan().to_arrow()
snapshot = table.current_snapshot()
schema = table.schema()
spec = ", ".join(
    f"{f.name}: {f.transform}({schema.find_field(f.source_id).name})" for f in table.spec().fields
)
names = rows.schema.names
print(json.dumps({
    "ids": rows.column("order_id").to_pylist() if "order_id" in names else [],
    "keys": [k.decode() if k else None for k in rows.column("key").to_pylist()] if "key" in names else [],
    "kinds": rows.column("error_kind").to_pylist() if "error_kind" in names else [],
    "summary": dict(snapshot.summary.additional_properties) if snapshot else {},
    "partition_spec": spec,
    "operation": snapshot.summary.operation.value if snapshot else None,
    "snapshots": len(table.metadata.snapshots),
    "schemas": len(table.metadata.schemas),
    "manifests": len(snapshot.manifests(table.io)) if snapshot else 0,
    "data_files": len(table.inspect.files()) if snapshot else 0,
    **({"rows": rows.to_pylist()} if all_rows else {}),
}, default=str))
