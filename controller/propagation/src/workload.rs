//! Replicas and per-replica resource requests of a workload template, as Karmada's default
//! resource interpreter reads them (`pkg/resourceinterpreter/default/native`).
//!
//! | kind | replicas | pod spec |
//! |---|---|---|
//! | Deployment, StatefulSet, ReplicaSet | `spec.replicas` (1 when absent) | `spec.template.spec` |
//! | Job | `spec.parallelism` (1 when absent), at most `spec.completions` | `spec.template.spec` |
//! | Pod | 1 | `spec` |
//! | anything else | 0: not a workload | none |
//!
//! A replica's requests follow Kubernetes' pod request rule: the sum of the containers'
//! `resources.requests`, raised to each init container's (restartable "sidecar" init containers
//! add to everything after them), plus `spec.overhead`, plus `pods: 1`.

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use super::quantity::{QuantityError, parse_json_milli};

/// The resource name every replica needs one of.
pub const PODS: &str = "pods";

/// What one replica requests: resource name → milli-units. Empty = unknown (not a workload).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Milli-units per resource name (`cpu`, `memory`, `pods`, extended resources).
    pub milli: BTreeMap<String, i128>,
}

impl Requirements {
    /// Whether nothing is known about the replica's needs.
    pub fn is_empty(&self) -> bool {
        self.milli.is_empty()
    }

    fn add(&mut self, other: &Self) {
        for (name, value) in &other.milli {
            *self.milli.entry(name.clone()).or_default() += value;
        }
    }

    fn raise_to(&mut self, other: &Self) {
        for (name, value) in &other.milli {
            let entry = self.milli.entry(name.clone()).or_default();
            *entry = (*entry).max(*value);
        }
    }
}

/// A template's replicas and what each replica requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    /// 0 for kinds without replicas.
    pub replicas: i32,
    pub requirements: Requirements,
}

/// A template field that cannot be read; `path` is the field, e.g.
/// `spec.template.spec.containers[0].resources.requests.cpu`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WorkloadError {
    #[error("{path}: expected a non-negative 32-bit integer")]
    ReadReplicas { path: String },
    #[error("{path}: expected {expected}")]
    ReadField {
        path: String,
        expected: &'static str,
    },
    #[error("{path}: {source}")]
    ReadQuantity {
        path: String,
        #[source]
        source: QuantityError,
    },
}

/// The replicas and per-replica requirements of a template of `kind`.
///
/// # Errors
/// A replica count that is not a non-negative integer, or a malformed container list or
/// quantity; the error names the field.
pub fn workload(kind: &str, template: &Value) -> Result<Workload, WorkloadError> {
    let (replicas, pod_spec) = match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => (
            replicas_at(template, &["spec", "replicas"])?,
            "spec.template.spec",
        ),
        "Job" => (job_replicas(template)?, "spec.template.spec"),
        "Pod" => (1, "spec"),
        _ => return Ok(Workload::default()),
    };
    let spec = pod_spec.split('.').try_fold(template, |v, k| v.get(k));
    let requirements = match spec {
        Some(spec) => pod_requirements(spec, pod_spec)?,
        None => per_pod_only(),
    };
    Ok(Workload {
        replicas,
        requirements,
    })
}

/// Karmada's Job rule: `parallelism`, but never more than `completions`.
fn job_replicas(template: &Value) -> Result<i32, WorkloadError> {
    let parallelism = replicas_at(template, &["spec", "parallelism"])?;
    if lookup(template, &["spec", "completions"]).is_none_or(Value::is_null) {
        return Ok(parallelism);
    }
    Ok(parallelism.min(replicas_at(template, &["spec", "completions"])?))
}

fn lookup<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// The integer at `path`; 1 when absent or null (the API server's default).
fn replicas_at(template: &Value, path: &[&str]) -> Result<i32, WorkloadError> {
    match lookup(template, path) {
        None | Some(Value::Null) => Ok(1),
        Some(value) => value
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| WorkloadError::ReadReplicas {
                path: path.join("."),
            }),
    }
}

fn per_pod_only() -> Requirements {
    Requirements {
        milli: BTreeMap::from([(PODS.to_owned(), 1000)]),
    }
}

/// Kubernetes' pod requests (`resourcehelper.PodRequests`), plus `pods: 1`.
fn pod_requirements(spec: &Value, path: &str) -> Result<Requirements, WorkloadError> {
    let mut total = Requirements::default();
    for (i, container) in containers(spec, path, "containers")? {
        total.add(&requests(container, &format!("{path}.containers[{i}]"))?);
    }
    let mut sidecars = Requirements::default();
    let mut init_peak = Requirements::default();
    for (i, container) in containers(spec, path, "initContainers")? {
        let own = requests(container, &format!("{path}.initContainers[{i}]"))?;
        let mut running = sidecars.clone();
        running.add(&own);
        if container.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            total.add(&own);
            sidecars = running.clone();
        }
        init_peak.raise_to(&running);
    }
    total.raise_to(&init_peak);
    if let Some(overhead) = spec.get("overhead").filter(|v| !v.is_null()) {
        total.add(&quantities(overhead, &format!("{path}.overhead"))?);
    }
    total.add(&per_pod_only());
    Ok(total)
}

fn containers<'a>(
    spec: &'a Value,
    path: &str,
    field: &str,
) -> Result<impl Iterator<Item = (usize, &'a Value)>, WorkloadError> {
    let list = match spec.get(field) {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => {
            return Err(WorkloadError::ReadField {
                path: format!("{path}.{field}"),
                expected: "a list of containers",
            });
        }
    };
    Ok(list.iter().enumerate())
}

fn requests(container: &Value, path: &str) -> Result<Requirements, WorkloadError> {
    match lookup(container, &["resources", "requests"]) {
        None | Some(Value::Null) => Ok(Requirements::default()),
        Some(map) => quantities(map, &format!("{path}.resources.requests")),
    }
}

fn quantities(map: &Value, path: &str) -> Result<Requirements, WorkloadError> {
    let Value::Object(map) = map else {
        return Err(WorkloadError::ReadField {
            path: path.to_owned(),
            expected: "a map of resource names to quantities",
        });
    };
    let mut result = Requirements::default();
    for (name, value) in map {
        let milli = parse_json_milli(value).map_err(|source| WorkloadError::ReadQuantity {
            path: format!("{path}.{name}"),
            source,
        })?;
        result.milli.insert(name.clone(), milli);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reqs(pairs: &[(&str, i128)]) -> Requirements {
        Requirements {
            milli: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    fn deployment(replicas: Value, pod_spec: Value) -> Value {
        json!({"spec": {"replicas": replicas, "template": {"spec": pod_spec}}})
    }

    #[test]
    fn replicas_by_kind() {
        let cases = [
            ("Deployment", deployment(json!(3), json!({}))),
            ("StatefulSet", json!({"spec": {}})),
            ("ReplicaSet", deployment(json!(0), json!({}))),
            ("Job", json!({"spec": {"parallelism": 5, "completions": 2}})),
            ("Job", json!({"spec": {"parallelism": 4}})),
            ("Pod", json!({"spec": {}})),
            ("ConfigMap", json!({"data": {}})),
        ];
        let got: Vec<Result<i32, WorkloadError>> = cases
            .iter()
            .map(|(kind, t)| workload(kind, t).map(|w| w.replicas))
            .collect();
        assert_eq!(got, vec![Ok(3), Ok(1), Ok(0), Ok(2), Ok(4), Ok(1), Ok(0)]);
    }

    #[test]
    fn containers_sum_and_init_containers_raise() {
        let template = deployment(
            json!(2),
            json!({
                "containers": [
                    {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                    {"resources": {"requests": {"cpu": 1}}},
                    {"name": "no-requests"}
                ],
                "initContainers": [
                    {"resources": {"requests": {"cpu": "2", "nvidia.com/gpu": "1"}}},
                    {"resources": {"requests": {"memory": "32Mi"}}}
                ]
            }),
        );
        assert_eq!(
            workload("Deployment", &template),
            Ok(Workload {
                replicas: 2,
                requirements: reqs(&[
                    ("cpu", 2000),
                    ("memory", 64 * 1024 * 1024 * 1000),
                    ("nvidia.com/gpu", 1000),
                    ("pods", 1000),
                ]),
            })
        );
    }

    #[test]
    fn sidecars_add_and_overhead_adds() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"resources": {"requests": {"cpu": "1500m"}}}
            ],
            "overhead": {"cpu": "10m"}
        }});
        // Sum 1 + sidecar 0.1 = 1.1; the later init container runs beside the sidecar: 1.6.
        assert_eq!(
            workload("Pod", &pod),
            Ok(Workload {
                replicas: 1,
                requirements: reqs(&[("cpu", 1610), ("pods", 1000)]),
            })
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad_cpu = deployment(
            json!(1),
            json!({"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}),
        );
        assert_eq!(
            workload("Deployment", &bad_cpu),
            Err(WorkloadError::ReadQuantity {
                path: "spec.template.spec.containers[0].resources.requests.cpu".to_owned(),
                source: QuantityError::Syntax("lots".to_owned()),
            })
        );
        assert_eq!(
            workload("Deployment", &deployment(json!("three"), json!({}))),
            Err(WorkloadError::ReadReplicas {
                path: "spec.replicas".to_owned()
            })
        );
        assert_eq!(
            workload("Pod", &json!({"spec": {"containers": {}}})),
            Err(WorkloadError::ReadField {
                path: "spec.containers".to_owned(),
                expected: "a list of containers",
            })
        );
        assert_eq!(
            workload(
                "Job",
                &json!({"spec": {"template": {"spec": {"initContainers": [{"resources": {"requests": []}}]}}}})
            ),
            Err(WorkloadError::ReadField {
                path: "spec.template.spec.initContainers[0].resources.requests".to_owned(),
                expected: "a map of resource names to quantities",
            })
        );
    }
}
