"""What a table looks like to a reader, timed: PyIceberg plans a scan and reads it.

Usage: table_shape.py CATALOG_URI WAREHOUSE NAMESPACE.TABLE
Prints JSON: snapshots, manifests of the current snapshot, live data files (and the most
in one partition), the size of the current metadata.json, rows, and the seconds PyIceberg
took to load the table and plan the scan, and to read it.
"""
import collections
import json
import os
import sys
import time

from pyiceberg.catalog.sql import SqlCatalog

uri, warehouse, name = sys.argv[1:4]
t0 = time.perf_counter()
table = SqlCatalog("lake", uri=uri, warehouse=warehouse).load_table(name)
tasks = list(table.scan().plan_files())
t1 = time.perf_counter()
rows = table.scan().to_arrow().num_rows
t2 = time.perf_counter()
snapshot = table.current_snapshot()
per_partition = collections.Counter(str(task.file.partition) for task in tasks)
print(json.dumps({
    "snapshots": len(table.metadata.snapshots),
    "manifests": len(snapshot.manifests(table.io)) if snapshot else 0,
    "data_files": len(tasks),
    "max_files_per_partition": max(per_partition.values(), default=0),
    "metadata_json_bytes": os.path.getsize(table.metadata_location.removeprefix("file://")),
    "rows": rows,
    "plan_seconds": round(t1 - t0, 3),
    "read_seconds": round(t2 - t1, 3),
}))
