//! A policy's `suspension` (Karmada's `spec.suspension`): scheduling goes on and the binding
//! records its result, but nothing is dispatched to the suspended clusters.
//!
//! # Caveats
//! Karmada 1.18 (`pkg/controllers/execution`) still deletes a copy from a cluster the binding
//! no longer places the resource on, suspended or not; meshfleet leaves every copy on a
//! suspended cluster as it is until dispatching resumes.

use std::sync::Arc;

use meshfleet_api::{BindingCondition, PropagationPolicy, ResourceBinding};

use super::checks::policy_name;
use super::{CopyError, Fleet};
use crate::manifest::Manifest;

/// Applies the policy's `suspension`: the copies for suspended clusters become
/// [`CopyError::SuspendDispatching`], and so does every other suspended cluster's (a copy
/// written there before stays while dispatching is suspended, even where the binding no longer
/// places the resource); the binding says so in a `Dispatching` condition.
pub(super) fn suspend(
    fleet: &Fleet<'_>,
    policy: &PropagationPolicy,
    copies: &mut Vec<(String, Result<Arc<Manifest>, CopyError>)>,
    binding: &mut ResourceBinding,
) {
    let Some(suspension) = &policy.spec.suspension else {
        return;
    };
    let suspended: Vec<&str> = fleet
        .clusters
        .iter()
        .map(|c| c.name())
        .filter(|name| suspension.suspends(name))
        .collect();
    if suspended.is_empty() {
        return;
    }
    copies.retain(|(cluster, _)| !suspension.suspends(cluster));
    copies.extend(suspended.iter().map(|cluster| {
        let error = CopyError::SuspendDispatching {
            cluster: (*cluster).to_owned(),
        };
        ((*cluster).to_owned(), Err(error))
    }));
    let on = if suspension.dispatching == Some(true) {
        "every cluster".to_owned()
    } else {
        suspended.join(", ")
    };
    binding.status.conditions.push(BindingCondition {
        type_: "Dispatching".to_owned(),
        status: "False".to_owned(),
        reason: "SuspendDispatching".to_owned(),
        message: format!(
            "dispatching to {on} is suspended by {}: copies already there stay as they are",
            policy_name(policy)
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::super::binding::scheduled;
    use super::super::{Bindings, plan};
    use crate::fixtures::{FLEET, NGINX, index, now};
    use crate::manifest::ManifestKey;

    fn nginx_suspended(suspension: &str) -> String {
        format!("{NGINX}  suspension: {suspension}\n")
    }

    fn nginx_key() -> ManifestKey {
        ManifestKey {
            group: "apps".to_owned(),
            kind: "Deployment".to_owned(),
            namespace: "default".to_owned(),
            name: "nginx".to_owned(),
        }
    }

    #[test]
    fn a_suspended_binding_is_scheduled_and_nothing_is_dispatched() {
        let nginx = nginx_suspended("{dispatching: true}");
        let plan = plan(
            &index(&[("fleet.yaml", FLEET), ("nginx.yaml", &nginx)]),
            &Bindings::new(),
            now(),
        );
        assert_eq!(plan.problems, vec![]);
        let binding = plan.bindings.values().next().expect("a binding");
        let targets: Vec<(&str, i32)> = binding
            .spec
            .clusters
            .iter()
            .map(|t| (t.name.as_str(), t.replicas))
            .collect();
        assert_eq!(targets, [("member1", 1), ("member2", 1)]);
        assert_eq!(
            binding.status.conditions,
            [
                scheduled(),
                meshfleet_api::BindingCondition {
                    type_: "Dispatching".to_owned(),
                    status: "False".to_owned(),
                    reason: "SuspendDispatching".to_owned(),
                    message: "dispatching to every cluster is suspended by PropagationPolicy default/nginx-propagation: copies already there stay as they are".to_owned(),
                }
            ]
        );
        assert!(plan.manifests.values().all(|m| m.is_empty()));
        // Every cluster keeps what it holds, even one the binding does not place it on.
        for cluster in ["member1", "member2", "member3", "member4"] {
            assert_eq!(plan.keep[cluster], [nginx_key()].into(), "{cluster}");
            assert_eq!(plan.suspended[cluster], [nginx_key()].into(), "{cluster}");
        }
    }

    #[test]
    fn dispatching_suspended_on_some_clusters_stops_only_there() {
        let nginx = nginx_suspended("{dispatchingOnClusters: {clusterNames: [member2, member9]}}");
        let plan = plan(
            &index(&[("fleet.yaml", FLEET), ("nginx.yaml", &nginx)]),
            &Bindings::new(),
            now(),
        );
        assert_eq!(plan.problems, vec![]);
        assert_eq!(
            plan.manifests["member1"].keys().collect::<Vec<_>>(),
            [&nginx_key()]
        );
        assert!(!plan.manifests.contains_key("member2"));
        assert_eq!(plan.keep.keys().collect::<Vec<_>>(), ["member2"]);
        assert_eq!(plan.suspended["member2"], [nginx_key()].into());
        let binding = plan.bindings.values().next().expect("a binding");
        assert_eq!(
            binding.status.conditions[1].message,
            "dispatching to member2 is suspended by PropagationPolicy default/nginx-propagation: copies already there stay as they are"
        );
    }
}
