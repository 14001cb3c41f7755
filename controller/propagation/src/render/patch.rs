//! JSON patch operations (RFC 6902 `add`, `remove`, `replace`) at JSON pointers (RFC 6901), as
//! Karmada's plaintext and field overriders use them, and the plaintext overrider itself.
//!
//! Karmada hands these to `evanphx/json-patch`; the rules that matter to users are the RFC's:
//! `add` needs the parent to exist (and replaces an existing member), `remove` and `replace`
//! need the target to exist, array indices have no leading zeros and `-` means "append" (for
//! `add` only). An operation that does not apply is an error, never skipped.

use serde_json::Value;

use super::fault::Fault;
use meshfleet_api::PlaintextOverrider;

/// Why a JSON patch operation did not apply. Messages name the path, never a value of the
/// document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum PatchError {
    /// The operator is not `add`, `remove` or `replace`.
    #[error("unsupported operator {operator:?}")]
    ParseOperator { operator: String },
    /// A non-empty pointer does not start with `/`.
    #[error("path {path} does not start with /")]
    ParsePointer { path: String },
    /// A `~` in the pointer is not followed by `0` or `1`.
    #[error("path {path} has a bad ~ escape")]
    UnescapePointer { path: String },
    /// The value to replace or remove is not there.
    #[error("path {path} does not exist")]
    FindTarget { path: String },
    /// The object or array to add to is not there.
    #[error("parent of path {path} does not exist")]
    FindParent { path: String },
    /// The value to add to is neither an object nor an array.
    #[error("parent of path {path} is not an object or array")]
    AddToScalar { path: String },
    /// The last token of an `add` is not an index of the array (nor `-`).
    #[error("path {path} is not a valid array position")]
    IndexArray { path: String },
    /// A `remove` at the empty pointer: the whole document.
    #[error("cannot remove the whole object")]
    RemoveRoot,
}

/// The operators overriders accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    /// # Errors
    /// Anything but `add`, `remove` and `replace` (Karmada's API rejects other operators).
    pub(super) fn parse(operator: &str) -> Result<Self, PatchError> {
        match operator {
            "add" => Ok(Self::Add),
            "remove" => Ok(Self::Remove),
            "replace" => Ok(Self::Replace),
            other => Err(PatchError::ParseOperator {
                operator: other.to_owned(),
            }),
        }
    }
}

/// Splits a JSON pointer into its unescaped tokens (`~1` is `/`, `~0` is `~`).
///
/// # Errors
/// A non-empty pointer that does not start with `/`, or a `~` not followed by `0` or `1`.
pub(super) fn parse_pointer(path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PatchError::ParsePointer {
            path: path.to_owned(),
        });
    };
    rest.split('/')
        .map(|token| {
            unescape(token).ok_or_else(|| PatchError::UnescapePointer {
                path: path.to_owned(),
            })
        })
        .collect()
}

fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_owned());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// An array index token: digits without leading zeros, below `len` (or equal to it, or `-`,
/// when `append` is allowed).
fn index(token: &str, len: usize, append: bool) -> Option<usize> {
    if append && token == "-" {
        return Some(len);
    }
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    let i: usize = token.parse().ok()?;
    (i < len || (append && i == len)).then_some(i)
}

/// The value at `tokens`, if there is one.
pub(super) fn resolve_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |current, token| match current {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => {
            let len = items.len();
            items.get_mut(index(token, len, false)?)
        }
        _ => None,
    })
}

/// Applies one operation at `path`; a missing `value` is JSON `null`.
///
/// # Errors
/// The pointer does not parse, or the operation does not apply to `doc`; the message names the
/// path, never a value of the document.
pub(super) fn apply_op(
    doc: &mut Value,
    op: Op,
    path: &str,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let tokens = parse_pointer(path)?;
    let value = || value.cloned().unwrap_or(Value::Null);
    match op {
        Op::Replace => {
            let target = resolve_mut(doc, &tokens).ok_or_else(|| PatchError::FindTarget {
                path: path.to_owned(),
            })?;
            *target = value();
            Ok(())
        }
        Op::Add => add(doc, &tokens, path, value()),
        Op::Remove => remove(doc, &tokens, path),
    }
}

fn add(doc: &mut Value, tokens: &[String], path: &str, value: Value) -> Result<(), PatchError> {
    let path = || path.to_owned();
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match resolve_mut(doc, parents) {
        Some(Value::Object(map)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let i = index(last, items.len(), true)
                .ok_or_else(|| PatchError::IndexArray { path: path() })?;
            items.insert(i, value);
            Ok(())
        }
        Some(_) => Err(PatchError::AddToScalar { path: path() }),
        None => Err(PatchError::FindParent { path: path() }),
    }
}

fn remove(doc: &mut Value, tokens: &[String], path: &str) -> Result<(), PatchError> {
    let missing = || PatchError::FindTarget {
        path: path.to_owned(),
    };
    let Some((last, parents)) = tokens.split_last() else {
        return Err(PatchError::RemoveRoot);
    };
    match resolve_mut(doc, parents) {
        Some(Value::Object(map)) => map.remove(last).map(drop).ok_or_else(missing),
        Some(Value::Array(items)) => {
            let i = index(last, items.len(), false).ok_or_else(missing)?;
            items.remove(i);
            Ok(())
        }
        _ => Err(missing()),
    }
}

/// Karmada's plaintext overrider: the operations in order, as one JSON patch.
///
/// # Errors
/// The first operation that does not apply, by its index.
pub(super) fn apply_plaintext(
    doc: &mut Value,
    overriders: &[PlaintextOverrider],
) -> Result<(), Fault> {
    for (i, o) in overriders.iter().enumerate() {
        Op::parse(&o.operator)
            .and_then(|op| apply_op(doc, op, &o.path, o.value.as_ref()))
            .map_err(|error| Fault::at("plaintext", i, &error))?;
    }
    Ok(())
}
