"""Orders in Avro, Protobuf or JSON, serialized by confluent-kafka's own AvroSerializer,
ProtobufSerializer and JSONSerializer against a Schema Registry (registering their
schemas as producers do), for the end-to-end tests.

    produce_registry.py serialize REGISTRY_URL USER_INFO TOPIC PLAN_JSON OUT_FILE
        PLAN_JSON: [{"schema": "v1"|"v2", "from": 0, "to": 100}, {"raw": "random"}, ...]
            (a step with "key": "avro-key" also writes each record's key in Avro, subject
            TOPIC-key; {"raw": "bad-key"} repeats the previous value under a key that is
            not Avro)
            (schemas "v1", "v2", "amount-as-text", "nested" are Avro; "proto-v1", "proto-v2",
            "proto-refund" and "proto-nested" Protobuf; "json-v1", "json-v2" JSON Schema)
        writes one hex-encoded record value per line to OUT_FILE (with a key: the key,
        a space, the value)
    produce_registry.py send BOOTSTRAP TOPIC FILE [FIRST [LAST]]
        sends lines FIRST..LAST of FILE (all by default) as records, keyed by their own
        key or else by line number

Serializing and sending are apart so that a test can send records whose schemas were
registered while the registry was up, after taking it down.
"""

import functools
import json
import os
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

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

# Nested and repeated fields: a record, an array of records, a map, an array of strings.
NESTED = {
    "type": "record",
    "name": "Order",
    "namespace": "shop.nested",
    "fields": [
        {"name": "id", "type": "long"},
        {
            "name": "customer",
            "type": {
                "type": "record",
                "name": "Customer",
                "fields": [
                    {"name": "name", "type": "string"},
                    {"name": "segment", "type": ["null", "string"], "default": None},
                ],
            },
        },
        {
            "name": "lines",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Line",
                    "fields": [
                        {"name": "sku", "type": "string"},
                        {"name": "qty", "type": "int"},
                        {"name": "price", "type": "double"},
                    ],
                },
            },
        },
        {"name": "attrs", "type": {"type": "map", "values": "string"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}

SCHEMAS = {"v1": V1, "v2": V2, "amount-as-text": AMOUNT_AS_TEXT, "nested": NESTED}

# The key of order `i` (subject `<topic>-key`): its id and a region.
KEY = {
    "type": "record",
    "name": "OrderKey",
    "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "region", "type": "string"}],
}

F = descriptor_pb2.FieldDescriptorProto


def add_optional_string(message, name, number):
    """A proto3 `optional string` field of `message`: a synthetic oneof of its own gives
    the field presence."""
    message.oneof_decl.add(name=f"_{name}")
    message.field.add(
        name=name,
        number=number,
        type=F.TYPE_STRING,
        label=F.LABEL_OPTIONAL,
        oneof_index=len(message.oneof_decl) - 1,
        proto3_optional=True,
    )


@functools.lru_cache
def proto_classes(with_note):
    """shop.Order (and shop.Refund, the file's second message) in a file of their own:
    v1 without `note`, v2 with `optional string note = 6`."""
    file = descriptor_pb2.FileDescriptorProto(
        name="shop/order.proto",
        package="shop",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    order = file.message_type.add(name="Order")
    status = order.enum_type.add(name="Status")
    status.value.add(name="NEW", number=0)
    status.value.add(name="PAID", number=1)
    order.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    order.field.add(name="customer", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    order.field.add(name="amount", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    order.field.add(
        name="status", number=4, type=F.TYPE_ENUM, type_name=".shop.Order.Status", label=F.LABEL_OPTIONAL
    )
    order.field.add(
        name="placed",
        number=5,
        type=F.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        label=F.LABEL_OPTIONAL,
    )
    if with_note:
        add_optional_string(order, "note", 6)
    refund = file.message_type.add(name="Refund")
    refund.field.add(name="id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Refund")),
    )


@functools.lru_cache
def proto_nested_class():
    """shop.nested.Order: the "nested" Avro schema's shape in Protobuf (a message, a
    repeated message, a map, a repeated string); `segment` has presence."""
    file = descriptor_pb2.FileDescriptorProto(
        name="shop/nested.proto", package="shop.nested", syntax="proto3"
    )
    order = file.message_type.add(name="Order")
    customer = file.message_type.add(name="Customer")
    line = file.message_type.add(name="Line")
    customer.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    add_optional_string(customer, "segment", 2)
    line.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    line.field.add(name="qty", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    line.field.add(name="price", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    entry = order.nested_type.add(name="AttrsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    message = dict(type=F.TYPE_MESSAGE)
    order.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    order.field.add(
        name="customer", number=2, type_name=".shop.nested.Customer", label=F.LABEL_OPTIONAL, **message
    )
    order.field.add(
        name="lines", number=3, type_name=".shop.nested.Line", label=F.LABEL_REPEATED, **message
    )
    order.field.add(
        name="attrs", number=4, type_name=".shop.nested.Order.AttrsEntry", label=F.LABEL_REPEATED, **message
    )
    order.field.add(name="tags", number=5, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.nested.Order"))


def proto_nested_record(i):
    o = nested_order(i)
    m = proto_nested_class()(id=o["id"])
    m.customer.name = o["customer"]["name"]
    if o["customer"]["segment"] is not None:
        m.customer.segment = o["customer"]["segment"]
    for line in o["lines"]:
        m.lines.add(**line)
    m.attrs.update(o["attrs"])
    m.tags.extend(o["tags"])
    return m


JSON_V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "customer": {"type": "string"},
        "amount": {"type": "number"},
        "status": {"type": "string", "enum": ["NEW", "PAID"]},
        "placed": {"type": "integer", "description": "epoch milliseconds"},
    },
    "required": ["id"],
}

JSON_V2 = dict(JSON_V1, properties=dict(JSON_V1["properties"], note={"type": ["null", "string"]}))


def serializer(registry, version):
    if version in SCHEMAS:
        return AvroSerializer(registry, json.dumps(SCHEMAS[version]))
    if version in ("proto-v1", "proto-v2"):
        order_class, _ = proto_classes(version == "proto-v2")
        return ProtobufSerializer(order_class, registry)
    if version == "proto-refund":
        _, refund_class = proto_classes(True)
        return ProtobufSerializer(refund_class, registry)
    if version == "proto-nested":
        return ProtobufSerializer(proto_nested_class(), registry)
    if version in ("json-v1", "json-v2"):
        return JSONSerializer(json.dumps(JSON_V1 if version == "json-v1" else JSON_V2), registry)
    raise ValueError(version)


def record(version, i):
    """Order `i` in the form the serializer of `version` takes."""
    o = order(version.removeprefix("proto-").removeprefix("json-"), i)
    if version in SCHEMAS or version.startswith("json-"):
        return o
    if version == "proto-refund":
        _, refund_class = proto_classes(True)
        return refund_class(id=f"r{i}")
    if version == "proto-nested":
        return proto_nested_record(i)
    order_class, _ = proto_classes(version == "proto-v2")
    m = order_class(
        id=o["id"], customer=o["customer"], amount=o["amount"], status=1 if i % 2 else 0
    )
    m.placed.FromMilliseconds(o["placed"])
    if "note" in o:
        m.note = o["note"]
    return m


def nested_order(i):
    """Order `i` with nested parts: `i % 3` lines, a segment on every third customer."""
    return {
        "id": i,
        "customer": {"name": f"c{i % 17}", "segment": "gold" if i % 3 == 0 else None},
        "lines": [{"sku": f"s{i}-{k}", "qty": k + 1, "price": k + 0.5} for k in range(i % 3)],
        "attrs": {"channel": "web" if i % 2 else "app"},
        "tags": [f"t{k}" for k in range(i % 2)],
    }


def order(version, i):
    if version == "nested":
        return nested_order(i)
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
    key_ctx = SerializationContext(topic, MessageField.KEY)
    key_serializer = None
    serializers = {}
    lines = []
    for step in plan:
        if "raw" in step:
            if step["raw"] == "truncated":
                lines.append(lines[-1][:-6])
            elif step["raw"] == "bad-key":
                # The previous record's value under a key that is not Avro.
                lines.append("6e6f2d6b6579 " + lines[-1].split(" ")[-1])
            else:
                lines.append(raw(step["raw"]).hex())
            continue
        version = step["schema"]
        if version not in serializers:
            serializers[version] = serializer(registry, version)
        ser = serializers[version]
        for i in range(step["from"], step["to"]):
            value = ser(record(version, i), ctx).hex()
            if step.get("key") == "avro-key":
                key_serializer = key_serializer or AvroSerializer(registry, json.dumps(KEY))
                key = key_serializer({"id": i, "region": f"r{i % 4}"}, key_ctx).hex()
                value = f"{key} {value}"
            lines.append(value)
    with open(out_file, "w") as f:
        for line in lines:
            f.write(line + "\n")
    print(len(lines))


def send(bootstrap, topic, file, first=0, last=None):
    with open(file) as f:
        lines = [l.strip() for l in f if l.strip()]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    chosen = lines[first:last]
    for n, line in enumerate(chosen, start=first):
        key, _, value = line.rpartition(" ")
        key = bytes.fromhex(key) if key else str(n).encode()
        producer.produce(topic, key=key, value=bytes.fromhex(value))
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
