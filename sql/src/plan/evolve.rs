//! `'schema.evolution' = 'add-columns'`: a table's columns follow what its INSERTs yield.
//!
//! The job file declares a table's first columns. With `add-columns`, compiling the
//! INSERTs into the table extends that declaration: a query column whose name the table
//! lacks becomes a new optional column of the query's type, and a declared number column
//! that a query yields wider (INT as BIGINT, FLOAT as DOUBLE, a DECIMAL of more precision
//! and the same scale: Iceberg's type promotions) takes the wider type. Query columns
//! map to the table's by name, since a new schema version may add a field anywhere; a
//! nullable table column a query does not yield is NULL. The engine brings the Iceberg
//! table to the extended declaration before it writes a row (`floe_sinks::evolve`).

use arrow_schema::DataType;
use datafusion::logical_expr::LogicalPlan;

use crate::error::{ErrorKind, Result, SqlError};
use crate::job::{InsertDef, SchemaEvolution, TableColumn, TableDef};

/// Whether an INSERT without a column list maps its query's columns to `table`'s by
/// name (`add-columns`) instead of by position.
pub(crate) fn by_name(table: &TableDef) -> bool {
    table.options.schema_evolution == SchemaEvolution::AddColumns
}

/// True when Iceberg lets a column of type `from` be promoted to `to`.
pub fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType as D;
    match (from, to) {
        (D::Int8 | D::Int16 | D::Int32, D::Int64) => true,
        (D::Float32, D::Float64) => true,
        (D::Decimal128(p1, s1), D::Decimal128(p2, s2)) => s1 == s2 && p2 > p1,
        _ => false,
    }
}

/// Extends `table`'s columns with what `insert`'s planned query yields (its last
/// column, the row column, is not the query's own); nothing for a table without
/// `add-columns` or an INSERT with a column list.
pub(crate) fn extend_table(
    table: &mut TableDef,
    insert: &InsertDef,
    plan: &LogicalPlan,
) -> Result<()> {
    if !by_name(table) || !insert.columns.is_empty() {
        return Ok(());
    }
    let all = plan.schema().fields();
    for (i, field) in all[..all.len().saturating_sub(1)].iter().enumerate() {
        let name = field.name();
        if let Some(column) = table.columns.iter_mut().find(|c| &c.name == name) {
            if widens(&column.data_type, field.data_type()) {
                column.data_type = field.data_type().clone();
            }
            continue;
        }
        let refuse = |why: String| {
            Err(SqlError::new(
                ErrorKind::Plan,
                insert.pos,
                format!(
                    "INSERT INTO {}: the query's column {} ({name}) {why}",
                    insert.target,
                    i + 1
                ),
            ))
        };
        if is_positional_alias(name) {
            return refuse(
                "has no name; with 'schema.evolution' = 'add-columns' the query's columns \
                 map to the table's by name: name it with AS"
                    .into(),
            );
        }
        let Some(data_type) = column_type(field.data_type()) else {
            return refuse(format!(
                "is {}, which a table column cannot hold: CAST it",
                field.data_type()
            ));
        };
        table.columns.push(TableColumn {
            name: name.clone(),
            data_type,
            nullable: true,
            pos: insert.pos,
        });
    }
    Ok(())
}

/// The alias `name_select_items` gives an unnamed expression.
fn is_positional_alias(name: &str) -> bool {
    name.strip_prefix("_col")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The type a new column takes for a query column of type `t`: string and binary views
/// as the plain types Iceberg's schema conversion knows; None for a type without values.
fn column_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Null => None,
        DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
        DataType::BinaryView | DataType::LargeBinary => Some(DataType::Binary),
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_iceberg_promotions_widen() {
        assert!(widens(&DataType::Int32, &DataType::Int64));
        assert!(widens(&DataType::Float32, &DataType::Float64));
        assert!(widens(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 2)
        ));
        assert!(!widens(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 3)
        ));
        assert!(!widens(&DataType::Int64, &DataType::Int32));
        assert!(!widens(&DataType::Int32, &DataType::Float64));
        assert!(!widens(&DataType::Utf8, &DataType::Utf8));
    }

    #[tokio::test]
    async fn the_table_gains_the_querys_new_columns_and_widened_types() {
        let text = "CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (currency VARCHAR, order_id BIGINT NOT NULL, qty BIGINT, price DECIMAL(12, 2))
  WITH ('connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
CREATE TABLE lake.s.t (order_id BIGINT NOT NULL, qty INT, price DECIMAL(10, 2)) WITH ('schema.evolution' = 'add-columns');
CREATE TABLE lake.s.fixed (order_id BIGINT NOT NULL, qty INT, price DECIMAL(10, 2), currency VARCHAR);
INSERT INTO lake.s.t SELECT * FROM orders;
INSERT INTO lake.s.fixed SELECT order_id, qty, price, currency FROM orders;
";
        let job = crate::parse_job("job.sql", text, &crate::EnvVariables).expect("parses");
        let compiled = crate::compile(job).await.expect("compiles");
        let columns = |t: usize| -> Vec<(String, DataType, bool)> {
            compiled.job.tables[t]
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.data_type.clone(), c.nullable))
                .collect()
        };
        assert_eq!(
            columns(0),
            vec![
                ("order_id".into(), DataType::Int64, false),
                ("qty".into(), DataType::Int64, true),
                ("price".into(), DataType::Decimal128(12, 2), true),
                ("currency".into(), DataType::Utf8, true),
            ]
        );
        // Without add-columns the declaration stands: BIGINT goes into INT.
        assert_eq!(columns(1)[1], ("qty".into(), DataType::Int32, true));
        assert_eq!(compiled.inserts[0].schema.fields().len(), 4);
    }

    #[test]
    fn positional_aliases_are_recognised() {
        assert!(is_positional_alias("_col3"));
        assert!(!is_positional_alias("_col"));
        assert!(!is_positional_alias("_color"));
    }
}
