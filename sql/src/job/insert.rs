use datafusion::sql::sqlparser::ast::{Ident, Query};

use super::TableName;
use crate::error::Pos;

/// `INSERT INTO table [(columns)] SELECT …`.
#[derive(Debug, Clone)]
pub struct InsertDef {
    /// The target table.
    pub target: TableName,
    /// Where the statement starts.
    pub pos: Pos,
    /// An explicit column list, if given.
    pub columns: Vec<Ident>,
    /// The query that produces the rows.
    pub query: Box<Query>,
}
