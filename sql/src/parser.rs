//! Parses a job file into a [`JobFile`].
//!
//! The statement structure (CREATE CATALOG / SOURCE / TABLE, INSERT, SET) is read here;
//! types, expressions and queries are handed to sqlparser, the parser DataFusion uses,
//! so that every query DataFusion accepts is accepted in a job file too.

use std::collections::BTreeMap;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, Query, visit_relations_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::column_type::parse_column_type;
use crate::error::{ErrorKind, Pos, Result, SqlError, from_parser_error, nearest};
use crate::job::{
    CatalogDef, CatalogKind, CheckDef, InlineSecret, InsertDef, JobFile, LookupDef, LookupOptions,
    MetadataKey, PartitionField, QualityDef, SourceColumn, SourceDef, SourceFormat, TableColumn,
    TableDef, TableName, TableOptions, Transform,
};
use crate::key_options::Declared;
use crate::options::{OptionReader, RawOption};
use crate::source_options::{MIN_REFRESH_INTERVAL, kafka_options};
use crate::substitute::{Variables, substitute};
use crate::system_time::strip_system_time;
use crate::table_options::{TableWith, table_options};

/// Options `SET` accepts.
const SETTINGS: &[&str] = &["job.name", "lookup.refresh-interval", "lookup.max-memory"];
const CATALOG_OPTIONS: &[&str] = &["type", "uri", "warehouse", "storage.*"];
/// Settings of the REST client, passed to it as they are.
const REST_OPTIONS: &[&str] = &[
    "credential",
    "token",
    "oauth2-server-uri",
    "scope",
    "audience",
    "resource",
    "prefix",
];

/// Whether option `key`, written as `raw`, spells a secret out: a secret key whose value
/// is not entirely a `${VAR}` reference, or a URI with a password of its own.
fn holds_inline_secret(key: &str, raw: &str) -> bool {
    let whole_reference =
        raw.starts_with("${") && raw.ends_with('}') && raw.matches("${").count() == 1;
    if crate::redact::is_secret_key(key) {
        return !raw.is_empty() && !whole_reference;
    }
    let redacted = crate::redact::redact_uri(raw);
    redacted != raw && !redacted_part_is_reference(raw)
}

/// True when the password of URI `raw` is a `${VAR}` reference.
fn redacted_part_is_reference(raw: &str) -> bool {
    raw.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(user_info, _)| user_info.split_once(':'))
        .is_some_and(|(_, password)| password.starts_with("${"))
}

/// Parses the job file `path` whose text is `text`, substituting `${VAR}`s from `vars`.
pub fn parse_job(path: &str, text: &str, vars: &dyn Variables) -> Result<JobFile> {
    parse_inner(path, text, vars).map_err(|e| e.in_file(path))
}

fn parse_inner(path: &str, text: &str, vars: &dyn Variables) -> Result<JobFile> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            from_parser_error(ParserError::TokenizerError(e.to_string()), Pos::new(1, 1))
        })?;
    let parser = Parser::new(&dialect).with_tokens_with_locations(strip_system_time(tokens));
    let mut jp = JobParser {
        p: parser,
        vars,
        raw_tables: vec![],
        raw_inserts: vec![],
        catalogs: vec![],
        sources: vec![],
        lookup_topics: vec![],
        job_name: None,
        lookup_options: LookupOptions::default(),
        inline_secrets: vec![],
    };
    jp.statements()?;
    jp.finish(path)
}

struct RawTable {
    name: Vec<(String, Pos)>,
    pos: Pos,
    columns: Vec<TableColumn>,
    partition_by: Vec<PartitionField>,
    options: TableOptions,
    quality: QualityDef,
    /// `'dead-letter.table'` as written, resolved once all catalogs are known.
    dead_letter: Option<(String, Pos)>,
}

struct RawInsert {
    name: Vec<(String, Pos)>,
    pos: Pos,
    columns: Vec<Ident>,
    query: Box<datafusion::sql::sqlparser::ast::Query>,
}

struct JobParser<'a> {
    p: Parser<'a>,
    vars: &'a dyn Variables,
    raw_tables: Vec<RawTable>,
    raw_inserts: Vec<RawInsert>,
    catalogs: Vec<CatalogDef>,
    sources: Vec<SourceDef>,
    lookup_topics: Vec<SourceDef>,
    job_name: Option<String>,
    lookup_options: LookupOptions,
    inline_secrets: Vec<InlineSecret>,
}

/// A column as written, before it is known whether it belongs to a source or a table.
struct RawColumn {
    name: String,
    pos: Pos,
    data_type: arrow_schema::DataType,
    nullable: bool,
    metadata: Option<(MetadataKey, bool)>,
}

impl<'a> JobParser<'a> {
    fn pos(&self) -> Pos {
        self.p.peek_token_ref().span.start.into()
    }

    fn pe(&self, e: ParserError) -> SqlError {
        from_parser_error(e, self.pos())
    }

    fn err<T>(&self, kind: ErrorKind, msg: impl Into<String>) -> Result<T> {
        Err(SqlError::new(kind, self.pos(), msg))
    }

    fn expected<T>(&self, what: &str) -> Result<T> {
        let found = self.p.peek_token_ref().token.to_string();
        let found = if found.is_empty() {
            "end of file".into()
        } else {
            found
        };
        self.err(
            ErrorKind::Syntax,
            format!("Expected: {what}, found: {found}"),
        )
    }

    /// Consumes the bare word `w` (case-insensitive) if it is next.
    fn word(&mut self, w: &str) -> bool {
        let hit = matches!(&self.p.peek_token_ref().token,
            Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w));
        if hit {
            self.p.next_token();
        }
        hit
    }

    fn token(&mut self, t: &Token) -> Result<()> {
        if self.p.consume_token(t) {
            Ok(())
        } else {
            self.expected(&t.to_string())
        }
    }

    fn at_end_of_statement(&self) -> bool {
        matches!(self.p.peek_token_ref().token, Token::SemiColon | Token::EOF)
    }

    fn statements(&mut self) -> Result<()> {
        loop {
            while self.p.consume_token(&Token::SemiColon) {}
            if self.p.peek_token_ref().token == Token::EOF {
                return Ok(());
            }
            let pos = self.pos();
            if self.p.parse_keyword(Keyword::CREATE) {
                if self.word("CATALOG") {
                    self.create_catalog(pos)?;
                } else if self.word("SOURCE") {
                    self.create_table_like(pos, true)?;
                } else if self.p.parse_keyword(Keyword::TABLE) {
                    self.create_table_like(pos, false)?;
                } else {
                    return self.expected("CATALOG, SOURCE or TABLE after CREATE");
                }
            } else if self.p.parse_keyword(Keyword::INSERT) {
                self.insert(pos)?;
            } else if self.p.parse_keyword(Keyword::SET) {
                self.set()?;
            } else {
                return self
                    .expected("CREATE CATALOG, CREATE SOURCE, CREATE TABLE, INSERT INTO or SET");
            }
            if !self.at_end_of_statement() {
                return self.expected("; at the end of the statement");
            }
        }
    }

    fn string_literal(&mut self, what: &str) -> Result<(String, Pos)> {
        let pos = self.pos();
        match self.p.peek_token_ref().token.clone() {
            Token::SingleQuotedString(s) => {
                self.p.next_token();
                Ok((s, pos))
            }
            _ => self.expected(what),
        }
    }

    /// `'key' = 'value'` pairs in parentheses; the `WITH` is already consumed.
    fn option_list(&mut self) -> Result<Vec<RawOption>> {
        self.token(&Token::LParen)?;
        let mut out = vec![];
        if self.p.consume_token(&Token::RParen) {
            return Ok(out);
        }
        loop {
            let (key, key_pos) =
                self.string_literal("an option key in single quotes, like 'topic'")?;
            self.token(&Token::Eq)?;
            let (raw, value_pos) = self.string_literal("an option value in single quotes")?;
            let value = substitute(&raw, self.vars, value_pos)?;
            if holds_inline_secret(&key, &raw) {
                self.inline_secrets.push(InlineSecret {
                    key: key.clone(),
                    line: value_pos.line,
                    column: value_pos.column,
                });
            }
            out.push(RawOption {
                key,
                value,
                key_pos,
                value_pos,
            });
            if self.p.consume_token(&Token::Comma) {
                continue;
            }
            self.token(&Token::RParen)?;
            return Ok(out);
        }
    }

    fn with_options(&mut self) -> Result<Vec<RawOption>> {
        if self.p.parse_keyword(Keyword::WITH) {
            self.option_list()
        } else {
            Ok(vec![])
        }
    }

    fn name_parts(&mut self) -> Result<Vec<(String, Pos)>> {
        let pos = self.pos();
        let name: ObjectName = self.p.parse_object_name(false).map_err(|e| self.pe(e))?;
        let mut parts = vec![];
        for part in name.0 {
            match part.as_ident() {
                Some(id) => parts.push((id.value.clone(), Pos::from(id.span.start).or(pos))),
                None => return Err(SqlError::new(ErrorKind::Syntax, pos, "Expected: a name")),
            }
        }
        Ok(parts)
    }

    fn set(&mut self) -> Result<()> {
        let (key, key_pos) =
            self.string_literal("a setting key in single quotes, like 'job.name'")?;
        self.token(&Token::Eq)?;
        let (raw, value_pos) = self.string_literal("a setting value in single quotes")?;
        let value = substitute(&raw, self.vars, value_pos)?;
        match key.as_str() {
            "job.name" => {
                if value.trim().is_empty() || value.contains(['/', '\\']) {
                    return Err(SqlError::new(
                        ErrorKind::Option,
                        value_pos,
                        "job.name must be a non-empty name without slashes",
                    ));
                }
                self.job_name = Some(value);
                Ok(())
            }
            "lookup.refresh-interval" => {
                let d = crate::units::parse_duration(&value)
                    .map_err(|e| SqlError::new(ErrorKind::Option, value_pos, e))?;
                if d < MIN_REFRESH_INTERVAL {
                    return Err(SqlError::new(
                        ErrorKind::Option,
                        value_pos,
                        "lookup.refresh-interval must be at least 100ms",
                    ));
                }
                self.lookup_options.refresh_interval = d;
                Ok(())
            }
            "lookup.max-memory" => {
                let n = crate::units::parse_size(&value)
                    .map_err(|e| SqlError::new(ErrorKind::Option, value_pos, e))?;
                if n == 0 {
                    return Err(SqlError::new(
                        ErrorKind::Option,
                        value_pos,
                        "lookup.max-memory must be more than 0 bytes",
                    ));
                }
                self.lookup_options.max_memory = n;
                Ok(())
            }
            other => {
                let hint = nearest(other, SETTINGS.iter().copied())
                    .map(|n| format!("; did you mean '{n}'?"))
                    .unwrap_or_else(|| format!("; valid settings are {}", SETTINGS.join(", ")));
                Err(SqlError::new(
                    ErrorKind::Option,
                    key_pos,
                    format!("unknown setting '{other}'{hint}"),
                ))
            }
        }
    }

    fn create_catalog(&mut self, pos: Pos) -> Result<()> {
        let parts = self.name_parts()?;
        let [(name, _)] = parts.as_slice() else {
            return Err(SqlError::new(
                ErrorKind::Syntax,
                pos,
                "a catalog name has one part, like `lake`",
            ));
        };
        if self
            .catalogs
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
        {
            return Err(SqlError::new(
                ErrorKind::Name,
                pos,
                format!("catalog '{name}' is declared twice"),
            ));
        }
        if !self.p.parse_keyword(Keyword::WITH) {
            return self.expected("WITH ('type' = …) after the catalog name");
        }
        let options = self.option_list()?;
        let mut r = OptionReader::new(format!("catalog {name}"), pos, options)?;
        let kind = match r.choice("type", &["sql", "rest"])? {
            Some("sql") => CatalogKind::Sql {
                uri: r.required("uri")?,
            },
            Some("rest") => {
                let uri = r.required("uri")?;
                let mut options = BTreeMap::new();
                for key in REST_OPTIONS {
                    if let Some(v) = r.string(key) {
                        options.insert(key.to_string(), v);
                    }
                }
                for (k, v) in r.with_prefix("header.") {
                    options.insert(format!("header.{k}"), v);
                }
                CatalogKind::Rest { uri, options }
            }
            _ => {
                return Err(SqlError::new(
                    ErrorKind::Option,
                    pos,
                    format!("catalog {name} needs the option 'type' (one of: sql, rest)"),
                ));
            }
        };
        let warehouse = r.required("warehouse")?;
        let storage = r.with_prefix("storage.");
        let known: Vec<&str> = match kind {
            CatalogKind::Sql { .. } => CATALOG_OPTIONS.to_vec(),
            CatalogKind::Rest { .. } => CATALOG_OPTIONS
                .iter()
                .chain(REST_OPTIONS)
                .chain(&["header.*"])
                .copied()
                .collect(),
        };
        r.finish(&known)?;
        self.catalogs.push(CatalogDef {
            name: name.clone(),
            pos,
            kind,
            warehouse,
            storage,
        });
        Ok(())
    }

    fn column(&mut self, allow_metadata: bool) -> Result<RawColumn> {
        let pos = self.pos();
        let ident = self.p.parse_identifier().map_err(|e| self.pe(e))?;
        let type_pos = self.pos();
        let data_type = parse_column_type(&mut self.p).map_err(|mut e| {
            e.message = format!("column {}: {}", ident.value, e.message);
            e
        })?;
        let mut nullable = true;
        let mut metadata = None;
        loop {
            if self.p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
                nullable = false;
            } else if self.p.parse_keyword(Keyword::NULL) {
                nullable = true;
            } else if self.p.parse_keyword(Keyword::COMMENT) {
                self.string_literal("a comment in single quotes")?;
            } else if self.word("METADATA") {
                let mpos = self.pos();
                if !allow_metadata {
                    return Err(SqlError::new(
                        ErrorKind::Syntax,
                        mpos,
                        "METADATA columns belong to sources, not to Iceberg tables",
                    ));
                }
                let (key_name, kpos) = if self.p.parse_keyword(Keyword::FROM) {
                    self.string_literal("a metadata key in single quotes, like 'offset'")?
                } else {
                    (ident.value.clone(), pos)
                };
                let key = MetadataKey::parse(&key_name).ok_or_else(|| {
                    let hint = nearest(&key_name, MetadataKey::NAMES)
                        .map(|n| format!("; did you mean '{n}'?"))
                        .unwrap_or_default();
                    SqlError::new(
                        ErrorKind::Syntax,
                        kpos,
                        format!(
                            "unknown metadata key '{key_name}' (valid: {}){hint}",
                            MetadataKey::NAMES.join(", ")
                        ),
                    )
                })?;
                if !key.accepts(&data_type) {
                    return Err(SqlError::new(
                        ErrorKind::Syntax,
                        type_pos,
                        format!(
                            "metadata column {} ('{key_name}') cannot have type {data_type}",
                            ident.value
                        ),
                    ));
                }
                let virtual_ = self.word("VIRTUAL");
                metadata = Some((key, virtual_));
            } else if self.p.parse_keyword(Keyword::PRIMARY)
                || self.p.parse_keyword(Keyword::UNIQUE)
            {
                return Err(SqlError::new(
                    ErrorKind::Syntax,
                    pos,
                    "PRIMARY KEY and UNIQUE are not supported: Floe appends rows to Iceberg tables",
                ));
            } else {
                break;
            }
        }
        Ok(RawColumn {
            name: ident.value,
            pos,
            data_type,
            nullable,
            metadata,
        })
    }

    /// `CREATE SOURCE …` or `CREATE TABLE …`; a TABLE with a 'connector' option is a source too.
    fn create_table_like(&mut self, pos: Pos, is_source: bool) -> Result<()> {
        let _ = self
            .p
            .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = self.name_parts()?;
        // A source in a registry format may leave its columns to the writer schema.
        let (columns, checks, primary_key) = if self.p.consume_token(&Token::LParen) {
            self.column_list()?
        } else if self.p.peek_keyword(Keyword::WITH) {
            (vec![], vec![], None)
        } else {
            return self.expected("a column list `(…)` or WITH");
        };
        let mut partition_by = vec![];
        if self.p.parse_keyword(Keyword::PARTITIONED) {
            self.p
                .expect_keyword_is(Keyword::BY)
                .map_err(|e| self.pe(e))?;
            partition_by = self.partition_fields()?;
        }
        let options = self.with_options()?;
        let is_source = is_source || options.iter().any(|o| o.key == "connector");
        if let Some(pk) = primary_key {
            check_primary_key(&pk, &columns, &options)?;
        }
        if is_source {
            if !partition_by.is_empty() {
                return Err(SqlError::new(
                    ErrorKind::Syntax,
                    partition_by[0].pos,
                    "PARTITIONED BY belongs to Iceberg tables, not to sources",
                ));
            }
            if let Some(c) = checks.first() {
                return Err(SqlError::new(
                    ErrorKind::Syntax,
                    c.pos,
                    "CHECK constraints belong to Iceberg tables: a source's bad records are \
                     handled by the policies of the tables that read it",
                ));
            }
            self.source(pos, name, columns, options)
        } else {
            self.table(pos, name, columns, partition_by, options, checks)
        }
    }

    /// The columns, CHECK constraints and `PRIMARY KEY (…)` of a column list, after its `(`.
    fn column_list(&mut self) -> Result<(Vec<RawColumn>, Vec<CheckDef>, Option<PrimaryKey>)> {
        let mut columns: Vec<RawColumn> = vec![];
        let mut checks: Vec<CheckDef> = vec![];
        let mut primary_key = None;
        loop {
            if let Some(check) = self.check_constraint(checks.len())? {
                if checks
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(&check.name))
                {
                    return Err(SqlError::new(
                        ErrorKind::Name,
                        check.pos,
                        format!("constraint {} is declared twice", check.name),
                    ));
                }
                checks.push(check);
                if self.p.consume_token(&Token::Comma) {
                    continue;
                }
                self.token(&Token::RParen)?;
                break;
            }
            if self.word("WATERMARK") {
                return self.err(
                    ErrorKind::Syntax,
                    "WATERMARK is not supported: Floe jobs are stateless ingestion",
                );
            }
            if self.p.peek_keyword(Keyword::PRIMARY) {
                primary_key = Some(self.primary_key()?);
                if self.p.consume_token(&Token::Comma) {
                    continue;
                }
                self.token(&Token::RParen)?;
                break;
            }
            let col = self.column(true)?;
            if columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&col.name))
            {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    col.pos,
                    format!("column {} is declared twice", col.name),
                ));
            }
            columns.push(col);
            if self.p.consume_token(&Token::Comma) {
                continue;
            }
            self.token(&Token::RParen)?;
            break;
        }
        Ok((columns, checks, primary_key))
    }

    /// `PRIMARY KEY (a, b) [NOT ENFORCED]`.
    fn primary_key(&mut self) -> Result<PrimaryKey> {
        let pos = self.pos();
        self.p
            .expect_keywords(&[Keyword::PRIMARY, Keyword::KEY])
            .map_err(|e| self.pe(e))?;
        self.token(&Token::LParen)?;
        let mut columns = vec![];
        loop {
            let at = self.pos();
            let ident = self.p.parse_identifier().map_err(|e| self.pe(e))?;
            columns.push((ident.value, at));
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        self.token(&Token::RParen)?;
        let _ = self.p.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        Ok(PrimaryKey { columns, pos })
    }

    /// `[CONSTRAINT name] CHECK (expr)`, if one starts here.
    fn check_constraint(&mut self, declared: usize) -> Result<Option<CheckDef>> {
        let pos = self.pos();
        let name = if self.p.parse_keyword(Keyword::CONSTRAINT) {
            let ident = self.p.parse_identifier().map_err(|e| self.pe(e))?;
            if !self.p.peek_keyword(Keyword::CHECK) {
                return self.expected("CHECK (condition) after the constraint name");
            }
            Some(ident.value)
        } else if self.p.peek_keyword(Keyword::CHECK) {
            None
        } else {
            return Ok(None);
        };
        self.p
            .expect_keyword_is(Keyword::CHECK)
            .map_err(|e| self.pe(e))?;
        self.token(&Token::LParen)?;
        let expr = self.p.parse_expr().map_err(|e| self.pe(e))?;
        self.token(&Token::RParen)?;
        // Flink writes `NOT ENFORCED`; Floe always enforces, so the words are accepted and ignored.
        let _ = self.p.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        let _ = self.p.parse_keyword(Keyword::ENFORCED);
        Ok(Some(CheckDef {
            name: name.unwrap_or_else(|| format!("check_{}", declared + 1)),
            expr,
            pos,
        }))
    }

    fn partition_fields(&mut self) -> Result<Vec<PartitionField>> {
        self.token(&Token::LParen)?;
        let mut out = vec![];
        loop {
            let pos = self.pos();
            let first = self.p.parse_identifier().map_err(|e| self.pe(e))?;
            let field = if self.p.consume_token(&Token::LParen) {
                let f = first.value.to_ascii_lowercase();
                let simple = |t| -> Option<Transform> { Some(t) };
                let transform = match f.as_str() {
                    "identity" => simple(Transform::Identity),
                    "year" | "years" => simple(Transform::Year),
                    "month" | "months" => simple(Transform::Month),
                    "day" | "days" => simple(Transform::Day),
                    "hour" | "hours" => simple(Transform::Hour),
                    "bucket" | "truncate" => None,
                    _ => {
                        return Err(SqlError::new(
                            ErrorKind::Syntax,
                            pos,
                            format!(
                                "unknown partition transform '{}' (valid: identity, year, month, day, hour, bucket(N, col), truncate(W, col))",
                                first.value
                            ),
                        ));
                    }
                };
                let (transform, column) = match transform {
                    Some(t) => (t, self.p.parse_identifier().map_err(|e| self.pe(e))?.value),
                    None => {
                        let npos = self.pos();
                        let n = self.p.parse_literal_uint().map_err(|e| self.pe(e))?;
                        let n = u32::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                            SqlError::new(
                                ErrorKind::Syntax,
                                npos,
                                format!("{f} needs a positive width, not {n}"),
                            )
                        })?;
                        self.token(&Token::Comma)?;
                        let col = self.p.parse_identifier().map_err(|e| self.pe(e))?.value;
                        let t = if f == "bucket" {
                            Transform::Bucket(n)
                        } else {
                            Transform::Truncate(n)
                        };
                        (t, col)
                    }
                };
                self.token(&Token::RParen)?;
                PartitionField {
                    column,
                    transform,
                    pos,
                }
            } else {
                PartitionField {
                    column: first.value,
                    transform: Transform::Identity,
                    pos,
                }
            };
            out.push(field);
            if self.p.consume_token(&Token::Comma) {
                continue;
            }
            self.token(&Token::RParen)?;
            return Ok(out);
        }
    }

    fn source(
        &mut self,
        pos: Pos,
        name: Vec<(String, Pos)>,
        columns: Vec<RawColumn>,
        options: Vec<RawOption>,
    ) -> Result<()> {
        let [(name, _)] = name.as_slice() else {
            return Err(SqlError::new(
                ErrorKind::Syntax,
                pos,
                "a source name has one part, like `orders`",
            ));
        };
        if self
            .sources
            .iter()
            .chain(&self.lookup_topics)
            .any(|s| s.name.eq_ignore_ascii_case(name))
        {
            return Err(SqlError::new(
                ErrorKind::Name,
                pos,
                format!("source '{name}' is declared twice"),
            ));
        }
        let what = format!("source {name}");
        let declared: Vec<Declared> = columns
            .iter()
            .map(|c| Declared {
                name: &c.name,
                metadata: c.metadata.is_some(),
            })
            .collect();
        let (kafka, upsert) = kafka_options(&what, pos, options, &declared)?;
        let format = kafka.format;
        let columns_from_schema = columns.iter().all(|c| c.metadata.is_some());
        if columns_from_schema && format == SourceFormat::Json {
            return Err(SqlError::new(
                ErrorKind::Syntax,
                pos,
                format!(
                    "{what} declares no payload columns: a 'json' source declares the fields it reads \
                     (only 'avro-confluent', 'protobuf-confluent', 'json-confluent' and 'avro' \
                     sources can take their columns from the writer schema)"
                ),
            ));
        }
        let columns = columns
            .into_iter()
            .map(|c| SourceColumn {
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                metadata: c.metadata.map(|(k, _)| k),
                pos: c.pos,
            })
            .collect();
        let list = match upsert {
            Some(_) => &mut self.lookup_topics,
            None => &mut self.sources,
        };
        list.push(SourceDef {
            name: name.clone(),
            pos,
            columns,
            columns_from_schema,
            columns_version: None,
            kafka,
            upsert,
        });
        Ok(())
    }

    fn table(
        &mut self,
        pos: Pos,
        name: Vec<(String, Pos)>,
        columns: Vec<RawColumn>,
        partition_by: Vec<PartitionField>,
        options: Vec<RawOption>,
        checks: Vec<CheckDef>,
    ) -> Result<()> {
        if columns.is_empty() {
            return Err(SqlError::new(
                ErrorKind::Syntax,
                pos,
                "an Iceberg table declares its columns: CREATE TABLE name (column TYPE, …)",
            ));
        }
        if let Some(c) = columns.iter().find(|c| c.metadata.is_some()) {
            return Err(SqlError::new(
                ErrorKind::Syntax,
                c.pos,
                "METADATA columns belong to sources; an Iceberg table needs no 'connector'",
            ));
        }
        let what = format!(
            "table {}",
            name.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(".")
        );
        let TableWith {
            options,
            quality,
            dead_letter,
        } = table_options(&what, pos, options, checks)?;
        for f in &partition_by {
            if !columns.iter().any(|c| c.name == f.column) {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    f.pos,
                    format!("partition column {} is not a column of {what}", f.column),
                ));
            }
        }
        let columns = columns
            .into_iter()
            .map(|c| TableColumn {
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                pos: c.pos,
            })
            .collect();
        self.raw_tables.push(RawTable {
            name,
            pos,
            columns,
            partition_by,
            options,
            quality,
            dead_letter,
        });
        Ok(())
    }

    fn insert(&mut self, pos: Pos) -> Result<()> {
        self.p
            .expect_keyword_is(Keyword::INTO)
            .map_err(|e| self.pe(e))?;
        let name = self.name_parts()?;
        let mut columns = vec![];
        if self.p.consume_token(&Token::LParen) {
            loop {
                columns.push(self.p.parse_identifier().map_err(|e| self.pe(e))?);
                if !self.p.consume_token(&Token::Comma) {
                    break;
                }
            }
            self.token(&Token::RParen)?;
        }
        let mut query = self.p.parse_query().map_err(|e| self.pe(e))?;
        crate::json_arrows::json_arrows(&mut query);
        self.raw_inserts.push(RawInsert {
            name,
            pos,
            columns,
            query,
        });
        Ok(())
    }

    /// Finds the Iceberg tables `query` reads (every table named with a namespace: the
    /// job's sources have one-part names) and writes each name out in full,
    /// `catalog.namespace.table`, as the planner registers it.
    fn lookups(&self, query: &mut Query, found: &mut Vec<LookupDef>) -> Result<()> {
        let flow = visit_relations_mut(query, |name: &mut ObjectName| {
            let parts: Vec<(String, Pos)> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident())
                .map(|id| (id.value.clone(), Pos::from(id.span.start)))
                .collect();
            if parts.len() < 2 || parts.len() != name.0.len() {
                return ControlFlow::Continue(());
            }
            let pos = parts[0].1;
            let table = match self.resolve(&parts, pos) {
                Ok(t) if t.namespace.len() == 1 => t,
                Ok(t) => {
                    return ControlFlow::Break(SqlError::new(
                        ErrorKind::Name,
                        pos,
                        format!(
                            "lookup table {t}: a lookup table's namespace must have one \
                             level (catalog.namespace.table)"
                        ),
                    ));
                }
                Err(e) => return ControlFlow::Break(e),
            };
            let span = |i: usize| name.0.get(i).and_then(|p| p.as_ident()).map(|id| id.span);
            let full = [&table.catalog, &table.namespace[0], &table.name];
            let idents: Vec<Ident> = full
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let mut id = Ident::new(v.as_str());
                    if let Some(s) = span(i.min(parts.len() - 1)) {
                        id.span = s;
                    }
                    id
                })
                .collect();
            *name = ObjectName::from(idents);
            if !found.iter().any(|l: &LookupDef| l.name == table) {
                found.push(LookupDef {
                    name: table,
                    pos,
                    schema: None,
                });
            }
            ControlFlow::Continue(())
        });
        match flow {
            ControlFlow::Break(e) => Err(e),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn resolve(&self, parts: &[(String, Pos)], pos: Pos) -> Result<TableName> {
        // Table locations are derived from these names under the warehouse: a name must
        // not be able to point anywhere else.
        for (part, at) in parts {
            let bad = part.is_empty()
                || part == "."
                || part == ".."
                || part
                    .chars()
                    .any(|c| c.is_control() || matches!(c, '/' | '\\' | '*' | '?' | '[' | ']'));
            if bad {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    *at,
                    format!(
                        "'{}' cannot be part of a table name: names become storage paths, so \
                         they must not be empty, '.' or '..', or contain '/', '\\', '*', '?', \
                         '[', ']' or control characters",
                        part.escape_default()
                    ),
                ));
            }
        }
        let (catalog, rest) = match parts {
            [c, ns @ .., t]
                if !ns.is_empty()
                    && self
                        .catalogs
                        .iter()
                        .any(|x| x.name.eq_ignore_ascii_case(&c.0)) =>
            {
                (c.0.clone(), (ns.to_vec(), t.clone()))
            }
            [ns @ .., t] if !ns.is_empty() && self.catalogs.len() == 1 => {
                (self.catalogs[0].name.clone(), (ns.to_vec(), t.clone()))
            }
            _ => {
                let written = parts
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                let hint = match self.catalogs.len() {
                    0 => "declare its catalog first with CREATE CATALOG".to_string(),
                    _ => format!(
                        "write it as catalog.namespace.table, with catalog one of: {}",
                        self.catalogs
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(SqlError::new(
                    ErrorKind::Name,
                    parts.first().map(|p| p.1).unwrap_or(pos),
                    format!("cannot resolve table name '{written}': {hint}"),
                ));
            }
        };
        let catalog = self
            .catalogs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&catalog))
            .map(|c| c.name.clone())
            .unwrap_or(catalog);
        Ok(TableName {
            catalog,
            namespace: rest.0.into_iter().map(|p| p.0).collect(),
            name: rest.1.0,
        })
    }

    fn finish(self, path: &str) -> Result<JobFile> {
        let mut tables: Vec<TableDef> = vec![];
        for t in &self.raw_tables {
            let name = self.resolve(&t.name, t.pos)?;
            if tables.iter().any(|x| x.name == name) {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    t.pos,
                    format!("table {name} is declared twice"),
                ));
            }
            let mut quality = t.quality.clone();
            if let Some((written, at)) = &t.dead_letter {
                let parts: Vec<(String, Pos)> = written
                    .split('.')
                    .map(|p| (p.trim().to_string(), *at))
                    .collect();
                quality.dead_letter = Some(self.resolve(&parts, *at)?);
            }
            tables.push(TableDef {
                name,
                pos: t.pos,
                columns: t.columns.clone(),
                partition_by: t.partition_by.clone(),
                options: t.options.clone(),
                quality,
            });
        }
        for t in &tables {
            if let Some(dlq) = &t.quality.dead_letter
                && tables.iter().any(|x| &x.name == dlq)
            {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    t.pos,
                    format!(
                        "table {}: the dead-letter table {dlq} is also declared with CREATE TABLE; \
                         Floe creates dead-letter tables itself, with a fixed schema",
                        t.name
                    ),
                ));
            }
        }
        let mut inserts = vec![];
        let mut lookups = vec![];
        for i in &self.raw_inserts {
            let mut query = i.query.clone();
            self.lookups(&mut query, &mut lookups)?;
            let target = self.resolve(&i.name, i.pos)?;
            if !tables.iter().any(|t| t.name == target) {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    i.pos,
                    format!(
                        "INSERT INTO {target}: the table is not declared; add CREATE TABLE {target} (…) to the job"
                    ),
                ));
            }
            inserts.push(InsertDef {
                target,
                pos: i.pos,
                columns: i.columns.clone(),
                query,
            });
        }
        if inserts.is_empty() {
            return Err(SqlError::new(
                ErrorKind::Syntax,
                Pos::default(),
                "the job has no INSERT INTO statement, so it would do nothing",
            ));
        }
        let name = self.job_name.clone().unwrap_or_else(|| {
            std::path::Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "job".into())
        });
        let mut sources = self.sources;
        for s in &mut sources {
            if s.kafka.group_id.is_empty() {
                s.kafka.group_id = format!("floe-{name}");
            }
        }
        check_topics_unique(&sources)?;
        let lookup_topics = self.lookup_topics;
        Ok(JobFile {
            path: path.to_string(),
            name_is_set: self.job_name.is_some(),
            name,
            catalogs: self.catalogs,
            sources,
            lookup_topics,
            tables,
            inserts,
            lookups,
            lookup_options: self.lookup_options,
            inline_secrets: self.inline_secrets,
        })
    }
}

/// `PRIMARY KEY (…)` as written in a column list.
struct PrimaryKey {
    columns: Vec<(String, Pos)>,
    pos: Pos,
}

/// A primary key is accepted where Flink requires one, on an `'upsert-kafka'` source, and
/// must name declared columns; rows are keyed by the record key either way.
fn check_primary_key(pk: &PrimaryKey, columns: &[RawColumn], options: &[RawOption]) -> Result<()> {
    let upsert = options
        .iter()
        .any(|o| o.key == "connector" && o.value.trim().eq_ignore_ascii_case("upsert-kafka"));
    if !upsert {
        return Err(SqlError::new(
            ErrorKind::Syntax,
            pk.pos,
            "PRIMARY KEY is not supported: Floe appends rows to Iceberg tables (an \
             'upsert-kafka' source may declare the key its topic is compacted by)",
        ));
    }
    for (name, at) in &pk.columns {
        if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
            return Err(SqlError::new(
                ErrorKind::Name,
                *at,
                format!("PRIMARY KEY column {name} is not declared"),
            ));
        }
    }
    Ok(())
}

trait OrPos {
    fn or(self, other: Pos) -> Pos;
}

impl OrPos for Pos {
    fn or(self, other: Pos) -> Pos {
        if self.line == 0 { other } else { self }
    }
}
/// Refuses two sources that read one topic name (on one cluster or two): a table's
/// checkpoint keeps offsets by topic name and partition, so their offsets would collide,
/// and on one cluster they would also split the partitions of one consumer group.
fn check_topics_unique(sources: &[SourceDef]) -> Result<()> {
    for (i, s) in sources.iter().enumerate() {
        if let Some(first) = sources[..i].iter().find(|o| o.kafka.topic == s.kafka.topic) {
            return Err(SqlError::new(
                ErrorKind::Option,
                s.pos,
                format!(
                    "sources {} and {} both read topic '{}': tables keep their offsets by topic \
                     and partition, so the two would overwrite each other's. Read the topic \
                     through one source; several INSERTs can share it",
                    first.name, s.name, s.kafka.topic
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::holds_inline_secret;

    #[test]
    fn secrets_written_inline_are_found_and_references_are_not() {
        for (key, raw) in [
            ("properties.sasl.password", "hunter2"),
            ("properties.sasl.password", "pre-${SUFFIX}"),
            ("s3.secret-access-key", "AKIA/abc"),
            ("uri", "postgresql://floe:hunter2@db:5432/lake"),
        ] {
            assert!(holds_inline_secret(key, raw), "{key} = {raw}");
        }
        for (key, raw) in [
            ("properties.sasl.password", "${SASL_PASSWORD}"),
            ("properties.sasl.username", "floe"),
            ("uri", "postgresql://floe:${PGPASSWORD}@db:5432/lake"),
            ("uri", "postgresql://floe@db:5432/lake"),
            ("s3.secret-access-key", ""),
        ] {
            assert!(!holds_inline_secret(key, raw), "{key} = {raw}");
        }
    }
}
