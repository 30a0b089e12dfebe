"""The pipeline a data engineer would otherwise write: confluent-kafka + pyarrow + pyiceberg.

It does what the benchmark's Floe jobs do, on the same topic: read every bid from the
beginning of every partition, decode the JSON, apply the query (q0 pass-through, q1
currency conversion, q2 filter), and append to an Iceberg table in the same SQLite
catalog with `table.append`, once per commit interval, like Floe's commit cycle.

Usage: pipeline.py BOOTSTRAP TOPIC PARTITIONS EVENTS CATALOG_URI WAREHOUSE QUERY INTERVAL_S
Prints JSON: seconds (start to the last append), rows, appends, cpu_seconds, peak_rss_mib.
"""
import json
import resource
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, TopicPartition
from pyiceberg.catalog.sql import SqlCatalog

bootstrap, topic, partitions, events, uri, warehouse, query, interval = sys.argv[1:9]
partitions, events, interval = int(partitions), int(events), float(interval)

start = time.time()
catalog = SqlCatalog("lake", uri=uri, warehouse=warehouse)
catalog.create_namespace_if_not_exists("baseline")

consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "floe-bench-baseline",
    "enable.auto.commit": False,
    "enable.partition.eof": False,
    "fetch.max.bytes": 52428800,
    "max.partition.fetch.bytes": 10485760,
    "queued.min.messages": 200000,
    "fetch.queue.backoff.ms": 10,
})
consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])


def transform(rows):
    t = pa.Table.from_pylist(rows)
    ts = pc.strptime(pc.utf8_slice_codeunits(t["dateTime"], 0, 19), format="%Y-%m-%dT%H:%M:%S", unit="us")
    if query == "q0":
        return pa.table({
            "auction": t["auction"], "bidder": t["bidder"], "price": t["price"], "channel": t["channel"],
            "url": t["url"], "date_time": ts, "extra": t["extra"],
        })
    if query == "q1":
        price = pc.cast(pc.trunc(pc.multiply(pc.cast(t["price"], pa.float64()), 0.908)), pa.int64())
        return pa.table({"auction": t["auction"], "bidder": t["bidder"], "price": price,
                         "date_time": ts, "extra": t["extra"]})
    if query == "q2":
        a = t["auction"]
        keep = pc.equal(pc.subtract(a, pc.multiply(pc.divide(a, 123), 123)), 0)
        return pa.table({"auction": t["auction"], "price": t["price"]}).filter(keep)
    raise SystemExit(f"unknown query {query}")


table = None
seen = 0
rows_out = 0
appends = 0
pending = []
last_append = time.time()
while seen < events:
    msgs = consumer.consume(num_messages=10000, timeout=0.5)
    for m in msgs:
        if m.error():
            raise SystemExit(str(m.error()))
        pending.append(json.loads(m.value()))
    seen += len(msgs)
    if pending and (time.time() - last_append >= interval or seen >= events):
        out = transform(pending)
        if table is None:
            table = catalog.create_table_if_not_exists(f"baseline.{query}", schema=out.schema)
        table.append(out)
        rows_out += out.num_rows
        appends += 1
        pending = []
        last_append = time.time()
end = time.time()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "seconds": end - start,
    "rows": rows_out,
    "appends": appends,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "peak_rss_mib": usage.ru_maxrss / 1024,
}))
