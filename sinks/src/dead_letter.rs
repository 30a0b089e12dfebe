//! The dead-letter table: where bad records are kept, with the reason, instead of being lost.
//!
//! Its schema is fixed, so one dead-letter table can serve several target tables and any
//! engine can query it:
//!
//! | column          | type          | meaning                                              |
//! |-----------------|---------------|------------------------------------------------------|
//! | job             | string        | the job that caught the record                      |
//! | target_table    | string        | the table the record was meant for                  |
//! | error_kind      | string        | malformed, type, not-null, too-large, expression, check |
//! | rule            | string?       | the CHECK constraint's name (kind `check`)          |
//! | error_message   | string        | what was wrong                                       |
//! | topic           | string        | source topic                                         |
//! | partition       | int           | source partition                                     |
//! | offset          | long          | source offset                                        |
//! | kafka_timestamp | timestamptz?  | the record's Kafka timestamp                         |
//! | key             | binary?       | the raw key                                          |
//! | value           | binary?       | the raw value, so the record can be replayed         |
//! | caught_at       | timestamptz   | when Floe caught it                                  |
//!
//! Partitioned by `day(caught_at)`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_catalog::TopicPartition;
use iceberg::TableIdent;
use iceberg::spec::Transform;

use crate::error::{Result, SinkError};
use crate::table_spec::TableSpec;

/// Iceberg's UTC offset spelling for `timestamptz`.
const UTC: &str = "+00:00";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    Arc::new(Schema::new(vec![
        Field::new("job", DataType::Utf8, false),
        Field::new("target_table", DataType::Utf8, false),
        Field::new("error_kind", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, true),
        Field::new("error_message", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("kafka_timestamp", ts.clone(), true),
        Field::new("key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("caught_at", ts, false),
    ]))
});

/// The Arrow schema of dead-letter rows.
pub fn dead_letter_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The declaration a dead-letter table is created or checked with; `writer` is the lane
/// whose column binding maps its columns to the table's fields (see `crate::binding`).
pub fn dead_letter_spec(ident: TableIdent, writer: Option<String>) -> TableSpec {
    TableSpec {
        ident,
        schema: dead_letter_schema(),
        partition_by: vec![("caught_at".into(), Transform::Day)],
        properties: HashMap::from([("floe.table-kind".to_string(), "dead-letter".to_string())]),
        add_columns: false,
        writer,
    }
}

/// One caught record.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// The table the record was meant for.
    pub target: &'a str,
    /// The kind of error (`malformed`, `check`, …).
    pub kind: &'a str,
    /// The rule's name, for CHECK constraints.
    pub rule: Option<&'a str>,
    /// What was wrong.
    pub message: &'a str,
    /// Where it came from.
    pub tp: &'a TopicPartition,
    /// Its offset.
    pub offset: i64,
    /// Its Kafka timestamp in milliseconds.
    pub timestamp_ms: Option<i64>,
    /// The raw key.
    pub key: Option<&'a [u8]>,
    /// The raw value.
    pub value: Option<&'a [u8]>,
}

/// Gathers dead letters into one batch with [`dead_letter_schema`].
#[derive(Debug)]
pub struct DeadLetterBatch {
    job: String,
    caught_at_us: i64,
    job_col: StringBuilder,
    target: StringBuilder,
    kind: StringBuilder,
    rule: StringBuilder,
    message: StringBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    key: BinaryBuilder,
    value: BinaryBuilder,
    caught_at: TimestampMicrosecondBuilder,
}

impl DeadLetterBatch {
    /// An empty batch for `job`; every row is stamped with `caught_at_us`.
    pub fn new(job: &str, caught_at_us: i64) -> Self {
        Self {
            job: job.to_string(),
            caught_at_us,
            job_col: StringBuilder::new(),
            target: StringBuilder::new(),
            kind: StringBuilder::new(),
            rule: StringBuilder::new(),
            message: StringBuilder::new(),
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone(UTC),
            key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            caught_at: TimestampMicrosecondBuilder::new().with_timezone(UTC),
        }
    }

    /// Adds one record.
    pub fn push(&mut self, d: &DeadLetter<'_>) {
        self.job_col.append_value(&self.job);
        self.target.append_value(d.target);
        self.kind.append_value(d.kind);
        self.rule.append_option(d.rule);
        self.message.append_value(d.message);
        self.topic.append_value(&d.tp.topic);
        self.partition.append_value(d.tp.partition);
        self.offset.append_value(d.offset);
        self.timestamp
            .append_option(d.timestamp_ms.map(|ms| ms.saturating_mul(1000)));
        self.key.append_option(d.key);
        self.value.append_option(d.value);
        self.caught_at.append_value(self.caught_at_us);
    }

    /// Rows gathered.
    pub fn len(&self) -> usize {
        self.offset.len()
    }

    /// True when nothing was gathered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gathered rows.
    pub fn finish(mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.job_col.finish()),
            Arc::new(self.target.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.rule.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.caught_at.finish()),
        ];
        RecordBatch::try_new(dead_letter_schema(), cols).map_err(|e| SinkError::BadRows {
            table: "dead letters".into(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_rows_with_the_fixed_schema() -> Result<()> {
        let tp = TopicPartition::new("orders", 2);
        let mut b = DeadLetterBatch::new("job", 1_700_000_000_000_000);
        b.push(&DeadLetter {
            target: "lake.sales.t",
            kind: "check",
            rule: Some("positive_amount"),
            message: "amount > 0 is false",
            tp: &tp,
            offset: 7,
            timestamp_ms: Some(1_700_000_000_000),
            key: None,
            value: Some(b"{\"amount\": -1}"),
        });
        let batch = b.finish()?;
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), dead_letter_schema());
        Ok(())
    }
}
