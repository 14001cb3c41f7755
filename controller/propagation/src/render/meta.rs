//! Karmada's labels and annotations overriders
//! (`pkg/util/overridemanager/labelannotationoverrider.go`), on the object's own
//! `metadata.labels` / `metadata.annotations`: `add` sets each key (creating the map, replacing
//! an existing value); `replace` sets only keys already present; `remove` deletes keys present,
//! whatever their value. Keys may contain `/` (`app.kubernetes.io/name`).

use serde_json::Value;

use super::fault::Fault;
use super::patch::{Op, PatchError};
use super::tree::{self, NotAnObject};
use meshfleet_api::LabelAnnotationOverrider;

/// Why a labels or annotations overrider did not apply.
#[derive(Debug, thiserror::Error)]
enum MetaError {
    /// The operator is not `add`, `remove` or `replace`.
    #[error(transparent)]
    ParseOperator(#[from] PatchError),
    /// `metadata.labels` or `metadata.annotations` is not an object.
    #[error("{path} is not an object")]
    ReadMap { path: String },
    /// `metadata` is not an object.
    #[error(transparent)]
    WalkTree(#[from] NotAnObject),
}

/// Which map of `metadata` an overrider edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Map {
    Labels,
    Annotations,
}

impl Map {
    fn field(self) -> &'static str {
        match self {
            Self::Labels => "labels",
            Self::Annotations => "annotations",
        }
    }

    fn list(self) -> &'static str {
        match self {
            Self::Labels => "labelsOverrider",
            Self::Annotations => "annotationsOverrider",
        }
    }
}

/// Applies `overriders` in order.
///
/// # Errors
/// An unsupported operator, or `metadata` or the map of the wrong type.
pub(super) fn apply(
    doc: &mut Value,
    map: Map,
    overriders: &[LabelAnnotationOverrider],
) -> Result<(), Fault> {
    for (i, o) in overriders.iter().enumerate() {
        apply_one(doc, map, o).map_err(|error| Fault::at(map.list(), i, &error))?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, map: Map, o: &LabelAnnotationOverrider) -> Result<(), MetaError> {
    let op = Op::parse(&o.operator)?;
    if o.value.is_empty() {
        return Ok(());
    }
    let path = ["metadata", map.field()];
    if op == Op::Add {
        let entries = tree::ensure_object(doc, &path)?;
        for (key, value) in &o.value {
            entries.insert(key.clone(), Value::String(value.clone()));
        }
        return Ok(());
    }
    let entries = match tree::get_mut(doc, &path)? {
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            return Err(MetaError::ReadMap {
                path: tree::pointer(&path),
            });
        }
        None => return Ok(()),
    };
    for (key, value) in &o.value {
        match (op, entries.get_mut(key)) {
            (Op::Replace, Some(existing)) => *existing = Value::String(value.clone()),
            (Op::Remove, Some(_)) => {
                entries.remove(key);
            }
            _ => {}
        }
    }
    Ok(())
}
