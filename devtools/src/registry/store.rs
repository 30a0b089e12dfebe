//! What the embedded Schema Registry holds, and its REST routes as plain functions of
//! (method, path, body) to (status, JSON), so they are tested without a socket.
//!
//! It serves the routes registry clients use: registering and looking up schemas under
//! subjects, schemas by global id, subjects and versions, compatibility settings and
//! checks (every check passes: this registry enforces no compatibility rules). Ids are
//! global and given in order from 1; the same schema text of the same type gets the same
//! id under every subject, as in Confluent's registry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One registered schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSchema {
    /// The schema text as registered.
    pub schema: String,
    /// `AVRO`, `PROTOBUF` or `JSON`.
    pub kind: String,
    /// References to other subjects' schemas, as registered.
    #[serde(default)]
    pub references: Value,
}

/// The registry's whole state (what `--state` keeps across restarts).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegistryState {
    /// Schemas by id - 1.
    pub schemas: Vec<StoredSchema>,
    /// Each subject's schema ids, by version - 1.
    pub subjects: BTreeMap<String, Vec<u32>>,
    /// The global compatibility level.
    pub compatibility: Option<String>,
    /// Compatibility levels per subject.
    #[serde(default)]
    pub subject_compatibility: BTreeMap<String, String>,
}

/// An answer: HTTP status and JSON body.
pub type Answer = (u16, Value);

#[derive(Debug, Deserialize)]
struct Registration {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Value,
}

fn error(status: u16, code: u32, message: impl Into<String>) -> Answer {
    (
        status,
        json!({"error_code": code, "message": message.into()}),
    )
}

impl RegistryState {
    /// Answers one request; `changed` is set when the state changed (to be saved).
    pub fn route(&mut self, method: &str, path: &str, body: &str, changed: &mut bool) -> Answer {
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method, seg.as_slice()) {
            ("GET", ["subjects"]) => (200, json!(self.subjects.keys().collect::<Vec<_>>())),
            ("GET", ["schemas", "types"]) => (200, json!(["AVRO", "JSON", "PROTOBUF"])),
            ("GET", ["schemas", "ids", id]) => self.by_id(id),
            ("GET", ["schemas", "ids", id, "schema"]) => match self.schema_of(id) {
                Some(s) => (200, Value::String(s.schema.clone())),
                None => schema_not_found(),
            },
            ("GET", ["schemas", "ids", id, "versions"]) => self.versions_of_id(id),
            ("GET", ["subjects", subject, "versions"]) => match self.subjects.get(*subject) {
                Some(ids) => (200, json!((1..=ids.len()).collect::<Vec<_>>())),
                None => subject_not_found(subject),
            },
            ("GET", ["subjects", subject, "versions", version]) => self.version(subject, version),
            ("GET", ["subjects", subject, "versions", version, "schema"]) => {
                match self.version(subject, version) {
                    (200, v) => (200, v["schema"].clone()),
                    other => other,
                }
            }
            ("POST", ["subjects", subject, "versions"]) => {
                let answer = self.register(subject, body);
                *changed |= answer.0 == 200;
                answer
            }
            ("POST", ["subjects", subject]) => self.lookup(subject, body),
            ("POST", ["compatibility", "subjects", _, "versions", _]) => {
                (200, json!({"is_compatible": true}))
            }
            ("GET", ["config"]) => (
                200,
                json!({"compatibilityLevel": self.compatibility.as_deref().unwrap_or("BACKWARD")}),
            ),
            ("GET", ["config", subject]) => match self.subject_compatibility.get(*subject) {
                Some(level) => (200, json!({"compatibilityLevel": level})),
                None => error(
                    404,
                    40408,
                    format!(
                        "Subject '{subject}' does not have subject-level compatibility configured"
                    ),
                ),
            },
            ("PUT", ["config"]) | ("PUT", ["config", _]) => {
                let level = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v["compatibility"].as_str().map(str::to_string));
                let Some(level) = level else {
                    return error(422, 42203, "Invalid compatibility level");
                };
                match seg.get(1) {
                    Some(subject) => {
                        self.subject_compatibility
                            .insert((*subject).to_string(), level.clone());
                    }
                    None => self.compatibility = Some(level.clone()),
                }
                *changed = true;
                (200, json!({"compatibility": level}))
            }
            _ => error(404, 404, format!("no route for {method} {path}")),
        }
    }

    fn schema_of(&self, id: &str) -> Option<&StoredSchema> {
        let id: usize = id.parse().ok()?;
        self.schemas.get(id.checked_sub(1)?)
    }

    fn by_id(&self, id: &str) -> Answer {
        match self.schema_of(id) {
            Some(s) => {
                let mut body = json!({"schema": s.schema});
                if s.kind != "AVRO" {
                    body["schemaType"] = json!(s.kind);
                }
                if !s.references.is_null() {
                    body["references"] = s.references.clone();
                }
                (200, body)
            }
            None => schema_not_found(),
        }
    }

    fn versions_of_id(&self, id: &str) -> Answer {
        let Ok(id) = id.parse::<u32>() else {
            return schema_not_found();
        };
        let found: Vec<Value> = self
            .subjects
            .iter()
            .flat_map(|(subject, ids)| {
                ids.iter()
                    .enumerate()
                    .filter(move |(_, i)| **i == id)
                    .map(move |(v, _)| json!({"subject": subject, "version": v + 1}))
            })
            .collect();
        if found.is_empty() {
            return schema_not_found();
        }
        (200, Value::Array(found))
    }

    fn version(&self, subject: &str, version: &str) -> Answer {
        let Some(ids) = self.subjects.get(subject) else {
            return subject_not_found(subject);
        };
        let index = match version {
            "latest" | "-1" => ids.len().checked_sub(1),
            v => v
                .parse::<usize>()
                .ok()
                .and_then(|v| v.checked_sub(1))
                .filter(|i| *i < ids.len()),
        };
        let Some(index) = index else {
            return error(404, 40402, format!("Version {version} not found."));
        };
        self.describe(subject, index + 1, ids[index])
    }

    fn describe(&self, subject: &str, version: usize, id: u32) -> Answer {
        let Some(s) = self.schemas.get(id as usize - 1) else {
            return schema_not_found();
        };
        let mut body =
            json!({"subject": subject, "version": version, "id": id, "schema": s.schema});
        if s.kind != "AVRO" {
            body["schemaType"] = json!(s.kind);
        }
        if !s.references.is_null() {
            body["references"] = s.references.clone();
        }
        (200, body)
    }

    /// Parses a registration body; the schema's identity is its type and normalized text.
    fn parse(body: &str) -> Result<StoredSchema, Answer> {
        let r: Registration = serde_json::from_str(body)
            .map_err(|e| error(422, 42201, format!("Invalid schema: {e}")))?;
        let kind = r
            .schema_type
            .unwrap_or_else(|| "AVRO".into())
            .to_uppercase();
        if !["AVRO", "JSON", "PROTOBUF"].contains(&kind.as_str()) {
            return Err(error(422, 42201, format!("Invalid schema type {kind}")));
        }
        if kind != "PROTOBUF" && serde_json::from_str::<Value>(&r.schema).is_err() {
            return Err(error(
                422,
                42201,
                format!("Invalid schema: not {kind} JSON"),
            ));
        }
        Ok(StoredSchema {
            schema: r.schema,
            kind,
            references: r.references,
        })
    }

    fn find(&self, wanted: &StoredSchema) -> Option<u32> {
        let same = |s: &StoredSchema| {
            s.kind == wanted.kind && normalized(&s.schema) == normalized(&wanted.schema)
        };
        self.schemas.iter().position(same).map(|i| i as u32 + 1)
    }

    fn register(&mut self, subject: &str, body: &str) -> Answer {
        let wanted = match Self::parse(body) {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let id = match self.find(&wanted) {
            Some(id) => id,
            None => {
                self.schemas.push(wanted);
                self.schemas.len() as u32
            }
        };
        let versions = self.subjects.entry(subject.to_string()).or_default();
        if !versions.contains(&id) {
            versions.push(id);
        }
        (200, json!({"id": id}))
    }

    fn lookup(&self, subject: &str, body: &str) -> Answer {
        let wanted = match Self::parse(body) {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let Some(ids) = self.subjects.get(subject) else {
            return subject_not_found(subject);
        };
        let found = self
            .find(&wanted)
            .and_then(|id| ids.iter().position(|i| *i == id).map(|v| (v, id)));
        match found {
            Some((v, id)) => self.describe(subject, v + 1, id),
            None => schema_not_found(),
        }
    }
}

fn subject_not_found(subject: &str) -> Answer {
    error(404, 40401, format!("Subject '{subject}' not found."))
}

fn schema_not_found() -> Answer {
    error(404, 40403, "Schema not found")
}

/// JSON schemas compare by their parsed form; Protobuf text by its words.
fn normalized(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => v.to_string(),
        Err(_) => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;

    fn post(state: &mut RegistryState, path: &str, body: Value) -> Answer {
        let mut changed = false;
        state.route("POST", path, &body.to_string(), &mut changed)
    }

    fn get(state: &mut RegistryState, path: &str) -> Answer {
        let mut changed = false;
        state.route("GET", path, "", &mut changed)
    }

    #[test]
    fn a_registered_schema_is_found_by_id_subject_and_version() {
        let mut s = RegistryState::default();
        let (status, body) = post(
            &mut s,
            "/subjects/orders-value/versions",
            json!({"schema": V1}),
        );
        assert_eq!((status, body), (200, json!({"id": 1})));
        assert_eq!(get(&mut s, "/schemas/ids/1"), (200, json!({"schema": V1})));
        let (_, latest) = get(&mut s, "/subjects/orders-value/versions/latest");
        assert_eq!(latest["version"], 1);
        assert_eq!(latest["id"], 1);
        assert_eq!(get(&mut s, "/subjects"), (200, json!(["orders-value"])));
    }

    #[test]
    fn the_same_schema_keeps_its_id_and_a_new_one_gets_the_next() {
        let mut s = RegistryState::default();
        post(&mut s, "/subjects/a-value/versions", json!({"schema": V1}));
        let spaced = V1.replace(',', ", ");
        let (_, again) = post(
            &mut s,
            "/subjects/b-value/versions",
            json!({"schema": spaced}),
        );
        assert_eq!(again, json!({"id": 1}));
        let v2 = V1.replace(
            "}]}",
            "},{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}",
        );
        let (_, next) = post(&mut s, "/subjects/a-value/versions", json!({"schema": v2}));
        assert_eq!(next, json!({"id": 2}));
        assert_eq!(
            get(&mut s, "/subjects/a-value/versions"),
            (200, json!([1, 2]))
        );
        let (_, found) = post(&mut s, "/subjects/a-value", json!({"schema": V1}));
        assert_eq!(found["version"], 1);
    }

    #[test]
    fn unknown_ids_subjects_and_bad_schemas_get_registry_errors() {
        let mut s = RegistryState::default();
        assert_eq!(get(&mut s, "/schemas/ids/9").1["error_code"], 40403);
        assert_eq!(
            get(&mut s, "/subjects/x/versions/latest").1["error_code"],
            40401
        );
        let (status, body) = post(
            &mut s,
            "/subjects/x/versions",
            json!({"schema": "{not json"}),
        );
        assert_eq!((status, body["error_code"].clone()), (422, json!(42201)));
    }
}
