//! Column types with nested parts, in Flink SQL's spelling: `ARRAY<T>` (or `T[]`),
//! `MAP<K, V>` (or `MAP(K, V)`), and `ROW<name T, …>` (or `ROW(name T, …)`, or
//! `STRUCT<name T, …>`), whose fields may be `NOT NULL`. Scalar types are read by
//! sqlparser and mapped by [`arrow_type`].
//!
//! The Arrow shapes are the ones Iceberg writes, so that a decoded batch and a table's
//! write schema agree without renaming: a list's element is named [`LIST_ELEMENT`] and a
//! map's entries [`MAP_ENTRIES`], with a non-null `key` and a nullable `value`.
//!
//! sqlparser reads `>>` as one token (a shift); a nested type that ends in `>>` owes its
//! enclosing type one `>`, which [`TypeParser::close_angle`] pays.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields};
use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType as SqlType};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{ErrorKind, Pos, Result, SqlError, from_parser_error};
use crate::types::arrow_type;

/// The name of a list's element field in Iceberg's Arrow shape.
pub const LIST_ELEMENT: &str = "element";
/// The name of a map's entries field in Iceberg's Arrow shape.
pub const MAP_ENTRIES: &str = "key_value";
/// How deep types may nest (a guard against runaway input, not a limit of Iceberg's).
const MAX_DEPTH: usize = 32;

/// A list of `element` in Iceberg's shape.
pub fn list_of(element: DataType, nullable: bool) -> DataType {
    DataType::List(Arc::new(Field::new(LIST_ELEMENT, element, nullable)))
}

/// A map from `key` to `value` in Iceberg's shape.
pub fn map_of(key: DataType, value: DataType, value_nullable: bool) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, value_nullable),
    ]);
    DataType::Map(
        Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
        false,
    )
}

/// Reads one column type at the parser's position.
pub(crate) fn parse_column_type(p: &mut Parser) -> Result<DataType> {
    let mut t = TypeParser { p, owed: 0 };
    let ty = t.any(0)?;
    if t.owed > 0 {
        return Err(t.error("one '>' too many after the type"));
    }
    Ok(ty)
}

/// A type sqlparser read: a scalar, or its own reading of `T[]` (which nests like ours).
fn scalar_or_array(ty: &SqlType) -> std::result::Result<DataType, String> {
    match ty {
        SqlType::Array(ArrayElemTypeDef::SquareBracket(inner, _)) => {
            Ok(list_of(scalar_or_array(inner)?, true))
        }
        other => arrow_type(other),
    }
}

struct TypeParser<'p, 'a> {
    p: &'p mut Parser<'a>,
    /// `>` read as part of a `>>` that closes an enclosing type.
    owed: usize,
}

impl TypeParser<'_, '_> {
    fn pos(&self) -> Pos {
        self.p.peek_token_ref().span.start.into()
    }

    fn error(&self, message: impl Into<String>) -> SqlError {
        SqlError::new(ErrorKind::Syntax, self.pos(), message)
    }

    fn any(&mut self, depth: usize) -> Result<DataType> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("types nest more than {MAX_DEPTH} deep")));
        }
        let nested = match &self.p.peek_token_ref().token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        let opens = matches!(
            self.p.peek_nth_token_ref(1).token,
            Token::Lt | Token::LParen
        );
        let ty = match nested.as_str() {
            "ARRAY" if opens => {
                self.p.next_token();
                let close = self.open()?;
                let (element, nullable) = self.element(depth)?;
                self.close(close)?;
                list_of(element, nullable)
            }
            "MAP" if opens => {
                self.p.next_token();
                let close = self.open()?;
                let key_pos = self.pos();
                let (key, _) = self.element(depth)?;
                if matches!(
                    key,
                    DataType::List(_) | DataType::Map(..) | DataType::Struct(_)
                ) {
                    return Err(SqlError::new(
                        ErrorKind::Syntax,
                        key_pos,
                        "a MAP key must be a scalar type",
                    ));
                }
                self.expect(Token::Comma, "',' between a MAP's key and value types")?;
                let (value, nullable) = self.element(depth)?;
                self.close(close)?;
                map_of(key, value, nullable)
            }
            "ROW" | "STRUCT" if opens => {
                self.p.next_token();
                let close = self.open()?;
                let fields = self.fields(depth, close)?;
                DataType::Struct(fields)
            }
            _ => self.scalar()?,
        };
        Ok(self.array_suffixes(ty))
    }

    /// `T[]`, `T[][]`: arrays of what came before.
    fn array_suffixes(&mut self, mut ty: DataType) -> DataType {
        while self.p.peek_token_ref().token == Token::LBracket
            && self.p.peek_nth_token_ref(1).token == Token::RBracket
        {
            self.p.next_token();
            self.p.next_token();
            ty = list_of(ty, true);
        }
        ty
    }

    fn scalar(&mut self) -> Result<DataType> {
        let pos = self.pos();
        let sql_type = self
            .p
            .parse_data_type()
            .map_err(|e| from_parser_error(e, pos))?;
        scalar_or_array(&sql_type).map_err(|m| SqlError::new(ErrorKind::Syntax, pos, m))
    }

    /// A nested part's type and whether it may be null (`NOT NULL` after it says not).
    fn element(&mut self, depth: usize) -> Result<(DataType, bool)> {
        let ty = self.any(depth + 1)?;
        Ok((ty, !self.not_null()))
    }

    fn not_null(&mut self) -> bool {
        if self.owed > 0 {
            return false;
        }
        if self.p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            return true;
        }
        let _ = self.p.parse_keyword(Keyword::NULL);
        false
    }

    /// `name T [NOT NULL], …` up to the closing bracket.
    fn fields(&mut self, depth: usize, close: Token) -> Result<Fields> {
        let mut fields: Vec<Field> = vec![];
        loop {
            let pos = self.pos();
            let name = self
                .p
                .parse_identifier()
                .map_err(|e| from_parser_error(e, pos))?;
            if fields
                .iter()
                .any(|f| f.name().eq_ignore_ascii_case(&name.value))
            {
                return Err(SqlError::new(
                    ErrorKind::Syntax,
                    pos,
                    format!("field {} appears twice in one ROW", name.value),
                ));
            }
            let (ty, nullable) = self.element(depth)?;
            fields.push(Field::new(name.value, ty, nullable));
            if self.owed == 0 && self.p.consume_token(&Token::Comma) {
                continue;
            }
            self.close(close)?;
            return Ok(fields.into());
        }
    }

    /// Reads `<` or `(` and returns the token that closes it.
    fn open(&mut self) -> Result<Token> {
        match self.p.next_token().token {
            Token::Lt => Ok(Token::Gt),
            Token::LParen => Ok(Token::RParen),
            _ => Err(self.error("expected '<' or '(' after a nested type's name")),
        }
    }

    fn close(&mut self, close: Token) -> Result<()> {
        if close == Token::RParen {
            return self.expect(Token::RParen, "')' closing the type");
        }
        if self.owed > 0 {
            self.owed -= 1;
            return Ok(());
        }
        let next = self.p.peek_token_ref().token.clone();
        match next {
            Token::Gt => {
                self.p.next_token();
                Ok(())
            }
            Token::ShiftRight => {
                self.p.next_token();
                self.owed += 1;
                Ok(())
            }
            _ => Err(self.error("expected '>' closing the type")),
        }
    }

    fn expect(&mut self, token: Token, what: &str) -> Result<()> {
        if self.owed == 0 && self.p.consume_token(&token) {
            return Ok(());
        }
        Err(self.error(format!("expected {what}")))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;

    use super::*;

    fn try_parse(text: &str) -> Result<DataType> {
        let dialect = GenericDialect {};
        let mut p = Parser::new(&dialect).try_with_sql(text).expect("tokenize");
        let ty = parse_column_type(&mut p)?;
        assert_eq!(
            p.peek_token_ref().token,
            Token::EOF,
            "{text}: input left over"
        );
        Ok(ty)
    }

    fn parse(text: &str) -> DataType {
        try_parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn row(fields: Vec<Field>) -> DataType {
        DataType::Struct(fields.into())
    }

    #[test]
    fn nested_types_take_icebergs_arrow_shapes() {
        assert_eq!(parse("ARRAY<BIGINT>"), list_of(DataType::Int64, true));
        assert_eq!(parse("VARCHAR[]"), list_of(DataType::Utf8, true));
        assert_eq!(
            parse("INT[][]"),
            list_of(list_of(DataType::Int32, true), true)
        );
        assert_eq!(
            parse("MAP<VARCHAR, DOUBLE NOT NULL>"),
            map_of(DataType::Utf8, DataType::Float64, false)
        );
        assert_eq!(
            parse("MAP(VARCHAR, INT)"),
            map_of(DataType::Utf8, DataType::Int32, true)
        );
        let expected = row(vec![
            Field::new("sku", DataType::Utf8, false),
            Field::new("qty", DataType::Int32, true),
        ]);
        assert_eq!(parse("ROW<sku VARCHAR NOT NULL, qty INT>"), expected);
        assert_eq!(parse("ROW(sku VARCHAR NOT NULL, qty INT)"), expected);
        assert_eq!(parse("STRUCT<sku VARCHAR NOT NULL, qty INT>"), expected);
    }

    #[test]
    fn closing_brackets_may_run_together() {
        let line = row(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("tags", list_of(DataType::Utf8, true), true),
        ]);
        assert_eq!(
            parse("ARRAY<ROW<sku VARCHAR, tags ARRAY<VARCHAR>>>"),
            list_of(line, true)
        );
        assert_eq!(
            parse("ARRAY<ARRAY<DECIMAL(10, 2)>>"),
            list_of(list_of(DataType::Decimal128(10, 2), true), true)
        );
        assert_eq!(
            parse("MAP<VARCHAR, ARRAY<INT>>"),
            map_of(DataType::Utf8, list_of(DataType::Int32, true), true)
        );
    }

    #[test]
    fn bad_nested_types_say_what_is_wrong() {
        let msg = |t: &str| try_parse(t).expect_err(t).to_string();
        assert!(msg("MAP<ARRAY<INT>, INT>").contains("MAP key must be a scalar"));
        assert!(msg("ROW<a INT, A BIGINT>").contains("field A appears twice"));
        assert!(msg("ARRAY<INT").contains("expected '>'"));
        assert!(msg("ARRAY<INT>>").contains("one '>' too many"));
        assert!(msg("ARRAY<GEOMETRY>").contains("GEOMETRY"));
    }
}
