//! Karmada's field overrider (`applyFieldOverriders` in `overridemanager.go`): the field at
//! `fieldPath` holds JSON or YAML text (a ConfigMap's `data` entry); its content is parsed,
//! patched with the `yaml` operations (or, when there are none, the `json` ones) at their
//! `subPath`, and written back: YAML as YAML, JSON as compact JSON, keys sorted.
//!
//! Errors never quote the text: it may come from a Secret.

use serde_json::Value;

use super::fault::Fault;
use super::patch::{Op, apply_op, parse_pointer, resolve_mut};
use meshfleet_api::{FieldOverrider, PatchOperation};

const LIST: &str = "fieldOverrider";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

/// Applies `overriders` in order.
///
/// # Errors
/// The field is missing or not a string, its text does not parse, or an operation does not
/// apply (named by its index under `yaml` or `json`).
pub(super) fn apply(doc: &mut Value, overriders: &[FieldOverrider]) -> Result<(), Fault> {
    for (i, o) in overriders.iter().enumerate() {
        let (format, ops, name) = if !o.yaml.is_empty() {
            (Format::Yaml, &o.yaml, "yaml")
        } else if !o.json.is_empty() {
            (Format::Json, &o.json, "json")
        } else {
            return Err(Fault::at(
                LIST,
                i,
                "one of json or yaml is required".to_owned(),
            ));
        };
        let text = field_text(doc, &o.field_path).map_err(|m| Fault::at(LIST, i, m))?;
        let mut content = parse(text, format, &o.field_path).map_err(|m| Fault::at(LIST, i, m))?;
        patch_content(&mut content, ops).map_err(|(j, message)| Fault {
            list: LIST,
            at: format!("[{i}].{name}[{j}]"),
            message,
        })?;
        *text = serialize(&content, format).map_err(|m| Fault::at(LIST, i, m))?;
    }
    Ok(())
}

fn field_text<'a>(doc: &'a mut Value, path: &str) -> Result<&'a mut String, String> {
    let tokens = parse_pointer(path)?;
    match resolve_mut(doc, &tokens) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(format!("value at {path} is not a string")),
        None => Err(format!("path {path} does not exist")),
    }
}

fn parse(text: &str, format: Format, path: &str) -> Result<Value, String> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| {
            format!(
                "value at {path} is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        }),
        Format::Yaml => serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(at) => format!(
                "value at {path} is not valid YAML (line {}, column {})",
                at.line(),
                at.column()
            ),
            None => format!("value at {path} is not valid YAML"),
        }),
    }
}

fn patch_content(content: &mut Value, ops: &[PatchOperation]) -> Result<(), (usize, String)> {
    for (j, op) in ops.iter().enumerate() {
        Op::parse(&op.operator)
            .and_then(|o| apply_op(content, o, &op.sub_path, op.value.as_ref()))
            .map_err(|message| (j, message))?;
    }
    Ok(())
}

fn serialize(content: &Value, format: Format) -> Result<String, String> {
    match format {
        Format::Json => serde_json::to_string(content).map_err(|_| "cannot write JSON".to_owned()),
        Format::Yaml => {
            serde_norway::to_string(content).map_err(|_| "cannot write YAML".to_owned())
        }
    }
}
