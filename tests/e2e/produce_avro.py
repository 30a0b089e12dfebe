"""Orders in Avro, serialized by confluent-kafka's own AvroSerializer against a Schema
Registry (registering their schemas as producers do), for the end-to-end tests.

    produce_avro.py serialize REGISTRY_URL USER_INFO TOPIC PLAN_JSON OUT_FILE
        PLAN_JSON: [{"schema": "v1"|"v2", "from": 0, "to": 100}, {"raw": "random"}, ...]
        writes one hex-encoded record value per line to OUT_FILE
    produce_avro.py send BOOTSTRAP TOPIC FILE [FIRST [LAST]]
        sends lines FIRST..LAST of FILE (all by default) as record values, keyed by line

Serializing and sending are apart so that a test can send records whose schemas were
registered while the registry was up, after taking it down.
"""

import json
import os
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
        {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}

# v2 adds an optional field; backward compatible, as registries require.
V2 = dict(V1, fields=V1["fields"] + [{"name": "note", "type": ["null", "string"], "default": None}])

# `amount` as a string: does not fit a DOUBLE column.
AMOUNT_AS_TEXT = dict(
    V1, fields=[f if f["name"] != "amount" else {"name": "amount", "type": "string"} for f in V1["fields"]]
)

SCHEMAS = {"v1": V1, "v2": V2, "amount-as-text": AMOUNT_AS_TEXT}


def order(version, i):
    o = {
        "id": i,
        "customer": f"c{i % 17}",
        "amount": i * 1.25,
        "status": "PAID" if i % 2 else "NEW",
        "placed": 1_700_000_000_000 + i,
    }
    if version == "v2":
        o["note"] = f"note {i}"
    if version == "amount-as-text":
        o["amount"] = str(o["amount"])
    return o


def raw(kind):
    if kind == "random":
        return os.urandom(40)
    if kind == "unknown-id":
        return b"\x00" + (999_999).to_bytes(4, "big") + b"\x02\x04"
    if kind == "json":
        return b'{"id": 1}'
    raise ValueError(kind)


def serialize(url, user_info, topic, plan, out_file):
    conf = {"url": url}
    if user_info:
        conf["basic.auth.user.info"] = user_info
    registry = SchemaRegistryClient(conf)
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializers = {}
    values = []
    for step in plan:
        if "raw" in step:
            if step["raw"] == "truncated":
                values.append(values[-1][:-3])
            else:
                values.append(raw(step["raw"]))
            continue
        version = step["schema"]
        if version not in serializers:
            serializers[version] = AvroSerializer(registry, json.dumps(SCHEMAS[version]))
        ser = serializers[version]
        values.extend(ser(order(version, i), ctx) for i in range(step["from"], step["to"]))
    with open(out_file, "w") as f:
        for v in values:
            f.write(v.hex() + "\n")
    print(len(values))


def send(bootstrap, topic, file, first=0, last=None):
    with open(file) as f:
        lines = [l.strip() for l in f if l.strip()]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    chosen = lines[first:last]
    for n, line in enumerate(chosen, start=first):
        producer.produce(topic, key=str(n).encode(), value=bytes.fromhex(line))
        producer.poll(0)
    left = producer.flush(30)
    if left:
        sys.exit(f"{left} records not delivered")
    print(len(chosen))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "serialize":
        serialize(args[0], args[1], args[2], json.loads(args[3]), args[4])
    elif command == "send":
        bounds = [int(a) for a in args[3:]]
        send(args[0], args[1], args[2], *bounds)
    else:
        sys.exit(f"unknown command {command}")
