//! Karmada's field overrider (`applyFieldOverriders` in `overridemanager.go`): the field at
//! `fieldPath` holds JSON or YAML text (a ConfigMap's `data` entry); its content is parsed,
//! patched with the `yaml` operations (or, when there are none, the `json` ones) at their
//! `subPath`, and written back: YAML as YAML, JSON as compact JSON, keys sorted.
//!
//! Errors never quote the text: it may come from a Secret.

use serde_json::Value;

use super::fault::Fault;
use super::patch::{Op, PatchError, apply_op, parse_pointer, resolve_mut};
use meshfleet_api::{FieldOverrider, PatchOperation};

const LIST: &str = "fieldOverrider";

/// Why a field overrider did not apply. Parse errors keep only the line and column: the
/// parser's own message may quote the text.
#[derive(Debug, thiserror::Error)]
enum FieldError {
    /// The overrider has neither `yaml` nor `json` operations.
    #[error("one of json or yaml is required")]
    ChooseFormat,
    /// `fieldPath` is not a JSON pointer.
    #[error(transparent)]
    ParseFieldPath(#[from] PatchError),
    /// Nothing is at `fieldPath`.
    #[error("path {path} does not exist")]
    FindField { path: String },
    /// The value at `fieldPath` is not a string.
    #[error("value at {path} is not a string")]
    ReadText { path: String },
    /// The text is not JSON.
    #[error("value at {path} is not valid JSON (line {line}, column {column})")]
    ParseJson {
        path: String,
        line: usize,
        column: usize,
    },
    /// The text is not YAML; `at` is the line and column, when the parser tells.
    #[error("value at {path} is not valid YAML{}", location(.at))]
    ParseYaml {
        path: String,
        at: Option<(usize, usize)>,
    },
    /// The patched content cannot be written back as JSON.
    #[error("cannot write JSON")]
    WriteJson(#[source] serde_json::Error),
    /// The patched content cannot be written back as YAML.
    #[error("cannot write YAML")]
    WriteYaml(#[source] serde_norway::Error),
}

/// ` (line 3, column 7)`, or nothing when the position is unknown.
fn location(at: &Option<(usize, usize)>) -> String {
    at.map_or_else(String::new, |(line, column)| {
        format!(" (line {line}, column {column})")
    })
}

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
            return Err(Fault::at(LIST, i, &FieldError::ChooseFormat));
        };
        let fault = |error: FieldError| Fault::at(LIST, i, &error);
        let text = field_text(doc, &o.field_path).map_err(fault)?;
        let mut content = parse(text, format, &o.field_path).map_err(fault)?;
        patch_content(&mut content, ops).map_err(|(j, error)| Fault {
            list: LIST,
            at: format!("[{i}].{name}[{j}]"),
            message: error.to_string(),
        })?;
        *text = serialize(&content, format).map_err(fault)?;
    }
    Ok(())
}

fn field_text<'a>(doc: &'a mut Value, path: &str) -> Result<&'a mut String, FieldError> {
    let tokens = parse_pointer(path)?;
    let path = path.to_owned();
    match resolve_mut(doc, &tokens) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(FieldError::ReadText { path }),
        None => Err(FieldError::FindField { path }),
    }
}

fn parse(text: &str, format: Format, path: &str) -> Result<Value, FieldError> {
    let path = path.to_owned();
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| FieldError::ParseJson {
            path,
            line: e.line(),
            column: e.column(),
        }),
        Format::Yaml => serde_norway::from_str(text).map_err(|e| FieldError::ParseYaml {
            path,
            at: e.location().map(|at| (at.line(), at.column())),
        }),
    }
}

/// The first operation that does not apply, by its index.
fn patch_content(content: &mut Value, ops: &[PatchOperation]) -> Result<(), (usize, PatchError)> {
    for (j, op) in ops.iter().enumerate() {
        Op::parse(&op.operator)
            .and_then(|o| apply_op(content, o, &op.sub_path, op.value.as_ref()))
            .map_err(|error| (j, error))?;
    }
    Ok(())
}

fn serialize(content: &Value, format: Format) -> Result<String, FieldError> {
    match format {
        Format::Json => serde_json::to_string(content).map_err(FieldError::WriteJson),
        Format::Yaml => serde_norway::to_string(content).map_err(FieldError::WriteYaml),
    }
}
