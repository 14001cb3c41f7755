//! Test-side checks of generated schemas: the structural rules the API server enforces, and a
//! small validator (types, required fields, unknown fields) for objects and defaults.

use serde_json::{Map, Value};

use super::super::structural::{INT_OR_STRING, PRESERVE_UNKNOWN};

const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];
const FORBIDDEN: &[&str] = &[
    "$ref",
    "$defs",
    "definitions",
    "$schema",
    "$id",
    "allOf",
    "oneOf",
    "not",
    "const",
    "examples",
    "title",
    "uniqueItems",
];

fn flag(schema: &Map<String, Value>, key: &str) -> bool {
    schema.get(key) == Some(&Value::Bool(true))
}

/// Every way `schema` (an `openAPIV3Schema`) breaks Kubernetes' structural-schema rules, each
/// with its path; empty when the API server would accept it.
pub(super) fn structural_violations(schema: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    node_violations(schema, "", &mut violations);
    let root = &schema["properties"];
    if root["metadata"] != serde_json::json!({ "type": "object" }) {
        violations.push(".metadata: must be exactly `type: object`".to_owned());
    }
    for field in ["apiVersion", "kind"] {
        if root[field]["type"] != "string" {
            violations.push(format!(".{field}: must be a string"));
        }
    }
    if schema["type"] != "object" {
        violations.push(".: the root must be an object".to_owned());
    }
    violations
}

fn node_violations(schema: &Value, path: &str, out: &mut Vec<String>) {
    let here = if path.is_empty() { "." } else { path };
    let Some(schema) = schema.as_object() else {
        out.push(format!("{here}: a schema must be an object, not {schema}"));
        return;
    };
    for key in FORBIDDEN {
        if schema.contains_key(*key) {
            out.push(format!("{here}: `{key}` is not allowed"));
        }
    }
    for key in [
        PRESERVE_UNKNOWN,
        INT_OR_STRING,
        "x-kubernetes-embedded-resource",
    ] {
        if schema
            .get(key)
            .is_some_and(|value| value != &Value::Bool(true))
        {
            out.push(format!("{here}: `{key}` must be `true` when set"));
        }
    }
    let int_or_string = flag(schema, INT_OR_STRING);
    let preserve = flag(schema, PRESERVE_UNKNOWN);
    if let Some(any_of) = schema.get("anyOf") {
        let allowed = serde_json::json!([{ "type": "integer" }, { "type": "string" }]);
        if !int_or_string || *any_of != allowed {
            out.push(format!("{here}: anyOf is allowed only for int-or-string"));
        }
    }
    match schema.get("type").map(|t| t.as_str()) {
        Some(Some(kind)) if TYPES.contains(&kind) => {
            type_violations(schema, kind, path, preserve, out);
        }
        Some(_) => out.push(format!("{here}: `type` must be one of {TYPES:?}")),
        None if int_or_string || preserve => {}
        None => out.push(format!("{here}: no `type`")),
    }
    if schema.get("nullable").is_some_and(|n| !n.is_boolean()) {
        out.push(format!("{here}: `nullable` must be a boolean"));
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, child) in properties {
            node_violations(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        node_violations(items, &format!("{path}[]"), out);
    }
    if let Some(values) = schema.get("additionalProperties") {
        node_violations(values, &format!("{path}.*"), out);
    }
}

fn type_violations(
    schema: &Map<String, Value>,
    kind: &str,
    path: &str,
    preserve: bool,
    out: &mut Vec<String>,
) {
    let here = if path.is_empty() { "." } else { path };
    match kind {
        "integer" => {
            let format = schema.get("format").and_then(Value::as_str);
            if !matches!(format, Some("int32" | "int64")) {
                out.push(format!(
                    "{here}: integer format {format:?} is not int32/int64"
                ));
            }
        }
        "array" if !schema.contains_key("items") => {
            out.push(format!("{here}: an array needs `items`"));
        }
        "object" => {
            let properties = schema.contains_key("properties");
            let values = schema.get("additionalProperties");
            if properties && values.is_some() {
                out.push(format!(
                    "{here}: properties and additionalProperties together"
                ));
            }
            if values.is_some_and(|v| !v.is_object()) {
                out.push(format!("{here}: additionalProperties must be a schema"));
            }
            // Root metadata is the API server's own; anything else would lose all its fields.
            if !properties && values.is_none() && !preserve && path != ".metadata" {
                out.push(format!(
                    "{here}: an object with no fields would be pruned empty"
                ));
            }
        }
        _ => {}
    }
}

/// Every place `value` does not fit `schema`: a field the schema does not have (the API server
/// would prune it), a wrong type, a missing required field, a value outside an `enum`.
pub(super) fn fit_errors(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    fit(schema, value, "", &mut errors);
    errors
}

fn fit(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let here = if path.is_empty() { "." } else { path };
    let schema = schema.as_object().cloned().unwrap_or_default();
    if value.is_null() {
        if !flag(&schema, "nullable") {
            out.push(format!("{here}: null, and the field is not nullable"));
        }
        return;
    }
    if flag(&schema, INT_OR_STRING) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            out.push(format!(
                "{here}: {value} is neither an integer nor a string"
            ));
        }
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        out.push(format!("{here}: {value} is not one of {allowed:?}"));
    }
    match (schema.get("type").and_then(Value::as_str), value) {
        (None, _) => {}
        (Some("object"), Value::Object(fields)) => fit_object(&schema, fields, path, out),
        (Some("array"), Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                fit(&schema["items"], item, &format!("{path}[{index}]"), out);
            }
        }
        (Some("string"), Value::String(_)) | (Some("boolean"), Value::Bool(_)) => {}
        (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        (Some("number"), Value::Number(_)) => {}
        (Some(kind), _) => out.push(format!("{here}: {value} is not of type {kind}")),
    }
}

fn fit_object(
    schema: &Map<String, Value>,
    fields: &Map<String, Value>,
    path: &str,
    out: &mut Vec<String>,
) {
    let here = if path.is_empty() { "." } else { path };
    let preserve = flag(schema, PRESERVE_UNKNOWN);
    let properties = schema.get("properties").and_then(Value::as_object);
    let values = schema.get("additionalProperties");
    for (name, field) in fields {
        let child = format!("{path}.{name}");
        match (properties.and_then(|p| p.get(name)), values) {
            (Some(field_schema), _) | (None, Some(field_schema)) => {
                fit(field_schema, field, &child, out);
            }
            (None, None) if preserve || path == ".metadata" => {}
            (None, None) => out.push(format!("{child}: not in the schema")),
        }
    }
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(name) {
            out.push(format!("{here}: required field {name:?} is missing"));
        }
    }
}

/// Every `default` in `schema`, with its path, that does not fit the node it sits on.
pub(super) fn invalid_defaults(schema: &Value, path: &str, out: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    if let Some(default) = object.get("default") {
        for error in fit_errors(schema, default) {
            out.push(format!("{path} default: {error}"));
        }
    }
    if let Some(Value::Object(properties)) = object.get("properties") {
        for (name, child) in properties {
            invalid_defaults(child, &format!("{path}.{name}"), out);
        }
    }
    for (key, suffix) in [("items", "[]"), ("additionalProperties", ".*")] {
        if let Some(child) = object.get(key) {
            invalid_defaults(child, &format!("{path}{suffix}"), out);
        }
    }
}

/// How many `default`s `schema` holds.
pub(super) fn count_defaults(schema: &Value) -> usize {
    let Some(object) = schema.as_object() else {
        return 0;
    };
    let own = usize::from(object.contains_key("default"));
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .map_or(0, |p| p.values().map(count_defaults).sum());
    let children = ["items", "additionalProperties"]
        .iter()
        .filter_map(|key| object.get(*key))
        .map(count_defaults)
        .sum::<usize>();
    own + properties + children
}
