//! Labels every rendered copy carries: `meshfleet.io/managed: "true"` on the object, and the
//! cluster's locality on the pods a workload creates (its pod template; a Pod's own labels):
//!
//! | label | value |
//! |---|---|
//! | `topology.kubernetes.io/region` | `spec.region`, when set |
//! | `topology.kubernetes.io/zone` | the zone, when the cluster has exactly one |
//! | `topology.istio.io/subzone` | `spec.subzone`, when set |
//! | `topology.istio.io/network` | `spec.network`, when set |
//! | `topology.istio.io/cluster` | the cluster's name |
//!
//! They are written after the overrides and win over them, as Karmada's own bookkeeping
//! labels (`resourcebinding.karmada.io/permanent-id`, ...) are merged after overrides: Istio's
//! locality routing depends on them, so a policy cannot remove or fake them. A cluster spanning
//! several zones gets no zone label: the node's own zone label says where each pod runs.

use serde_json::Value;

use super::tree::{self, NotAnObject};
use super::{LABEL_CLUSTER, LABEL_MANAGED};
use meshfleet_api::Cluster;

pub(super) const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub(super) const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub(super) const LABEL_SUBZONE: &str = "topology.istio.io/subzone";
pub(super) const LABEL_NETWORK: &str = "topology.istio.io/network";

/// The locality labels of `cluster`'s pods, in a fixed order.
pub(super) fn locality_labels(cluster: &Cluster) -> Vec<(&'static str, &str)> {
    let mut labels = Vec::with_capacity(5);
    if let Some(region) = cluster.region() {
        labels.push((LABEL_REGION, region));
    }
    if let Some(zone) = cluster.single_zone() {
        labels.push((LABEL_ZONE, zone));
    }
    if let Some(subzone) = cluster.subzone() {
        labels.push((LABEL_SUBZONE, subzone));
    }
    if !cluster.network().is_empty() {
        labels.push((LABEL_NETWORK, cluster.network()));
    }
    labels.push((LABEL_CLUSTER, cluster.name()));
    labels
}

/// Writes the managed label, and the locality labels on `kind`'s pod template.
///
/// # Errors
/// `metadata`, `metadata.labels` or a field on the way to the pod template's labels is not an
/// object; the message names it.
pub(super) fn label(doc: &mut Value, kind: &str, cluster: &Cluster) -> Result<(), NotAnObject> {
    tree::ensure_object(doc, &["metadata", "labels"])?
        .insert(LABEL_MANAGED.to_owned(), Value::from("true"));
    let Some(template) = tree::pod_template_path(kind) else {
        return Ok(());
    };
    let labels = tree::ensure_object(doc, &tree::join(template, &["metadata", "labels"]))?;
    for (key, value) in locality_labels(cluster) {
        labels.insert(key.to_owned(), Value::from(value));
    }
    Ok(())
}
