//! Which OverridePolicies and ClusterOverridePolicies apply to one copy, in what order, and
//! applying their overriders — as Karmada's override manager
//! (`pkg/util/overridemanager/overridemanager.go`) does:
//!
//! ```text
//!  ClusterOverridePolicies ─┐ resourceSelectors match (none = every resource)
//!                           ├─> sort: implicit priority (all < labelSelector < name), then name
//!  OverridePolicies ────────┘     (only those in the resource's namespace; cluster-scoped
//!                                  resources get none)
//!  cluster policies, then namespaced ones; in each policy every rule whose targetCluster
//!  matches (absent = all); in each rule: image, command, args, labels, annotations, field,
//!  plaintext. Later ones win.
//! ```

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::RenderError;
use super::containers::{self, Target};
use super::fault::Fault;
use super::meta::{self, Map};
use super::{field, image, patch};
use crate::selector::{Precision, ResourceId, best_match, cluster_matches};
use meshfleet_api::{Cluster, ClusterAffinity, OverridePolicy, Overriders};

/// The policies that apply to `resource`, in the order they are applied.
pub(super) fn applicable<'p>(
    policies: &'p [Arc<OverridePolicy>],
    resource: &ResourceId<'_>,
) -> Vec<&'p OverridePolicy> {
    let mut cluster = Vec::new();
    let mut namespaced = Vec::new();
    for policy in policies {
        let group = if policy.is_cluster_scoped() {
            &mut cluster
        } else if !resource.namespace.is_empty()
            && policy.metadata.namespace_or_default() == resource.namespace
        {
            &mut namespaced
        } else {
            continue;
        };
        if let Some(precision) = precision(policy, resource) {
            group.push((precision, policy.as_ref()));
        }
    }
    for group in [&mut cluster, &mut namespaced] {
        group.sort_by(|(pa, a), (pb, b)| {
            pa.cmp(pb)
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
    }
    cluster
        .into_iter()
        .chain(namespaced)
        .map(|(_, p)| p)
        .collect()
}

/// Karmada's implicit priority: a policy without selectors matches everything, like a selector
/// of apiVersion and kind alone.
fn precision(policy: &OverridePolicy, resource: &ResourceId<'_>) -> Option<Precision> {
    let selectors = &policy.spec.resource_selectors;
    if selectors.is_empty() {
        Some(Precision::Kind)
    } else {
        best_match(selectors, resource)
    }
}

/// Where a rule sits in its policy, for error messages.
#[derive(Clone, Copy, Debug)]
enum RuleAt {
    /// `spec.overrideRules[i]`.
    Rule(usize),
    /// The deprecated `spec.targetCluster` + `spec.overriders`.
    Deprecated,
}

impl fmt::Display for RuleAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rule(i) => write!(f, "spec.overrideRules[{i}]"),
            Self::Deprecated => f.write_str("spec"),
        }
    }
}

/// The rules of a policy, borrowed: what [`OverridePolicy::rules`] returns, without cloning.
fn rules(
    policy: &OverridePolicy,
) -> impl Iterator<Item = (RuleAt, Option<&ClusterAffinity>, &Overriders)> {
    let spec = &policy.spec;
    let current = spec
        .override_rules
        .iter()
        .enumerate()
        .map(|(i, r)| (RuleAt::Rule(i), r.target_cluster.as_ref(), &r.overriders));
    let deprecated = spec
        .overriders
        .as_ref()
        .filter(|_| spec.override_rules.is_empty())
        .map(|o| (RuleAt::Deprecated, spec.target_cluster.as_ref(), o));
    current.chain(deprecated)
}

/// `OverridePolicy team-a/op` or `ClusterOverridePolicy op`.
fn describe(policy: &OverridePolicy) -> String {
    if policy.is_cluster_scoped() {
        format!("ClusterOverridePolicy {}", policy.metadata.name)
    } else {
        format!(
            "OverridePolicy {}/{}",
            policy.metadata.namespace_or_default(),
            policy.metadata.name
        )
    }
}

/// Applies the rules of `policies` that target `cluster`, in order.
///
/// # Errors
/// The first overrider that does not apply, with its policy and field.
pub(super) fn apply(
    doc: &mut Value,
    kind: &str,
    policies: &[&OverridePolicy],
    cluster: &Cluster,
) -> Result<(), RenderError> {
    for policy in policies {
        for (at, target, overriders) in rules(policy) {
            if target.is_some_and(|t| !cluster_matches(t, cluster)) {
                continue;
            }
            let all_containers =
                policy.metadata.annotation(image::ANNOTATION_ALL_CONTAINERS) == Some("true");
            apply_rule(doc, kind, overriders, all_containers).map_err(|fault| {
                RenderError::ApplyOverride {
                    policy: describe(policy),
                    field: format!("{at}.overriders.{}{}", fault.list, fault.at),
                    message: fault.message,
                }
            })?;
        }
    }
    Ok(())
}

/// One rule's overriders, in Karmada's order.
fn apply_rule(
    doc: &mut Value,
    kind: &str,
    o: &Overriders,
    all_containers: bool,
) -> Result<(), Fault> {
    image::apply(doc, kind, &o.image_overrider, all_containers)?;
    containers::apply(doc, kind, Target::Command, &o.command_overrider)?;
    containers::apply(doc, kind, Target::Args, &o.args_overrider)?;
    meta::apply(doc, Map::Labels, &o.labels_overrider)?;
    meta::apply(doc, Map::Annotations, &o.annotations_overrider)?;
    field::apply(doc, &o.field_overrider)?;
    patch::apply_plaintext(doc, &o.plaintext)
}
