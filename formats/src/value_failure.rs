//! Why record values in a registry format could not be decoded.

use floe_sql::job::ViolationKind;

/// Why records could not be decoded: their kind and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFailure {
    /// `malformed` (the bytes) or `type` (a value that does not fit its column).
    pub kind: ViolationKind,
    /// What was wrong.
    pub message: String,
}

impl ValueFailure {
    /// Bytes that are not what the format says.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            kind: ViolationKind::Malformed,
            message: message.into(),
        }
    }

    /// A value (or a writer schema) that does not fit the declared columns.
    pub fn type_error(message: impl Into<String>) -> Self {
        Self {
            kind: ViolationKind::Type,
            message: message.into(),
        }
    }
}
