"""A lookup table kept by another tool: PyIceberg creates it and replaces its rows.

Usage: lookup_table.py CATALOG_URI WAREHOUSE NAMESPACE.TABLE CODE=RATE [CODE=RATE ...]
Creates the table (code VARCHAR, rate DOUBLE) if it does not exist, then replaces its
rows with the given ones in one snapshot. Prints the new snapshot id.
"""
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError

uri, warehouse, name = sys.argv[1:4]
pairs = [arg.split("=", 1) for arg in sys.argv[4:]]
catalog = SqlCatalog("lake", uri=uri, warehouse=warehouse)
schema = pa.schema([pa.field("code", pa.string()), pa.field("rate", pa.float64())])
try:
    table = catalog.load_table(name)
except NoSuchTableError:
    try:
        catalog.create_namespace(name.rsplit(".", 1)[0])
    except NamespaceAlreadyExistsError:
        pass
    table = catalog.create_table(name, schema=schema)
rows = pa.Table.from_pylist([{"code": c, "rate": float(r)} for c, r in pairs], schema=schema)
table.overwrite(rows)
print(catalog.load_table(name).current_snapshot().snapshot_id)
