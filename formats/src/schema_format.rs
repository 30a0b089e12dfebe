//! The one interface of a payload format whose records name their writer schema: Avro
//! (`avro/`), Protobuf (`protobuf/`) and JSON Schema (`json_schema/`), each in a folder
//! of its own. Plain JSON (`json_values.rs`) has no writer schema and is read by
//! arrow-json alone.
//!
//! The decode plan asks every such format the same things: before a record is decoded,
//! whether its framing and schema id hold up (`precheck`); before any is read, whether
//! the declared columns fit the subject's latest schema (`check_latest`), or which
//! columns it has (`latest_fields`); when a new schema id appears, its fields
//! (`fields_of`, for the schema watch); and then the decoding itself.

use arrow_array::RecordBatch;
use arrow_schema::Field;

use crate::registry::{RegisteredSchema, RegistryError};
use crate::value_failure::ValueFailure;

/// A payload format bound to writer schemas.
pub(crate) trait SchemaFormat: std::fmt::Debug + Send + Sync {
    /// A failure of `value` found before decoding (framing, an unknown schema id); an
    /// error is a registry that cannot answer.
    fn precheck(&self, value: &[u8]) -> Result<Option<ValueFailure>, RegistryError>;

    /// Checks the declared columns against `subject`'s latest schema: its version, or
    /// None when the subject has none yet.
    fn check_latest(&self, subject: &str) -> Result<Option<u32>, String>;

    /// The fields of `subject`'s latest schema and its version, or None without one.
    fn latest_fields(&self, subject: &str) -> Result<Option<(Vec<Field>, u32)>, String>;

    /// The top-level fields of a registered writer schema, as columns.
    fn fields_of(&self, schema: &RegisteredSchema) -> Result<Vec<Field>, String>;

    /// Whether the values' bodies are JSON text behind the wire-format header, which
    /// the decoder reads with arrow-json like plain JSON.
    fn json_body(&self) -> bool {
        false
    }

    /// Decodes prechecked values into the payload columns; None for a format with a
    /// JSON body (see [`SchemaFormat::json_body`]).
    fn decode_binary(
        &self,
        values: &mut dyn Iterator<Item = &[u8]>,
    ) -> Option<Result<RecordBatch, ValueFailure>>;
}
