//! Runs the job-file cases in `tests/cases/`: each `.sql` file is a job whose comments say
//! what must happen.
//!
//! - `-- expect-error: TEXT` — parsing or planning fails with a message containing TEXT;
//! - `-- expect-error-at: LINE:COL` — … at that position;
//! - `-- input: {json}` — a record given to the job's (only) source;
//! - `-- expect: {json}` — a row the first INSERT must produce and that passes its CHECKs;
//! - `-- expect-violation: RULE {json}` — a row it produces that breaks CHECK RULE first.
//!
//! Without `expect-error` the job must parse and plan.

use std::path::Path;

use arrow_array::RecordBatch;
use floe_sql::plan::with_row_numbers;
use floe_sql::{EnvVariables, compile, parse_job};

struct Case {
    errors: Vec<String>,
    error_at: Option<String>,
    input: Vec<String>,
    expect: Vec<String>,
    violations: Vec<String>,
}

fn directives(text: &str) -> Case {
    let mut c = Case {
        errors: vec![],
        error_at: None,
        input: vec![],
        expect: vec![],
        violations: vec![],
    };
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("--") else {
            continue;
        };
        let rest = rest.trim();
        if let Some(v) = rest.strip_prefix("expect-error:") {
            c.errors.push(v.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("expect-error-at:") {
            c.error_at = Some(v.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("input:") {
            c.input.push(v.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("expect-violation:") {
            c.violations.push(v.trim().to_string());
        } else if let Some(v) = rest.strip_prefix("expect:") {
            c.expect.push(v.trim().to_string());
        }
    }
    c
}

fn to_json_lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
    for b in batches {
        w.write(b).expect("write JSON");
    }
    w.finish().expect("finish JSON");
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

fn canonical(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON '{json}': {e}"))
}

async fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case = directives(&text);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = match parse_job(&name, &text, &EnvVariables) {
        Ok(job) => compile(job).await,
        Err(e) => Err(e),
    };
    match (result, case.errors.is_empty()) {
        (Err(e), false) => {
            let msg = e.to_string();
            for want in &case.errors {
                if !msg.contains(want.as_str()) {
                    return Err(format!("error '{msg}' does not contain '{want}'"));
                }
            }
            if let Some(at) = &case.error_at {
                let pos = format!("{}:{}", e.pos.line, e.pos.column);
                if &pos != at {
                    return Err(format!("error '{msg}' is at {pos}, expected {at}"));
                }
            }
            Ok(())
        }
        (Err(e), true) => Err(format!("unexpected error: {e}")),
        (Ok(_), false) => Err(format!("expected an error containing {:?}", case.errors)),
        (Ok(job), true) => {
            if case.input.is_empty() && case.expect.is_empty() {
                return Ok(());
            }
            let insert = &job.inserts[0];
            let schema = job.job.sources[insert.source].schema();
            let mut decoder = arrow_json::ReaderBuilder::new(schema)
                .build_decoder()
                .map_err(|e| e.to_string())?;
            decoder
                .decode(case.input.join("\n").as_bytes())
                .map_err(|e| e.to_string())?;
            let batch = decoder
                .flush()
                .map_err(|e| e.to_string())?
                .ok_or("no input rows")?;
            let batch = with_row_numbers(&batch).map_err(|e| e.to_string())?;
            job.slots[insert.source].set(vec![batch]);
            let out = insert
                .execute(job.task_ctx())
                .await
                .map_err(|e| e.to_string())?;
            let mut got = vec![];
            let mut violations = vec![];
            for b in &out {
                let broken = insert
                    .checks
                    .iter()
                    .map(|c| c.broken(b).map(|m| (c.name.clone(), m)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                // Rows without the row column, as the table gets them.
                let rows = b
                    .project(&(0..b.num_columns() - 1).collect::<Vec<_>>())
                    .map_err(|e| e.to_string())?;
                for (i, line) in to_json_lines(&[rows]).iter().enumerate() {
                    match broken.iter().find(|(_, m)| m.value(i)) {
                        Some((rule, _)) => violations.push(format!("{rule} {}", canonical(line))),
                        None => got.push(canonical(line)),
                    }
                }
            }
            let want: Vec<serde_json::Value> = case.expect.iter().map(|l| canonical(l)).collect();
            if got != want {
                return Err(format!("rows differ\n  got:  {got:?}\n  want: {want:?}"));
            }
            let want_violations: Vec<String> = case
                .violations
                .iter()
                .map(|v| match v.split_once(' ') {
                    Some((rule, row)) => format!("{rule} {}", canonical(row)),
                    None => v.clone(),
                })
                .collect();
            if violations != want_violations {
                return Err(format!(
                    "violations differ\n  got:  {violations:?}\n  want: {want_violations:?}"
                ));
            }
            Ok(())
        }
    }
}

#[tokio::test]
async fn job_file_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("cases dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the case files in {}",
        dir.display()
    );
    let mut failures = vec![];
    for p in &paths {
        if let Err(e) = run_case(p).await {
            failures.push(format!("{}: {e}", p.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = "CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE CATALOG rest WITH ('type' = 'rest', 'uri' = 'https://u:hunter4-secret@rest.example', 'warehouse' = 's3://b/wh',
  'credential' = 'client:hunter5-secret', 'token' = 'hunter6-secret', 'header.authorization' = 'Bearer hunter7-secret',
  'storage.s3.secret-access-key' = 'hunter8-secret');
CREATE SOURCE s (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json',
  'properties.bootstrap.servers' = 'k:9092', 'properties.security.protocol' = 'SASL_SSL',
  'properties.sasl.username' = 'floe', 'properties.sasl.password' = 'hunter2-secret',
  'properties.ssl.key.password' = 'hunter3-secret');
CREATE TABLE lake.n.t (a BIGINT);
INSERT INTO lake.n.t SELECT a FROM s;";
    let job = parse_job("secret.sql", text, &EnvVariables).expect("parses");
    let shown = format!("{job:?} {job:#?}");
    for n in 2..=8 {
        assert!(!shown.contains(&format!("hunter{n}")), "hunter{n}: {shown}");
    }
    assert!(
        shown.contains("sasl.username"),
        "non-secret options stay visible"
    );
}
