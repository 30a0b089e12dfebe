//! Errors of the job-file language: every one names the file, line and column.

use std::fmt;

/// A position in a job file (1-based line and column; 0 means "unknown").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Pos {
    /// A position at `line`:`column`.
    pub fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }
}

impl From<datafusion::sql::sqlparser::tokenizer::Location> for Pos {
    fn from(l: datafusion::sql::sqlparser::tokenizer::Location) -> Self {
        Self::new(l.line, l.column)
    }
}

/// What kind of mistake a job file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not valid job-file SQL.
    Syntax,
    /// An option is unknown, missing, or has a bad value.
    Option,
    /// A name (catalog, source, table, column) does not resolve.
    Name,
    /// The query does not fit the target table, or DataFusion rejected it.
    Plan,
    /// A `${VAR}` reference has no value and no default.
    Variable,
}

/// An error in a job file, located at file:line:column.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SqlError {
    /// What kind of mistake this is.
    pub kind: ErrorKind,
    /// The job file's path as the user gave it.
    pub file: String,
    /// Where in the file.
    pub pos: Pos,
    /// What is wrong and, where possible, what was expected.
    pub message: String,
}

impl SqlError {
    /// A new error; the file name is filled in by the parser's caller.
    pub fn new(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            kind,
            file: String::new(),
            pos,
            message: message.into(),
        }
    }

    /// Sets the file this error belongs to.
    pub fn in_file(mut self, file: &str) -> Self {
        self.file = file.to_string();
        self
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = if self.file.is_empty() {
            "<job>"
        } else {
            &self.file
        };
        if self.pos.line == 0 {
            write!(f, "{file}: {}", self.message)
        } else {
            write!(
                f,
                "{file}:{}:{}: {}",
                self.pos.line, self.pos.column, self.message
            )
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

/// Turns a sqlparser error ("… at Line: 3, Column: 7") into a located [`SqlError`].
pub(crate) fn from_parser_error(
    err: datafusion::sql::sqlparser::parser::ParserError,
    fallback: Pos,
) -> SqlError {
    use datafusion::sql::sqlparser::parser::ParserError;
    let text = match err {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
    };
    match text.rfind(" at Line: ") {
        Some(at) => {
            let (msg, loc) = text.split_at(at);
            let mut nums = loc
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse::<u64>().ok());
            let pos = match (nums.next(), nums.next()) {
                (Some(l), Some(c)) => Pos::new(l, c),
                _ => fallback,
            };
            SqlError::new(ErrorKind::Syntax, pos, msg.trim().to_string())
        }
        None => SqlError::new(ErrorKind::Syntax, fallback, text),
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // A word that is the start of a candidate ('earliest' for 'earliest-offset') is a near miss.
    if word.len() >= 3
        && let Some(c) = candidates
            .iter()
            .find(|c| c.to_ascii_lowercase().starts_with(&word))
    {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_rejects_strangers() {
        let keys = ["commit.interval", "commit.max-bytes", "commit.max-records"];
        assert_eq!(nearest("comit.interval", keys), Some("commit.interval"));
        assert_eq!(nearest("commit.max-byte", keys), Some("commit.max-bytes"));
        assert_eq!(nearest("colour", keys), None);
    }

    #[test]
    fn display_has_file_line_column() {
        let e = SqlError::new(ErrorKind::Syntax, Pos::new(3, 7), "Expected: )").in_file("job.sql");
        assert_eq!(e.to_string(), "job.sql:3:7: Expected: )");
    }
}
