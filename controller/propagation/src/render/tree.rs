//! Walking a JSON object tree by field names, for the fixed paths rendering knows about
//! (`spec.template.metadata.labels`, ...). Absent and `null` fields read as missing; a field of
//! the wrong type on the way is an error naming where it is.

use serde_json::{Map, Value};

/// `["spec", "template"]` → `/spec/template`, as error messages write paths.
pub(super) fn pointer(path: &[&str]) -> String {
    path.iter().fold(String::new(), |mut out, field| {
        out.push('/');
        out.push_str(field);
        out
    })
}

/// A value on the way to a fixed path of the document (`/spec/template/metadata/labels`, ...),
/// or the value at it, is neither an object nor `null`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.path))]
pub struct NotAnObject {
    /// Where the value is, as [`pointer`] writes it: `/spec/template`; empty for the document
    /// itself.
    pub path: String,
}

impl NotAnObject {
    fn at(path: &[&str]) -> Self {
        Self {
            path: pointer(path),
        }
    }
}

fn describe(path: &str) -> String {
    if path.is_empty() {
        "the object is not a JSON object".to_owned()
    } else {
        format!("{path} is not an object")
    }
}

/// The value at `path`: `Ok(None)` when a field on the way is absent or `null`.
///
/// # Errors
/// A value on the way is neither an object nor `null`.
pub(super) fn get<'a>(root: &'a Value, path: &[&str]) -> Result<Option<&'a Value>, NotAnObject> {
    let mut current = root;
    for (depth, field) in path.iter().enumerate() {
        match current {
            Value::Object(map) => match map.get(*field) {
                Some(Value::Null) | None => return Ok(None),
                Some(next) => current = next,
            },
            Value::Null => return Ok(None),
            _ => return Err(NotAnObject::at(&path[..depth])),
        }
    }
    Ok(Some(current))
}

/// The value at `path`, mutably: `Ok(None)` when a field on the way is absent or `null`.
///
/// # Errors
/// A value on the way is neither an object nor `null`.
pub(super) fn get_mut<'a>(
    root: &'a mut Value,
    path: &[&str],
) -> Result<Option<&'a mut Value>, NotAnObject> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(Some(root));
    };
    let parent = match get_mut(root, parents)? {
        Some(Value::Object(map)) => map,
        Some(Value::Null) | None => return Ok(None),
        Some(_) => return Err(NotAnObject::at(parents)),
    };
    Ok(parent.get_mut(*last).filter(|v| !v.is_null()))
}

/// The object at `path`, created (with every missing or `null` parent) when absent.
///
/// # Errors
/// A value on the way, or at `path`, is something other than an object or `null`.
pub(super) fn ensure_object<'a>(
    root: &'a mut Value,
    path: &[&str],
) -> Result<&'a mut Map<String, Value>, NotAnObject> {
    let mut current = root;
    for (depth, field) in path.iter().enumerate() {
        let Value::Object(map) = current else {
            return Err(NotAnObject::at(&path[..depth]));
        };
        let next = map
            .entry((*field).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if next.is_null() {
            *next = Value::Object(Map::new());
        }
        current = next;
    }
    match current {
        Value::Object(map) => Ok(map),
        _ => Err(NotAnObject::at(path)),
    }
}

/// Where a workload kind keeps its pod template (an object with `metadata` and `spec`); for a
/// Pod, the object itself. `None` for kinds without pods.
pub(super) fn pod_template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&[]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&["spec", "template"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// `prefix` followed by `rest`.
pub(super) fn join<'a>(prefix: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    let mut path = Vec::with_capacity(prefix.len() + rest.len());
    path.extend_from_slice(prefix);
    path.extend_from_slice(rest);
    path
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ensure_object, get, get_mut};

    #[test]
    fn errors_name_the_value_that_is_not_an_object() {
        let mut doc = json!({"spec": {"template": []}});
        let message = |e: super::NotAnObject| e.to_string();
        assert_eq!(
            get(&doc, &["spec", "template", "metadata"]).map_err(message),
            Err("/spec/template is not an object".to_owned())
        );
        assert_eq!(
            get_mut(&mut doc, &["spec", "template", "metadata"])
                .map(|_| ())
                .map_err(message),
            Err("/spec/template is not an object".to_owned())
        );
        assert_eq!(
            ensure_object(&mut doc, &["spec", "template"])
                .map(|_| ())
                .map_err(message),
            Err("/spec/template is not an object".to_owned())
        );
        assert_eq!(
            ensure_object(&mut json!("x"), &["metadata"])
                .map(|_| ())
                .map_err(message),
            Err("the object is not a JSON object".to_owned())
        );
    }
}
