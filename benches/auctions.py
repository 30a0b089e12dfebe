"""Writes the auctions lookup table of the enrich benchmark job.

Usage: auctions.py HOME ROWS
Creates ref.auctions (id, seller, category, item_name, reserve) in the SQLite catalog of
HOME with ROWS auctions whose ids start at 1000, the first auction id bids name.
"""
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

home, rows = sys.argv[1], int(sys.argv[2])
catalog = SqlCatalog("lake", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
catalog.create_namespace("ref")
ids = pa.array(range(1000, 1000 + rows), type=pa.int64())
table = pa.table({
    "id": ids,
    "seller": pa.array([(i * 7919) % 50_000 for i in range(rows)], type=pa.int64()),
    "category": pa.array([10 + i % 20 for i in range(rows)], type=pa.int64()),
    "item_name": pa.array([f"item-{i}" for i in range(rows)], type=pa.string()),
    "reserve": pa.array([(i * 31) % 100_000 for i in range(rows)], type=pa.int64()),
})
catalog.create_table("ref.auctions", schema=table.schema).append(table)
