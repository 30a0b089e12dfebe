//! `JOIN lake.ref.customers FOR SYSTEM_TIME AS OF o.proc_time AS c`: Flink's mark of a
//! lookup join.
//!
//! Floe joins every record with the version of the lookup table that is current when the
//! record's batch is processed (processing time, as Flink's lookup joins do), so the
//! clause changes nothing; it is accepted so that a Flink job's text runs as written.
//! The dialect Floe parses with does not know the clause, so it is taken out of the
//! tokens before they are parsed.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// `tokens` without any `FOR SYSTEM_TIME AS OF <operand>`, where the operand is a
/// (qualified) column name, or a function call such as `PROCTIME()`.
pub(crate) fn strip_system_time(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        match clause_end(&tokens, i) {
            Some(end) => {
                // Keep one blank where the clause stood, so that neighbours stay apart.
                out.push(TokenWithSpan::new(
                    Token::Whitespace(datafusion::sql::sqlparser::tokenizer::Whitespace::Space),
                    tokens[i].span,
                ));
                i = end;
            }
            None => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    out
}

/// If a `FOR SYSTEM_TIME AS OF` clause starts at `start`, the index just past it.
fn clause_end(tokens: &[TokenWithSpan], start: usize) -> Option<usize> {
    let mut i = start;
    for word in ["FOR", "SYSTEM_TIME", "AS", "OF"] {
        i = skip_blanks(tokens, i);
        if !is_word(tokens.get(i)?, word) {
            return None;
        }
        i += 1;
    }
    // The operand: name(.name)* and optionally an argument list.
    i = skip_blanks(tokens, i);
    if !matches!(tokens.get(i)?.token, Token::Word(_)) {
        return None;
    }
    i += 1;
    while matches!(tokens.get(i).map(|t| &t.token), Some(Token::Period))
        && matches!(tokens.get(i + 1).map(|t| &t.token), Some(Token::Word(_)))
    {
        i += 2;
    }
    if matches!(tokens.get(i).map(|t| &t.token), Some(Token::LParen)) {
        let mut depth = 0usize;
        while let Some(t) = tokens.get(i) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
            if depth == 0 {
                break;
            }
        }
    }
    Some(i)
}

fn skip_blanks(tokens: &[TokenWithSpan], mut i: usize) -> usize {
    while matches!(tokens.get(i).map(|t| &t.token), Some(Token::Whitespace(_))) {
        i += 1;
    }
    i
}

fn is_word(t: &TokenWithSpan, w: &str) -> bool {
    matches!(&t.token, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn strip(sql: &str) -> String {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .expect("tokens");
        strip_system_time(tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn the_clause_goes_and_the_rest_stays() {
        assert_eq!(
            strip("FROM o JOIN lake.r.c FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.k = c.k"),
            "FROM o JOIN lake.r.c  AS c ON o.k = c.k"
        );
        assert_eq!(
            strip("JOIN c for system_time as of PROCTIME() c2 ON x"),
            "JOIN c  c2 ON x"
        );
        assert_eq!(strip("SELECT a AS of FROM t"), "SELECT a AS of FROM t");
        assert_eq!(strip("FOR SYSTEM_TIME AS OF"), "FOR SYSTEM_TIME AS OF");
    }
}
