//! Rewrites the JSON Schema schemars generates into a Kubernetes *structural* schema, the only
//! kind an `apiextensions.k8s.io/v1` CRD accepts
//! (<https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema>).
//!
//! ```text
//!  schemars (draft 2020-12)              structural (OpenAPI v3 subset)
//!  ───────────────────────               ──────────────────────────────
//!  $ref / $defs / allOf [one]       ──>  inlined, siblings (description, default) kept
//!  type: [x, "null"], anyOf [.., null] ──> type: x, nullable: true
//!  oneOf / anyOf of consts          ──>  enum
//!  const                            ──>  enum: [value]
//!  true, {} (serde_json::Value)     ──>  x-kubernetes-preserve-unknown-fields: true
//!  additionalProperties: true       ──>  x-kubernetes-preserve-unknown-fields: true
//!  additionalProperties: false      ──>  dropped (the API server prunes unknown fields)
//!  format: uint32, int16, ...       ──>  int64 / int32
//!  uniqueItems: true (sets)         ──>  x-kubernetes-list-type: set (scalars), else dropped
//!  default with nulls, {} or []     ──>  nulls dropped; empty defaults dropped
//!  $schema, title, examples, ...    ──>  dropped (not in Kubernetes' JSONSchemaProps)
//!  description (doc comment)        ──>  lines of a paragraph joined, as `kubectl explain` wraps
//! ```
//!
//! What cannot be made structural (recursive types, unions of objects and scalars, tuples) is an
//! error naming the schema path, never a silently wrong CRD.

use serde_json::{Map, Value, json};

/// Keys of Kubernetes' `JSONSchemaProps` this rewrite keeps; everything else is dropped.
const KEPT_KEYS: &[&str] = &[
    "description",
    "type",
    "format",
    "default",
    "enum",
    "nullable",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "multipleOf",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "anyOf",
];

pub(crate) const PRESERVE_UNKNOWN: &str = "x-kubernetes-preserve-unknown-fields";
pub(crate) const INT_OR_STRING: &str = "x-kubernetes-int-or-string";

/// Why a schema cannot be made structural.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StructuralError {
    #[error("{path}: $ref {reference:?} names no definition")]
    ResolveRef { path: String, reference: String },
    #[error("{path}: recursive type {reference:?} cannot be inlined")]
    InlineRecursive { path: String, reference: String },
    #[error("{path}: {reason}")]
    Rewrite { path: String, reason: &'static str },
}

/// The structural form of a schemars root schema: definitions inlined, see the module docs.
///
/// # Errors
/// A `$ref` to a missing or recursive definition, or a construct with no structural form.
pub fn structural(root: &schemars::Schema) -> Result<Value, StructuralError> {
    let mut root = root.as_value().clone();
    let defs = match root.as_object_mut() {
        Some(object) => {
            let mut defs = object.remove("$defs").unwrap_or_default();
            if let Some(Value::Object(old)) = object.remove("definitions")
                && let Some(defs) = defs.as_object_mut()
            {
                defs.extend(old);
            }
            defs
        }
        None => Value::Null,
    };
    let rewriter = Rewriter {
        defs: defs.as_object().cloned().unwrap_or_default(),
    };
    rewriter.node(root, "", &mut Vec::new())
}

struct Rewriter {
    /// `$defs` of the root schema, by name, as schemars wrote them.
    defs: Map<String, Value>,
}

impl Rewriter {
    /// Rewrites one schema node; `inlining` holds the definitions being inlined above it.
    fn node(
        &self,
        schema: Value,
        path: &str,
        inlining: &mut Vec<String>,
    ) -> Result<Value, StructuralError> {
        let mut object = match schema {
            Value::Bool(true) => return Ok(json!({ PRESERVE_UNKNOWN: true })),
            Value::Object(object) => object,
            _ => return Err(rewrite(path, "a schema must be an object or `true`")),
        };
        self.inline_ref(&mut object, path, inlining)?;
        self.inline_all_of(&mut object, path, inlining)?;
        self.collapse_unions(&mut object, path, inlining)?;
        strip_null_type(&mut object, path)?;
        if let Some(value) = object.remove("const") {
            object.insert("enum".to_owned(), json!([value]));
        }
        object
            .retain(|key, _| KEPT_KEYS.contains(&key.as_str()) || key.starts_with("x-kubernetes-"));
        self.children(&mut object, path, inlining)?;
        normalize_format(&mut object);
        normalize_exclusive_bounds(&mut object);
        unique_items_as_set(&mut object);
        infer_type(&mut object);
        clean_default(&mut object);
        unwrap_description(&mut object);
        Ok(Value::Object(object))
    }

    /// Replaces `$ref` by its definition; the referring node's own keys (a field's description
    /// or default) win over the definition's.
    fn inline_ref(
        &self,
        object: &mut Map<String, Value>,
        path: &str,
        inlining: &mut Vec<String>,
    ) -> Result<(), StructuralError> {
        let Some(reference) = object.remove("$ref") else {
            return Ok(());
        };
        let reference = reference.as_str().unwrap_or_default().to_owned();
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"))
            .unwrap_or_default();
        let Some(definition) = self.defs.get(name) else {
            return Err(StructuralError::ResolveRef {
                path: path.to_owned(),
                reference,
            });
        };
        if inlining.iter().any(|n| n == name) {
            return Err(StructuralError::InlineRecursive {
                path: path.to_owned(),
                reference,
            });
        }
        inlining.push(name.to_owned());
        let inlined = self.node(definition.clone(), path, inlining);
        inlining.pop();
        merge_under(object, inlined?);
        Ok(())
    }

    /// `allOf` (schemars writes it for a `$ref` with siblings in older drafts, and for some
    /// flattened types): every member merged into the node.
    fn inline_all_of(
        &self,
        object: &mut Map<String, Value>,
        path: &str,
        inlining: &mut Vec<String>,
    ) -> Result<(), StructuralError> {
        let Some(all_of) = object.remove("allOf") else {
            return Ok(());
        };
        for member in all_of.as_array().cloned().unwrap_or_default() {
            let member = self.node(member, path, inlining)?;
            merge_under(object, member);
        }
        Ok(())
    }

    /// `anyOf` / `oneOf`: a `null` member becomes `nullable`; one member left is merged in;
    /// constants become an `enum`; Kubernetes' int-or-string is kept as Kubernetes wants it.
    fn collapse_unions(
        &self,
        object: &mut Map<String, Value>,
        path: &str,
        inlining: &mut Vec<String>,
    ) -> Result<(), StructuralError> {
        if object.get(INT_OR_STRING) == Some(&Value::Bool(true)) {
            object.remove("oneOf");
            object.insert(
                "anyOf".to_owned(),
                json!([{ "type": "integer" }, { "type": "string" }]),
            );
            return Ok(());
        }
        for key in ["anyOf", "oneOf"] {
            let Some(union) = object.remove(key) else {
                continue;
            };
            let mut members = Vec::new();
            for member in union.as_array().cloned().unwrap_or_default() {
                if member.get("type") == Some(&json!("null")) {
                    object.insert("nullable".to_owned(), Value::Bool(true));
                } else {
                    members.push(self.node(member, path, inlining)?);
                }
            }
            match members.len() {
                0 => {}
                1 => merge_under(object, members.remove(0)),
                _ => merge_enum(object, &members, path)?,
            }
        }
        Ok(())
    }

    /// Rewrites `properties`, `items` and `additionalProperties`.
    fn children(
        &self,
        object: &mut Map<String, Value>,
        path: &str,
        inlining: &mut Vec<String>,
    ) -> Result<(), StructuralError> {
        if let Some(Value::Object(properties)) = object.remove("properties") {
            let mut rewritten = Map::new();
            for (name, schema) in properties {
                let child = self.node(schema, &format!("{path}.{name}"), inlining)?;
                rewritten.insert(name, child);
            }
            object.insert("properties".to_owned(), Value::Object(rewritten));
        }
        match object.remove("items") {
            None => {}
            Some(Value::Array(_)) => return Err(rewrite(path, "tuples have no structural form")),
            Some(items) => {
                let items = self.node(items, &format!("{path}[]"), inlining)?;
                object.insert("items".to_owned(), items);
            }
        }
        match object.remove("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                object.insert(PRESERVE_UNKNOWN.to_owned(), Value::Bool(true));
            }
            Some(_) if object.contains_key("properties") => {
                return Err(rewrite(
                    path,
                    "properties and additionalProperties together",
                ));
            }
            Some(values) => {
                let values = self.node(values, &format!("{path}.*"), inlining)?;
                if values.get(PRESERVE_UNKNOWN) == Some(&Value::Bool(true))
                    && values.get("type").is_none()
                {
                    // A map of free-form values: the map itself keeps what it is given.
                    object.insert(PRESERVE_UNKNOWN.to_owned(), Value::Bool(true));
                } else {
                    object.insert("additionalProperties".to_owned(), values);
                }
            }
        }
        Ok(())
    }
}

fn rewrite(path: &str, reason: &'static str) -> StructuralError {
    StructuralError::Rewrite {
        path: if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        },
        reason,
    }
}

/// Adds `from`'s keys that `into` does not set; `properties` and `required` are unioned, and
/// a `nullable` from either side is kept.
fn merge_under(into: &mut Map<String, Value>, from: Value) {
    let Value::Object(from) = from else { return };
    for (key, value) in from {
        match (key.as_str(), into.get_mut(&key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, schema) in theirs {
                    mine.entry(name).or_insert(schema);
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// A union of constants of one type (a Rust enum of unit variants) as one `enum`.
fn merge_enum(
    object: &mut Map<String, Value>,
    members: &[Value],
    path: &str,
) -> Result<(), StructuralError> {
    let mut values = Vec::new();
    let mut kind = None;
    for member in members {
        let (Some(Value::Array(member_values)), Some(member_kind)) =
            (member.get("enum"), member.get("type"))
        else {
            return Err(rewrite(
                path,
                "a union of non-constant schemas has no structural form",
            ));
        };
        if kind.get_or_insert(member_kind) != &member_kind {
            return Err(rewrite(path, "a union of constants of different types"));
        }
        values.extend(member_values.iter().cloned());
    }
    object.insert("enum".to_owned(), Value::Array(values));
    if let Some(kind) = kind {
        object.insert("type".to_owned(), kind.clone());
    }
    Ok(())
}

/// `type: [x, "null"]` as `type: x` plus `nullable: true`.
fn strip_null_type(object: &mut Map<String, Value>, path: &str) -> Result<(), StructuralError> {
    let Some(Value::Array(types)) = object.get("type") else {
        return Ok(());
    };
    let null = json!("null");
    let nullable = types.contains(&null);
    let mut rest: Vec<Value> = types.iter().filter(|t| **t != null).cloned().collect();
    match rest.len() {
        0 => {
            object.remove("type");
        }
        1 => {
            object.insert("type".to_owned(), rest.remove(0));
        }
        _ => {
            return Err(rewrite(
                path,
                "a value of several types has no structural form",
            ));
        }
    }
    if nullable {
        object.insert("nullable".to_owned(), Value::Bool(true));
    }
    Ok(())
}

/// Kubernetes knows `int32` and `int64` for integers: Rust's other widths map to the smallest
/// of them that holds every value (`minimum: 0` from schemars keeps unsigned types unsigned).
fn normalize_format(object: &mut Map<String, Value>) {
    if object.get("type") != Some(&json!("integer")) {
        return;
    }
    let format = match object.get("format").and_then(Value::as_str) {
        Some("int8" | "int16" | "int32" | "uint8" | "uint16") => "int32",
        _ => "int64",
    };
    object.insert("format".to_owned(), json!(format));
}

/// Draft 2020-12 writes `exclusiveMinimum: n`; OpenAPI v3 writes `minimum: n` with
/// `exclusiveMinimum: true`.
fn normalize_exclusive_bounds(object: &mut Map<String, Value>) {
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(value) = object.get(exclusive).filter(|v| v.is_number()).cloned() {
            object.insert(bound.to_owned(), value);
            object.insert(exclusive.to_owned(), Value::Bool(true));
        }
    }
}

/// `apiextensions.k8s.io/v1` rejects `uniqueItems: true`; a list of scalars says the same with
/// `x-kubernetes-list-type: set`, other lists lose the constraint.
fn unique_items_as_set(object: &mut Map<String, Value>) {
    if object.remove("uniqueItems") != Some(Value::Bool(true)) {
        return;
    }
    let scalar = object
        .get("items")
        .and_then(|items| items.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| matches!(t, "string" | "integer" | "number" | "boolean"));
    if scalar {
        object.insert("x-kubernetes-list-type".to_owned(), json!("set"));
    }
}

/// Every node states its type; a node that constrains nothing is free-form.
fn infer_type(object: &mut Map<String, Value>) {
    let free_form = [PRESERVE_UNKNOWN, INT_OR_STRING]
        .iter()
        .any(|key| object.get(*key) == Some(&Value::Bool(true)));
    if object.contains_key("type") || free_form {
        return;
    }
    let inferred =
        if object.contains_key("properties") || object.contains_key("additionalProperties") {
            "object"
        } else if object.contains_key("items") {
            "array"
        } else if let Some(Value::Array(values)) = object.get("enum")
            && values.iter().all(Value::is_string)
        {
            "string"
        } else {
            object.insert(PRESERVE_UNKNOWN.to_owned(), Value::Bool(true));
            return;
        };
    object.insert("type".to_owned(), json!(inferred));
}

/// A default is applied by the API server to every object missing the field, so it must be
/// meaningful and valid: nulls are dropped (they would fail a non-nullable field), and empty
/// lists and objects are dropped (they only add noise to stored objects).
fn clean_default(object: &mut Map<String, Value>) {
    let Some(default) = object.remove("default") else {
        return;
    };
    if let Some(default) = without_empties(default) {
        object.insert("default".to_owned(), default);
    }
}

fn without_empties(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Object(fields) => {
            let fields: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(key, value)| without_empties(value).map(|value| (key, value)))
                .collect();
            (!fields.is_empty()).then_some(Value::Object(fields))
        }
        other => Some(other),
    }
}

/// Doc comments are wrapped at the source's width; `kubectl explain` wraps again. Lines of one
/// paragraph are joined; blank lines and list items stay.
fn unwrap_description(object: &mut Map<String, Value>) {
    let Some(Value::String(text)) = object.get_mut("description") else {
        return;
    };
    let mut joined = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim_end();
        let starts_item = line.starts_with("- ") || line.starts_with("* ");
        match joined.chars().last() {
            None => {}
            Some('\n') => {}
            Some(_) if line.is_empty() || starts_item => joined.push('\n'),
            Some(_) => joined.push(' '),
        }
        if line.is_empty() {
            joined.push('\n');
        }
        joined.push_str(line);
    }
    *text = joined;
}
