//! A policy's `dependentOverrides`: as Karmada's detector does (`pkg/detector`, v1.18.2), a
//! template claimed by a policy that names override policies is not propagated until they all
//! exist (OverridePolicies of the policy's namespace for a PropagationPolicy,
//! ClusterOverridePolicies for a ClusterPropagationPolicy), so no copy is ever written without
//! its overrides. Until then its last binding and copies stay as they are.

use std::sync::Arc;

use meshfleet_api::{OverridePolicy, PropagationPolicy, ResourceBinding};
use meshfleet_model::problem::{Problem, Source};

use super::checks::policy_name;
use super::{CopyError, Entry, dependencies_of};
use crate::templates::Template;

/// The override policies `policy` depends on that do not exist, by name.
pub(super) fn missing_overrides(
    overrides: &[Arc<OverridePolicy>],
    policy: &PropagationPolicy,
) -> Vec<String> {
    let namespace = policy.metadata.namespace_or_default();
    let exists = |name: &String| {
        overrides.iter().any(|o| {
            o.metadata.name == *name
                && o.is_cluster_scoped() == policy.is_cluster_scoped()
                && (o.is_cluster_scoped() || o.metadata.namespace_or_default() == namespace)
        })
    };
    policy
        .spec
        .dependent_overrides
        .iter()
        .filter(|name| !exists(name))
        .cloned()
        .collect()
}

/// The entry of a template whose policy waits for `missing`: its last binding, and the copies
/// that binding placed, as they are.
pub(super) fn waiting(
    template: &Template<'_>,
    policy: &PropagationPolicy,
    last: Option<&ResourceBinding>,
    missing: &[String],
    mut problems: Vec<Problem>,
) -> Entry {
    let kind = if policy.is_cluster_scoped() {
        "ClusterOverridePolicy"
    } else {
        "OverridePolicy"
    };
    let policies = missing
        .iter()
        .map(|name| format!("{kind} {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    problems.push(Problem::new(
        Source::from(template.key),
        format!(
            "not propagated: {} waits for {policies} (dependentOverrides); copies already there stay as they are",
            policy_name(policy)
        ),
    ));
    let copies: Vec<_> = last
        .iter()
        .flat_map(|b| {
            let targets = b.spec.clusters.iter().map(|t| &t.name);
            targets.chain(
                b.spec
                    .graceful_eviction_tasks
                    .iter()
                    .map(|t| &t.from_cluster),
            )
        })
        .map(|cluster| {
            let error = CopyError::WaitForOverrides {
                policies: policies.clone(),
            };
            (cluster.clone(), Err(error))
        })
        .collect();
    // Its dependencies stay where its copies are.
    let placed = copies.iter().map(|(c, _)| c.clone()).collect();
    let deps = template
        .json()
        .map(|json| dependencies_of(template, policy, &json, &placed))
        .unwrap_or_default();
    Entry {
        binding: last.map(|b| Arc::new(b.clone())),
        copies,
        problems,
        deps,
        ..Entry::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Bindings, plan};
    use crate::fixtures::{FLEET, NGINX, index, now};

    const OVERRIDE: &str = "
apiVersion: policy.karmada.io/v1alpha1
kind: OverridePolicy
metadata: {name: nginx-images}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: nginx}]
  overrideRules:
  - overriders: {imageOverrider: [{component: Registry, operator: replace, value: mirror.example.com}]}
";

    #[test]
    fn a_policy_waits_for_the_overrides_it_depends_on() {
        let nginx = format!("{NGINX}  dependentOverrides: [nginx-images]\n");
        let waiting = plan(
            &index(&[("fleet.yaml", FLEET), ("nginx.yaml", &nginx)]),
            &Bindings::new(),
            now(),
        );
        assert_eq!(
            waiting
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "Deployment default/nginx: not propagated: PropagationPolicy default/nginx-propagation waits for OverridePolicy nginx-images (dependentOverrides); copies already there stay as they are"
            ]
        );
        assert!(waiting.bindings.is_empty());
        assert!(waiting.manifests.is_empty() && waiting.keep.is_empty());

        // Once it exists, the copies are written with it.
        let ready = plan(
            &index(&[
                ("fleet.yaml", FLEET),
                ("nginx.yaml", &nginx),
                ("override.yaml", OVERRIDE),
            ]),
            &Bindings::new(),
            now(),
        );
        assert_eq!(ready.problems, vec![]);
        let copy = ready.manifests["member1"]
            .values()
            .next()
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(
            copy["spec"]["template"]["spec"]["containers"][0]["image"],
            "mirror.example.com/nginx"
        );

        // The override deleted again: the last binding and its copies stay as they are.
        let held = plan(
            &index(&[("fleet.yaml", FLEET), ("nginx.yaml", &nginx)]),
            &ready.bindings,
            now(),
        );
        assert_eq!(held.bindings, ready.bindings);
        assert!(held.manifests.is_empty());
        assert_eq!(held.keep.keys().collect::<Vec<_>>(), ["member1", "member2"]);
    }
}
