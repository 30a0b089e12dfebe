//! Every job-file SQL block in the README and under `docs/` parses and plans, so the
//! documentation cannot drift from the language.
//!
//! A block fenced as `sql` is a job file or a fragment of one; a block fenced as
//! `sql query` is a query for `floe query` and is left alone. A fragment is completed
//! with what it leaves out, as the text around it says: a job name, a SQLite catalog
//! `lake`, the `orders` source of the examples, and the `CREATE TABLE` of an earlier
//! block on the same page that it inserts into; a block without an INSERT gets one
//! that reads its source. Each is then planned as `floe validate` plans it, with lookup
//! tables and registry sources given their columns as the engine gives them from their
//! catalog and registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use floe_sql::Pos;
use floe_sql::job::SourceColumn;
use floe_sql::{Variables, compile, parse_job};

const JOB_NAME: &str = "SET 'job.name' = 'docs';\n";
const CATALOG: &str = "CREATE CATALOG lake WITH ('type' = 'sql', \
    'uri' = 'sqlite:///tmp/floe-docs/catalog.db', 'warehouse' = 'file:///tmp/floe-docs/wh');\n";
const ORDERS: &str = "CREATE SOURCE orders (order_id BIGINT NOT NULL, customer_id BIGINT, \
    amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP NOT NULL) WITH (\
    'connector' = 'kafka', 'topic' = 'orders', 'format' = 'json', \
    'properties.bootstrap.servers' = 'localhost:9092');\n";

/// Job-file blocks the pages hold: a block added or removed changes this on purpose.
const EXPECTED_BLOCKS: usize = 13;

/// Values for the `${VAR}`s the examples use, shaped as their options expect.
struct Placeholders;

impl Variables for Placeholders {
    fn get(&self, name: &str) -> Option<String> {
        Some(if name.ends_with("_URL") {
            "http://localhost:8081".into()
        } else if name.ends_with("_AUTH") {
            "user:secret".into()
        } else if name.ends_with("BOOTSTRAP") {
            "localhost:9092".into()
        } else {
            format!("{}-value", name.to_lowercase())
        })
    }
}

struct Block {
    page: PathBuf,
    line: usize,
    text: String,
}

fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pages = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
    let mut found: Vec<PathBuf> = docs
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    found.sort();
    pages.extend(found);
    pages
}

/// The blocks fenced exactly as `sql` on one page, in order.
fn sql_blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).expect("page");
    let mut blocks = vec![];
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.trim_end()) {
            (None, "```sql") => open = Some((i + 1, String::new())),
            (None, _) => {}
            (Some(_), "```") => {
                let (start, body) = open.take().expect("open block");
                blocks.push(Block {
                    page: page.to_path_buf(),
                    line: start,
                    text: body,
                });
            }
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    blocks
}

/// `CREATE TABLE` statements of a block, by the table's name.
fn table_statements(text: &str) -> Vec<(String, String)> {
    text.match_indices("CREATE TABLE ")
        .filter_map(|(at, _)| {
            let statement = &text[at..at + text[at..].find(';')? + 1];
            let name = statement["CREATE TABLE ".len()..]
                .split([' ', '('])
                .next()?;
            Some((name.to_string(), format!("{statement}\n")))
        })
        .collect()
}

/// The name of the first source a block declares.
fn declared_source(text: &str) -> Option<&str> {
    let rest = text.split("CREATE SOURCE ").nth(1)?;
    rest.split([' ', '(']).next()
}

/// The block with what it leaves out put around it: before it, a job name, a catalog,
/// the `orders` source and the tables it inserts into; after it, an INSERT that reads
/// its source when it has none (a job without one is refused).
fn complete(block: &Block, earlier_tables: &[(String, String)]) -> String {
    let text = &block.text;
    let mut head = String::new();
    let mut tail = String::new();
    if !text.contains("'job.name'") {
        head.push_str(JOB_NAME);
    }
    if !text.contains("CREATE CATALOG") {
        head.push_str(CATALOG);
    }
    let source = declared_source(text);
    let reads_orders = text.contains("FROM orders") && !text.contains("CREATE SOURCE orders");
    if source.is_none() || reads_orders {
        head.push_str(ORDERS);
    }
    for (name, statement) in earlier_tables {
        let inserted = text.contains(&format!("INSERT INTO {name}\n"))
            || text.contains(&format!("INSERT INTO {name} "));
        if inserted && !text.contains(&format!("CREATE TABLE {name}")) {
            head.push_str(statement);
        }
    }
    if !text.contains("INSERT INTO") {
        let from = source.unwrap_or("orders");
        tail = format!(
            "CREATE TABLE lake.docs.probe (n BIGINT);\nINSERT INTO lake.docs.probe SELECT 1 FROM {from};\n"
        );
    }
    format!("{head}{text}{tail}")
}

fn lookup_schema(table: &str) -> Arc<Schema> {
    let fields = match table {
        "rates" => vec![
            Field::new("code", DataType::Utf8, false),
            Field::new("rate", DataType::Float64, true),
        ],
        "customers" => vec![
            Field::new("id", DataType::Int64, false),
            Field::new("segment", DataType::Utf8, true),
        ],
        other => panic!("a lookup table the docs test has no columns for: {other}"),
    };
    Arc::new(Schema::new(fields))
}

/// The columns a registry source without declared columns takes from its schema.
fn registry_columns() -> Vec<SourceColumn> {
    let column = |name: &str, data_type, nullable| SourceColumn {
        name: name.into(),
        data_type,
        nullable,
        metadata: None,
        pos: Pos::default(),
    };
    vec![
        column("id", DataType::Int64, false),
        column("amount", DataType::Float64, true),
    ]
}

/// Parses and plans the completed block's job.
async fn check(block: &Block, text: &str) -> Result<(), String> {
    let name = format!("{}:{}", block.page.display(), block.line);
    let mut job = parse_job(&name, text, &Placeholders).map_err(|e| e.to_string())?;
    for l in &mut job.lookups {
        l.schema = Some(lookup_schema(&l.name.name));
    }
    for s in job.sources.iter_mut().filter(|s| s.columns_from_schema) {
        s.take_payload_columns(registry_columns(), 1);
    }
    compile(job).await.map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::test]
async fn every_job_file_block_in_the_docs_parses_and_plans() {
    let mut blocks = 0;
    let mut failures = vec![];
    for page in pages() {
        let mut tables = vec![];
        for block in sql_blocks(&page) {
            blocks += 1;
            let text = complete(&block, &tables);
            if let Err(e) = check(&block, &text).await {
                failures.push(format!("{e}\n{text}"));
            }
            tables.extend(table_statements(&block.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(blocks, EXPECTED_BLOCKS, "job-file blocks found");
}
