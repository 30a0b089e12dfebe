//! `payload->'customer'->>'name'` in a job's SQL.
//!
//! Floe's SQL dialect also knows lambdas (`x -> body`), so a bare column name followed by
//! `->` is read as a lambda of that column: `payload -> ('customer' ->> 'name')`.
//! DataFusion plans no lambdas, so every such lambda is read back as the JSON operators
//! it was written as, left to right: `(payload -> 'customer') ->> 'name'`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, LambdaFunction, LambdaSyntax, OneOrManyWithParens, Query,
    visit_expressions_mut,
};

/// Turns the lambdas of `query` that stand for JSON arrows back into arrows.
pub fn json_arrows(query: &mut Query) {
    let _ = visit_expressions_mut(query, |e| {
        if let Expr::Lambda(LambdaFunction {
            params: OneOrManyWithParens::One(column),
            body,
            syntax: LambdaSyntax::Arrow,
        }) = e
        {
            *e = prepend(Expr::Identifier(column.clone()), (**body).clone());
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `column -> body`, with `column ->` applied to the leftmost operand of an arrow chain.
fn prepend(column: Expr, body: Expr) -> Expr {
    match body {
        Expr::BinaryOp {
            left,
            op: op @ (BinaryOperator::Arrow | BinaryOperator::LongArrow),
            right,
        } => Expr::BinaryOp {
            left: Box::new(prepend(column, *left)),
            op,
            right,
        },
        other => Expr::BinaryOp {
            left: Box::new(column),
            op: BinaryOperator::Arrow,
            right: Box::new(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn arrows_read_as_lambdas_become_arrows_again() {
        let sql = "SELECT payload->'customer'->>'name', payload->>'n', f(payload) FROM events";
        let mut query = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_query())
            .expect("parses");
        json_arrows(&mut query);
        assert_eq!(
            query.to_string(),
            "SELECT payload -> 'customer' ->> 'name', payload ->> 'n', f(payload) FROM events"
        );
    }
}
