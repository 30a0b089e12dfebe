"""Reads a table with DuckDB's Iceberg reader, a third implementation beside Floe's and
PyIceberg's: DuckDB plans from the manifest list and manifests itself.

Usage: read_duckdb.py CATALOG_URI WAREHOUSE NAMESPACE.TABLE
The catalog (SQL) is asked only where the table's current metadata file is; the
extensions are loaded from their PyPI packages, never downloaded.
Prints JSON: the order ids, sorted.
"""
import glob
import json
import os
import sys

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg
from pyiceberg.catalog.sql import SqlCatalog

uri, warehouse, name = sys.argv[1:4]
location = SqlCatalog("lake", uri=uri, warehouse=warehouse).load_table(name).metadata_location
con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
for package, ext in ((duckdb_extension_avro, "avro"), (duckdb_extension_iceberg, "iceberg")):
    root = os.path.dirname(package.__file__)
    path = glob.glob(os.path.join(root, "extensions", "*", f"{ext}.duckdb_extension"))[0]
    con.execute(f"LOAD '{path}'")
path = location.removeprefix("file://")
ids = [r[0] for r in con.execute(f"SELECT order_id FROM iceberg_scan('{path}') ORDER BY order_id").fetchall()]
print(json.dumps({"ids": ids}))
