//! `${VAR}` and `${VAR:-default}` substitution in option values, so that hosts and
//! secrets stay out of job files.

use crate::error::{ErrorKind, Pos, Result, SqlError};

/// Where variable values come from (the process environment in production).
pub trait Variables {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;

    /// Whether a variable that is unset and has no default stays as written (`${NAME}`)
    /// instead of being an error.
    fn keep_unset(&self) -> bool {
        false
    }
}

/// Reads variables from the process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvVariables;

impl Variables for EnvVariables {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Reads the environment but leaves unset variables as written (`${NAME}`), for commands
/// that only need part of a job (its catalogs) and must not demand every variable.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvOrKeep;

impl Variables for EnvOrKeep {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn keep_unset(&self) -> bool {
        true
    }
}

impl Variables for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `value`. `$$` stands for a literal `$`.
/// An unset variable without a default is an error located at `pos`.
pub fn substitute(value: &str, vars: &dyn Variables, pos: Pos) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                SqlError::new(
                    ErrorKind::Variable,
                    pos,
                    format!("unterminated variable reference in '{value}' (missing '}}')"),
                )
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(SqlError::new(
                    ErrorKind::Variable,
                    pos,
                    format!(
                        "'${{{inner}}}' is not a valid variable reference: use ${{NAME}} or ${{NAME:-default}}"
                    ),
                ));
            }
            match (vars.get(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) if vars.keep_unset() => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                }
                (None, None) => {
                    return Err(SqlError::new(
                        ErrorKind::Variable,
                        pos,
                        format!(
                            "variable {name} is not set; set it in the environment or write ${{{name}:-default}}"
                        ),
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars() -> HashMap<String, String> {
        HashMap::from([("HOST".to_string(), "k1:9092".to_string())])
    }

    #[test]
    fn substitutes_set_and_default_values() {
        let p = Pos::default();
        assert_eq!(
            substitute("${HOST}", &vars(), p).ok(),
            Some("k1:9092".into())
        );
        assert_eq!(
            substitute("x-${NOPE:-./data}/y", &vars(), p).ok(),
            Some("x-./data/y".into())
        );
        assert_eq!(
            substitute("a$$b $c", &vars(), p).ok(),
            Some("a$b $c".into())
        );
    }

    #[test]
    fn keeping_unset_variables_still_applies_defaults() {
        let p = Pos::default();
        let v = substitute(
            "${FLOE_TEST_SURELY_UNSET:-7}/${FLOE_TEST_SURELY_UNSET}",
            &EnvOrKeep,
            p,
        );
        assert_eq!(v.ok(), Some("7/${FLOE_TEST_SURELY_UNSET}".into()));
    }

    #[test]
    fn unset_without_default_names_the_variable() {
        let e = substitute("${NOPE}", &vars(), Pos::new(4, 2)).err();
        let e = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("NOPE is not set"), "{e}");
        assert!(e.contains(":4:2:"), "{e}");
    }
}
