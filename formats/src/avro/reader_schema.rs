//! The reader schema Floe decodes one writer schema with: the writer's top-level record
//! cut down to the source's declared payload columns, in declared order. A declared
//! column the writer does not have becomes an optional field read as its null default
//! (Avro schema resolution); a writer field nobody declared is skipped while decoding.
//!
//! Each kept field keeps the writer's own type, so resolution never has to reconcile
//! two spellings of a type (record names, logical types): bringing a value to the
//! declared type is a cast over the decoded Arrow column afterwards (see
//! [`super::types::fits`]). Named types (records, enums, fixed) that a kept field uses
//! but that the writer defined inside a dropped field are defined where first used,
//! spelled as the writer spelled them.

use std::collections::{HashMap, HashSet};

use arrow_schema::Schema;
use serde_json::{Map, Value, json};

use super::types::avro_type;

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The reader schema (JSON text) for `writer`, and for each declared column the name
/// of the writer's field it reads (None when the writer lacks it).
pub fn reader_schema(
    writer: &Value,
    declared: &Schema,
) -> Result<(String, Vec<Option<String>>), String> {
    let Some(top) = writer
        .as_object()
        .filter(|o| o.get("type") == Some(&json!("record")))
    else {
        return Err("the writer schema is not an Avro record".into());
    };
    let namespace = top.get("namespace").and_then(Value::as_str).unwrap_or("");
    let name = top.get("name").and_then(Value::as_str).unwrap_or("record");
    let mut named = Named::default();
    named.collect(writer, namespace);
    named.emitted.insert(full_name(name, namespace));
    let fields: Vec<&Map<String, Value>> = top
        .get("fields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let mut out = vec![];
    let mut sources = vec![];
    for column in declared.fields() {
        let found = fields
            .iter()
            .find(|f| field_name(f) == Some(column.name().as_str()))
            .or_else(|| {
                let mut same = fields.iter().filter(|f| {
                    field_name(f).is_some_and(|n| n.eq_ignore_ascii_case(column.name()))
                });
                same.next().filter(|_| same.next().is_none())
            });
        match found {
            Some(f) => {
                let mut field = (*f).clone();
                if let Some(t) = f.get("type") {
                    field.insert("type".into(), named.inline(t, namespace));
                }
                sources.push(field_name(f).map(str::to_string));
                out.push(Value::Object(field));
            }
            None => {
                let hint = format!("floe_{}", column.name());
                let t = avro_type(column.data_type(), &hint)
                    .map_err(|e| format!("column '{}': {e}", column.name()))?;
                sources.push(None);
                out.push(json!({"name": column.name(), "type": ["null", t], "default": null}));
            }
        }
    }
    let mut reader = Map::new();
    reader.insert("type".into(), json!("record"));
    reader.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        reader.insert("namespace".into(), json!(namespace));
    }
    reader.insert("fields".into(), Value::Array(out));
    Ok((Value::Object(reader).to_string(), sources))
}

fn field_name(f: &Map<String, Value>) -> Option<&str> {
    f.get("name").and_then(Value::as_str)
}

pub(super) fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

/// The writer's named types, and which of them the reader schema has defined so far.
#[derive(Default)]
pub(super) struct Named {
    definitions: HashMap<String, (Value, String)>,
    emitted: HashSet<String>,
}

impl Named {
    /// The definition of the named type `name` used in `namespace`, with the namespace
    /// it was defined in.
    pub(super) fn definition(&self, name: &str, namespace: &str) -> Option<&(Value, String)> {
        self.definitions
            .get(&full_name(name, namespace))
            .or_else(|| self.definitions.get(name))
    }

    /// Records every named type defined in `t` (with the namespace it is defined in).
    pub(super) fn collect(&mut self, t: &Value, namespace: &str) {
        match t {
            Value::Array(branches) => branches.iter().for_each(|b| self.collect(b, namespace)),
            Value::Object(o) => {
                let ns = own_namespace(o, namespace);
                if let Some(name) = o.get("name").and_then(Value::as_str)
                    && is_named_kind(o)
                {
                    let full = full_name(name, &ns);
                    self.definitions.insert(full, (t.clone(), ns.clone()));
                }
                for key in ["items", "values", "type"] {
                    if let Some(inner) = o.get(key).filter(|v| !v.is_string()) {
                        self.collect(inner, &ns);
                    }
                }
                for f in o
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(ft) = f.get("type") {
                        self.collect(ft, &ns);
                    }
                }
            }
            _ => {}
        }
    }

    /// `t` with the first use of each named type in the reader schema carrying its
    /// definition. Names stay as the writer spelled them: arrow-avro matches a reader's
    /// named type to the writer's by the name and namespace written on each.
    fn inline(&mut self, t: &Value, namespace: &str) -> Value {
        match t {
            Value::String(s) if !PRIMITIVES.contains(&s.as_str()) => {
                let full = full_name(s, namespace);
                let full = if self.definitions.contains_key(&full) {
                    full
                } else {
                    s.clone()
                };
                match self.definitions.get(&full).cloned() {
                    Some((def, ns)) if self.emitted.insert(full) => self.define(&def, &ns),
                    _ => t.clone(),
                }
            }
            Value::Array(branches) => {
                Value::Array(branches.iter().map(|b| self.inline(b, namespace)).collect())
            }
            Value::Object(o) if is_named_kind(o) => {
                let ns = own_namespace(o, namespace);
                let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
                if self.emitted.insert(full_name(name, &ns)) {
                    self.define(t, &ns)
                } else {
                    json!(name)
                }
            }
            Value::Object(o) => {
                let mut out = o.clone();
                for key in ["items", "values"] {
                    if let Some(inner) = o.get(key) {
                        out.insert(key.into(), self.inline(inner, namespace));
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// A named type's definition as the writer wrote it, its fields' types inlined in
    /// turn (`namespace` is the one its own name lives in).
    fn define(&mut self, def: &Value, namespace: &str) -> Value {
        let Some(o) = def.as_object() else {
            return def.clone();
        };
        let mut out = o.clone();
        if let Some(fields) = o.get("fields").and_then(Value::as_array) {
            let fields = fields
                .iter()
                .map(|f| {
                    let mut f = f.as_object().cloned().unwrap_or_default();
                    if let Some(t) = f.get("type").cloned() {
                        f.insert("type".into(), self.inline(&t, namespace));
                    }
                    Value::Object(f)
                })
                .collect();
            out.insert("fields".into(), Value::Array(fields));
        }
        Value::Object(out)
    }
}

fn is_named_kind(o: &Map<String, Value>) -> bool {
    matches!(
        o.get("type").and_then(Value::as_str),
        Some("record" | "enum" | "fixed" | "error")
    )
}

pub(super) fn own_namespace(o: &Map<String, Value>, enclosing: &str) -> String {
    let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
    match (
        o.get("namespace").and_then(Value::as_str),
        name.rsplit_once('.'),
    ) {
        (_, Some((ns, _))) => ns.to_string(),
        (Some(ns), None) => ns.to_string(),
        (None, None) => enclosing.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use arrow_schema::{DataType, Field};

    use super::*;

    fn declared(cols: &[(&str, DataType)]) -> Schema {
        Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn the_reader_keeps_declared_fields_in_declared_order() {
        let writer = json!({"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "id", "type": "long"},
            {"name": "note", "type": "string"},
            {"name": "amount", "type": "double"}
        ]});
        let cols = declared(&[
            ("amount", DataType::Float64),
            ("id", DataType::Int64),
            ("coupon", DataType::Utf8),
        ]);
        let (text, sources) = reader_schema(&writer, &cols).expect("reader");
        let reader: Value = serde_json::from_str(&text).expect("json");
        let names: Vec<&str> = reader["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        assert_eq!(names, ["amount", "id", "coupon"]);
        assert_eq!(reader["name"], "Order");
        assert_eq!(reader["fields"][2]["type"], json!(["null", "string"]));
        assert_eq!(reader["fields"][2]["default"], Value::Null);
        assert_eq!(
            sources,
            [Some("amount".to_string()), Some("id".to_string()), None]
        );
    }

    #[test]
    fn a_named_type_defined_in_a_dropped_field_is_defined_where_it_is_used() {
        let writer = json!({"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "billing", "type": {"type": "record", "name": "Address",
                "fields": [{"name": "city", "type": "string"}]}},
            {"name": "shipping", "type": ["null", "Address"]}
        ]});
        let cols = declared(&[(
            "shipping",
            DataType::Struct(vec![Field::new("city", DataType::Utf8, true)].into()),
        )]);
        let (text, _) = reader_schema(&writer, &cols).expect("reader");
        let reader: Value = serde_json::from_str(&text).expect("json");
        let shipping = &reader["fields"][0]["type"];
        assert_eq!(shipping[0], "null");
        assert_eq!(shipping[1]["name"], "Address");
        assert_eq!(shipping[1]["fields"][0]["name"], "city");
    }

    #[test]
    fn a_writer_that_is_not_a_record_is_refused() {
        let e = reader_schema(&json!("string"), &declared(&[])).expect_err("not a record");
        assert!(e.contains("not an Avro record"), "{e}");
    }
}
