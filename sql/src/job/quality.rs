//! Data-quality rules of a table: CHECK constraints, the kinds of bad records, and what
//! happens to a record that breaks a rule.

use std::collections::BTreeMap;
use std::fmt;

use datafusion::sql::sqlparser::ast::Expr;

use super::TableName;
use crate::error::Pos;

/// What happens to a record that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Write the raw record, with the reason, to the table's dead-letter table.
    DeadLetter,
    /// Leave the record out; it is counted in the progress line and the snapshot summary.
    Drop,
    /// Stop the job with an error naming the record and the rule.
    Fail,
}

impl Policy {
    /// The values `'on-violation'` accepts.
    pub const NAMES: [&'static str; 3] = ["dead-letter", "drop", "fail"];

    /// Parses an accepted name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "dead-letter" => Some(Self::DeadLetter),
            "drop" => Some(Self::Drop),
            "fail" => Some(Self::Fail),
            _ => None,
        }
    }

    /// The name as written in job files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeadLetter => "dead-letter",
            Self::Drop => "drop",
            Self::Fail => "fail",
        }
    }
}

/// Why a record is bad. Each kind can be given its own policy with
/// `'on-violation.<kind>'`; CHECK constraints by their name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// The value is not one JSON object: invalid JSON, truncated, invalid UTF-8, empty.
    Malformed,
    /// A field has the wrong type or is out of range for the declared column type.
    Type,
    /// A NOT NULL column (of the source or of the table) is missing or null.
    NotNull,
    /// The record is larger than the source's `'source.max-record-bytes'`.
    TooLarge,
    /// The SELECT failed for this row (for example a CAST that cannot succeed).
    Expression,
    /// A CHECK constraint evaluated to false.
    Check,
}

impl ViolationKind {
    /// Every kind except `check` (constraints go by their own names).
    pub const BUILT_IN: [Self; 5] = [
        Self::Malformed,
        Self::Type,
        Self::NotNull,
        Self::TooLarge,
        Self::Expression,
    ];

    /// The name used in job files, dead-letter rows and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Type => "type",
            Self::NotNull => "not-null",
            Self::TooLarge => "too-large",
            Self::Expression => "expression",
            Self::Check => "check",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `CONSTRAINT name CHECK (expr)` of a table.
#[derive(Debug, Clone)]
pub struct CheckDef {
    /// The constraint name (`check_1`, `check_2`, … when unnamed).
    pub name: String,
    /// The condition, over the table's columns.
    pub expr: Expr,
    /// Where it is declared.
    pub pos: Pos,
}

/// The quality rules of a table and where bad records go.
#[derive(Debug, Clone)]
pub struct QualityDef {
    /// CHECK constraints, in declared order (a row is reported for the first it breaks).
    pub checks: Vec<CheckDef>,
    /// The dead-letter table (`'dead-letter.table'`).
    pub dead_letter: Option<TableName>,
    /// `'on-violation'`: dead-letter when a dead-letter table is set, else fail.
    pub default_policy: Policy,
    /// `'on-violation.<rule or kind>'` overrides.
    pub overrides: BTreeMap<String, Policy>,
}

impl Default for QualityDef {
    fn default() -> Self {
        Self {
            checks: vec![],
            dead_letter: None,
            default_policy: Policy::Fail,
            overrides: BTreeMap::new(),
        }
    }
}

impl QualityDef {
    /// The policy for a rule: a constraint name or a kind name.
    pub fn policy(&self, rule: &str) -> Policy {
        self.overrides
            .get(rule)
            .copied()
            .unwrap_or(self.default_policy)
    }

    /// True when no record can ever be dead-lettered or dropped: the job fails on every
    /// bad record, and no check is evaluated.
    pub fn is_strict(&self) -> bool {
        self.checks.is_empty()
            && self.default_policy == Policy::Fail
            && self.overrides.values().all(|p| *p == Policy::Fail)
    }
}
