//! Problems found in the inputs: a document that does not parse, an annotation that does not
//! validate, an EndpointSlice that names an unknown cluster. A problem never stops loading or
//! serving: the offending document, object or setting is skipped (or replaced by its default) and
//! everything else goes on. Problems are values, so a reconcile can tell new ones from old ones.
//!
//! Where a problem is ([`Source`]) is typed: a file of the config directory (or one document of
//! it), a member cluster's watch, or an object. It prints the way people read it
//! (`clusters.yaml#2`, `Service team-a/api (cluster east-1)`) and serializes as that text.
//!
//! Messages never quote Secret data: the sources redact anything quoted in a Secret's errors.

use std::fmt;

use serde::{Serialize, Serializer};

/// One problem with the inputs, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Problem {
    /// Where: a document, a watch or an object.
    pub source: Source,
    /// The field at fault, as a path (`spec.ports[0].port`); `None` when it is the whole
    /// document or object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, and what was done about it when that is not "skipped".
    pub message: String,
}

/// Where a problem is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A file of the config directory (path relative to it), or one document of it (0-based).
    File {
        path: String,
        document: Option<usize>,
    },
    /// What one cluster's API server holds, as a watch of it sees it.
    Cluster { name: String },
    /// An object: its kind (`Service`), namespace (empty for cluster-scoped kinds), name, and
    /// the member cluster it was observed in, if any.
    Object {
        kind: String,
        namespace: String,
        name: String,
        cluster: Option<String>,
    },
}

impl Source {
    /// A whole file.
    pub fn file(path: impl Into<String>) -> Self {
        Self::File {
            path: path.into(),
            document: None,
        }
    }

    /// One document of a file: `file#index`.
    pub fn document(path: impl Into<String>, index: usize) -> Self {
        Self::File {
            path: path.into(),
            document: Some(index),
        }
    }

    /// An object of a cluster-scoped kind, or of a namespaced one when `namespace` is set.
    pub fn object(kind: &str, namespace: &str, name: &str) -> Self {
        Self::Object {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            cluster: None,
        }
    }

    /// The same object, as observed in `cluster`.
    pub fn in_cluster(self, cluster: &str) -> Self {
        match self {
            Self::Object {
                kind,
                namespace,
                name,
                ..
            } => Self::Object {
                kind,
                namespace,
                name,
                cluster: Some(cluster.to_owned()),
            },
            other => other,
        }
    }
}

impl fmt::Display for Source {
    /// `a.yaml`, `a.yaml#2`, `cluster east-1`, `Cluster east-1`, `Service team-a/api`,
    /// `Service team-a/api (cluster east-1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File {
                path,
                document: None,
            } => f.write_str(path),
            Self::File {
                path,
                document: Some(index),
            } => write!(f, "{path}#{index}"),
            Self::Cluster { name } => write!(f, "cluster {name}"),
            Self::Object {
                kind,
                namespace,
                name,
                cluster,
            } => {
                if namespace.is_empty() {
                    write!(f, "{kind} {name}")?;
                } else {
                    write!(f, "{kind} {namespace}/{name}")?;
                }
                match cluster {
                    Some(cluster) => write!(f, " (cluster {cluster})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Serialize for Source {
    /// As it prints: `/debug/problems` and `-o json` show what people read.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Problem {
    pub fn new(source: Source, message: impl Into<String>) -> Self {
        Self {
            source,
            field: None,
            message: message.into(),
        }
    }

    /// The same problem, pinned to one field.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
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
            Source::document("clusters.yaml", 2),
            "invalid type: string \"x\", expected u32",
        )
        .at("spec.ports[0].port");
        assert_eq!(
            problem.to_string(),
            "clusters.yaml#2 spec.ports[0].port: invalid type: string \"x\", expected u32"
        );
        assert_eq!(
            Problem::new(Source::object("Service", "team-a", "api"), "no ports").to_string(),
            "Service team-a/api: no ports"
        );
    }

    #[test]
    fn sources_print_as_people_read_them() {
        let cases = [
            (Source::file("a.yaml"), "a.yaml"),
            (Source::document("a/b.yaml", 0), "a/b.yaml#0"),
            (
                Source::Cluster {
                    name: "east-1".into(),
                },
                "cluster east-1",
            ),
            (Source::object("Cluster", "", "east-1"), "Cluster east-1"),
            (
                Source::object("Service", "team-a", "api").in_cluster("east-1"),
                "Service team-a/api (cluster east-1)",
            ),
        ];
        for (source, text) in cases {
            assert_eq!(source.to_string(), text);
        }
    }

    #[test]
    fn serializes_the_source_as_text_without_empty_field() {
        let json =
            serde_json::to_value(Problem::new(Source::document("a.yaml", 0), "bad")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source": "a.yaml#0", "message": "bad"})
        );
    }
}
