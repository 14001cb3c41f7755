//! Events in the gateway cluster for what is wrong with its objects, as `kubectl describe`
//! shows them: a refused object (reason `InvalidObject`, the problem as `/debug/problems`
//! words it), a copy that could not be applied to a member (reason `ApplyFailed`, on its
//! template). Written by the Lease holder, once per distinct object, reason and message while
//! the problem lasts; problems of a member's own objects stay in `/debug/problems`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use kube::api::{DynamicObject, PostParams};
use serde_json::json;

use meshfleet_model::problem::{Problem, Source};
use meshfleet_propagation::manifest::ManifestKey;

use super::objects::{self, EVENTS};

/// Most Events written in one pass.
const MAX_PER_PASS: usize = 100;

/// What an Event is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Involved {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One Event to write: about what, why (a CamelCase reason), and the message.
pub type Note = (Involved, &'static str, String);

/// The apiVersion of a kind meshfleet reads, for an Event's `involvedObject`.
fn api_version_of(kind: &str) -> String {
    let known = [
        objects::CLUSTERS,
        objects::PROPAGATION_POLICIES,
        objects::CLUSTER_PROPAGATION_POLICIES,
        objects::OVERRIDE_POLICIES,
        objects::CLUSTER_OVERRIDE_POLICIES,
        objects::SERVICES,
        objects::SECRETS,
        objects::SERVICE_EXPORTS,
        objects::DESTINATION_RULES,
        objects::ENDPOINT_SLICES,
    ];
    known
        .iter()
        .chain(objects::DEFAULT_TEMPLATES.iter())
        .find(|r| r.kind == kind)
        .map(objects::Resource::api_version)
        .unwrap_or_default()
}

/// Events for the problems of the gateway cluster's own objects.
pub fn from_problems(problems: &[Problem]) -> Vec<Note> {
    problems
        .iter()
        .filter_map(|problem| match &problem.source {
            Source::Object {
                kind,
                namespace,
                name,
                cluster: None,
            } => {
                let message = match &problem.field {
                    Some(field) => format!("{field}: {}", problem.message),
                    None => problem.message.clone(),
                };
                Some((
                    Involved {
                        api_version: api_version_of(kind),
                        kind: kind.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                    },
                    "InvalidObject",
                    message,
                ))
            }
            _ => None,
        })
        .collect()
}

/// Events for copies that could not be applied, on their templates.
pub fn from_failures(failures: &BTreeMap<String, BTreeMap<ManifestKey, String>>) -> Vec<Note> {
    let mut notes = Vec::new();
    for (cluster, failed) in failures {
        for (key, why) in failed {
            let api_version = if key.group.is_empty() {
                "v1".to_owned()
            } else {
                api_version_of(&key.kind)
            };
            notes.push((
                Involved {
                    api_version,
                    kind: key.kind.clone(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                },
                "ApplyFailed",
                format!("cannot apply to cluster {cluster}: {why}"),
            ));
        }
    }
    notes
}

/// Writes Events, each once while it lasts.
pub struct Recorder {
    client: kube::Client,
    instance: String,
    /// Event names written, and still meant.
    written: BTreeSet<String>,
}

impl Recorder {
    pub fn new(client: kube::Client, instance: String) -> Self {
        Self {
            client,
            instance,
            written: BTreeSet::new(),
        }
    }

    /// Takes nothing as written any more (this replica just took the Lease).
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// Writes the Events of `notes` not written yet; forgets those no longer meant (so that a
    /// problem that comes back is told again).
    pub async fn record(&mut self, notes: Vec<Note>) {
        let mut meant = BTreeSet::new();
        let mut budget = MAX_PER_PASS;
        for (involved, reason, message) in notes {
            let name = event_name(&involved, reason, &message);
            meant.insert(name.clone());
            if self.written.contains(&name) || budget == 0 {
                continue;
            }
            budget -= 1;
            // Events of cluster-scoped objects go to `default`, as kubectl's do.
            let namespace = if involved.namespace.is_empty() {
                "default".to_owned()
            } else {
                involved.namespace.clone()
            };
            let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let event: DynamicObject = match serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {"apiVersion": involved.api_version, "kind": involved.kind,
                    "namespace": if involved.namespace.is_empty() { serde_json::Value::Null } else { json!(involved.namespace) },
                    "name": involved.name},
                "reason": reason,
                "message": message,
                "type": "Warning",
                "source": {"component": "meshfleet"},
                "reportingComponent": "meshfleet",
                "reportingInstance": self.instance,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            })) {
                Ok(event) => event,
                Err(_) => continue,
            };
            let api = EVENTS.api(&self.client, &namespace);
            match api.create(&PostParams::default(), &event).await {
                Ok(_) => {
                    self.written.insert(name);
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    self.written.insert(name);
                }
                Err(error) => tracing::debug!(%error, "cannot write an Event"),
            }
        }
        self.written.retain(|n| meant.contains(n));
    }
}

/// `<object>.<hash>`: one name per object, reason and message.
fn event_name(involved: &Involved, reason: &str, message: &str) -> String {
    let text = format!("{involved:?}{reason}{message}");
    let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
    let base: String = involved
        .name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(200)
        .collect();
    format!("{base}.{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_objects_get_events_and_members_objects_do_not() {
        let problems = vec![
            Problem::new(
                Source::object("PropagationPolicy", "default", "bad"),
                "unknown field `clusterAfinity`",
            )
            .at("spec.placement"),
            Problem::new(
                Source::Object {
                    kind: "Service".into(),
                    namespace: "demo".into(),
                    name: "echo".into(),
                    cluster: Some("east-1".into()),
                },
                "bad port",
            ),
            Problem::new(Source::file("a.yaml"), "not YAML"),
        ];
        let notes = from_problems(&problems);
        assert_eq!(notes.len(), 1);
        let (involved, reason, message) = &notes[0];
        assert_eq!(involved.api_version, "meshfleet.io/v1alpha1");
        assert_eq!(involved.name, "bad");
        assert_eq!(*reason, "InvalidObject");
        assert_eq!(message, "spec.placement: unknown field `clusterAfinity`");
        let a = event_name(involved, reason, message);
        assert_eq!(a, event_name(involved, reason, message), "stable");
        assert_ne!(a, event_name(involved, reason, "another"));
        assert!(a.starts_with("bad."));
    }

    #[test]
    fn failed_copies_are_told_on_their_templates() {
        let failures = BTreeMap::from([(
            "east-1".to_owned(),
            BTreeMap::from([(
                ManifestKey {
                    group: "apps".into(),
                    kind: "Deployment".into(),
                    namespace: "default".into(),
                    name: "nginx".into(),
                },
                "forbidden (RBAC): no".to_owned(),
            )]),
        )]);
        let notes = from_failures(&failures);
        assert_eq!(notes[0].0.api_version, "apps/v1");
        assert_eq!(notes[0].1, "ApplyFailed");
        assert!(notes[0].2.contains("cluster east-1: forbidden (RBAC)"));
    }
}
