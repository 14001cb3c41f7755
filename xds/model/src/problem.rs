//! Problems found in the configuration: a document that does not parse, an annotation that does
//! not validate, an EndpointSlice that names an unknown cluster. A problem never stops loading or
//! serving: the offending document, object or setting is skipped (or replaced by its default) and
//! everything else goes on. Problems are values, so a reconcile can tell new ones from old ones.
//!
//! Messages never quote Secret data: the source redacts anything quoted in a Secret's errors.

use std::fmt;

use serde::Serialize;

/// One problem with the configuration, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Problem {
    /// Where: a document (`clusters.yaml#2`, file relative to the config directory and 0-based
    /// document index) or an object (`Service team-a/api`).
    pub source: String,
    /// The field at fault, as a path (`spec.ports[0].port`); `None` when it is the whole
    /// document or object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, and what was done about it when that is not "skipped".
    pub message: String,
}

impl Problem {
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            field: None,
            message: message.into(),
        }
    }

    /// The same problem, pinned to one field.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The source of a document: `file#index`.
    pub fn document(file: &str, index: usize) -> String {
        format!("{file}#{index}")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} {field}: {}", self.source, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_field() {
        let problem = Problem::new(
            Problem::document("clusters.yaml", 2),
            "invalid type: string \"x\", expected u32",
        )
        .at("spec.ports[0].port");
        assert_eq!(
            problem.to_string(),
            "clusters.yaml#2 spec.ports[0].port: invalid type: string \"x\", expected u32"
        );
        assert_eq!(
            Problem::new("Service team-a/api", "no ports").to_string(),
            "Service team-a/api: no ports"
        );
    }

    #[test]
    fn serializes_without_empty_field() {
        let json = serde_json::to_value(Problem::new("a.yaml#0", "bad")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source": "a.yaml#0", "message": "bad"})
        );
    }
}
