//! `WITH ('key' = 'value', …)` option lists, read once into typed structs.
//!
//! Every read marks its key as used; [`OptionReader::finish`] then rejects the keys
//! nobody asked for, naming the closest valid key, so a typo never passes silently.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::error::{ErrorKind, Pos, Result, SqlError, nearest};
use crate::units::{parse_duration, parse_size};

/// One `'key' = 'value'` pair with the positions of both halves.
#[derive(Debug, Clone)]
pub struct RawOption {
    /// The key, as written.
    pub key: String,
    /// The value after `${VAR}` substitution.
    pub value: String,
    /// Where the key stands.
    pub key_pos: Pos,
    /// Where the value stands.
    pub value_pos: Pos,
}

/// Reads typed values out of a statement's options and tracks which were used.
#[derive(Debug)]
pub struct OptionReader {
    what: String,
    stmt_pos: Pos,
    options: Vec<RawOption>,
    used: BTreeSet<String>,
}

impl OptionReader {
    /// Wraps the options of the statement described by `what` (for messages).
    /// Duplicate keys are an error.
    pub fn new(what: impl Into<String>, stmt_pos: Pos, options: Vec<RawOption>) -> Result<Self> {
        let what = what.into();
        let mut seen = BTreeSet::new();
        for o in &options {
            if !seen.insert(o.key.as_str()) {
                return Err(SqlError::new(
                    ErrorKind::Option,
                    o.key_pos,
                    format!("option '{}' is given twice in {what}", o.key),
                ));
            }
        }
        Ok(Self {
            what,
            stmt_pos,
            options,
            used: BTreeSet::new(),
        })
    }

    fn find(&mut self, key: &str) -> Option<RawOption> {
        let found = self.options.iter().find(|o| o.key == key).cloned();
        if found.is_some() {
            self.used.insert(key.to_string());
        }
        found
    }

    /// Whether `key` was given (marks it used).
    pub fn has(&mut self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// An optional string value.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.find(key).map(|o| o.value)
    }

    /// A required string value.
    pub fn required(&mut self, key: &str) -> Result<String> {
        match self.find(key) {
            Some(o) if !o.value.trim().is_empty() => Ok(o.value),
            Some(o) => Err(SqlError::new(
                ErrorKind::Option,
                o.value_pos,
                format!("option '{key}' of {} must not be empty", self.what),
            )),
            None => Err(self.misspelled(key).unwrap_or_else(|| {
                SqlError::new(
                    ErrorKind::Option,
                    self.stmt_pos,
                    format!("{} needs the option '{key}'", self.what),
                )
            })),
        }
    }

    /// An unread option whose key is a near miss of the missing `key` (`'formt'` for
    /// `'format'`): reported as unknown, at its own position, with `key` as the hint,
    /// rather than only saying that `key` is missing.
    pub fn misspelled(&self, key: &str) -> Option<SqlError> {
        let o = self
            .options
            .iter()
            .filter(|o| !self.used.contains(&o.key))
            .find(|o| nearest(&o.key, [key]).is_some())?;
        Some(SqlError::new(
            ErrorKind::Option,
            o.key_pos,
            format!(
                "unknown option '{}' for {}; did you mean '{key}'? ({} needs '{key}')",
                o.key, self.what, self.what
            ),
        ))
    }

    fn typed<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        match self.find(key) {
            None => Ok(None),
            Some(o) => parse(&o.value).map(Some).map_err(|m| {
                SqlError::new(
                    ErrorKind::Option,
                    o.value_pos,
                    format!("option '{key}' of {}: {m}", self.what),
                )
            }),
        }
    }

    /// An optional duration (`'5s'`).
    pub fn duration(&mut self, key: &str) -> Result<Option<Duration>> {
        self.typed(key, parse_duration)
    }

    /// An optional size (`'128MB'`).
    pub fn size(&mut self, key: &str) -> Result<Option<u64>> {
        self.typed(key, parse_size)
    }

    /// An optional non-negative whole number.
    pub fn count(&mut self, key: &str) -> Result<Option<u64>> {
        self.typed(key, |v| {
            v.trim()
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("'{v}' is not a whole number"))
        })
    }

    /// An optional value that must be one of `choices` (case-insensitive).
    pub fn choice(&mut self, key: &str, choices: &[&'static str]) -> Result<Option<&'static str>> {
        self.typed(key, |v| {
            let l = v.trim().to_ascii_lowercase();
            choices.iter().copied().find(|c| *c == l).ok_or_else(|| {
                let hint = nearest(&l, choices.iter().copied())
                    .map(|n| format!("; did you mean '{n}'?"))
                    .unwrap_or_default();
                format!("'{v}' is not one of {}{hint}", choices.join(", "))
            })
        })
    }

    /// An optional string value with the position of the value.
    pub fn string_at(&mut self, key: &str) -> Option<(String, Pos)> {
        self.find(key).map(|o| (o.value, o.value_pos))
    }

    /// Like [`Self::with_prefix`], with the key and value positions.
    pub fn with_prefix_at(&mut self, prefix: &str) -> Vec<(String, (String, Pos, Pos))> {
        let mut out = vec![];
        for o in &self.options {
            if let Some(rest) = o.key.strip_prefix(prefix) {
                out.push((rest.to_string(), (o.value.clone(), o.key_pos, o.value_pos)));
                self.used.insert(o.key.clone());
            }
        }
        out
    }

    /// All options whose key starts with `prefix`, with the prefix removed (marks them used).
    pub fn with_prefix(&mut self, prefix: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for o in &self.options {
            if let Some(rest) = o.key.strip_prefix(prefix) {
                out.insert(rest.to_string(), o.value.clone());
                self.used.insert(o.key.clone());
            }
        }
        out
    }

    /// Rejects any option not read so far, naming the closest valid key from `known`.
    pub fn finish(self, known: &[&str]) -> Result<()> {
        for o in &self.options {
            if !self.used.contains(&o.key) {
                let hint = nearest(&o.key, known.iter().copied())
                    .map(|n| format!("; did you mean '{n}'?"))
                    .unwrap_or_else(|| format!("; valid options are {}", known.join(", ")));
                return Err(SqlError::new(
                    ErrorKind::Option,
                    o.key_pos,
                    format!("unknown option '{}' for {}{hint}", o.key, self.what),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(k: &str, v: &str) -> RawOption {
        RawOption {
            key: k.into(),
            value: v.into(),
            key_pos: Pos::new(2, 3),
            value_pos: Pos::new(2, 20),
        }
    }

    #[test]
    fn unknown_key_names_nearest_valid_one() {
        let mut r = OptionReader::new("table t", Pos::new(1, 1), vec![opt("comit.interval", "5s")])
            .expect("reader");
        assert_eq!(r.duration("commit.interval").ok(), Some(None));
        let e = r
            .finish(&["commit.interval"])
            .expect_err("must fail")
            .to_string();
        assert!(e.contains("did you mean 'commit.interval'"), "{e}");
        assert!(e.contains(":2:3:"), "{e}");
    }

    #[test]
    fn bad_value_points_at_value() {
        let mut r = OptionReader::new(
            "table t",
            Pos::new(1, 1),
            vec![opt("commit.interval", "soon")],
        )
        .expect("reader");
        let e = r
            .duration("commit.interval")
            .expect_err("must fail")
            .to_string();
        assert!(e.contains(":2:20:") && e.contains("not a duration"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = OptionReader::new("x", Pos::default(), vec![opt("a", "1"), opt("a", "2")])
            .expect_err("dup");
        assert!(e.to_string().contains("given twice"));
    }

    #[test]
    fn a_misspelled_required_option_is_named_with_its_nearest_key() {
        let mut r = OptionReader::new("source orders", Pos::new(1, 1), vec![opt("formt", "json")])
            .expect("reader");
        let e = r.required("format").expect_err("missing").to_string();
        assert!(
            e.contains("unknown option 'formt'") && e.contains("did you mean 'format'"),
            "{e}"
        );
        assert!(e.contains(":2:3:"), "{e}");
    }
}
