//! `propagateDeps`: the ConfigMaps, Secrets, ServiceAccounts and claims a workload references
//! go wherever it goes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::{ObjectKey, ObjectMeta, PropagationPolicy, TargetCluster};
use crate::problem::Problem;

use super::super::render::{self, RenderInput};
use super::super::sink::ManifestKey;
use super::super::templates::Template;
use super::binding::{binding_for, scheduled};
use super::{Fleet, Plan};

/// Dependencies (`propagateDeps`) go wherever a workload needing them goes: added to their own
/// binding's clusters when a policy claims them, else under a binding of their own.
pub(super) fn attach_dependencies(
    fleet: &Fleet<'_>,
    templates: &[Template<'_>],
    required: BTreeMap<ObjectKey, BTreeSet<String>>,
    plan: &mut Plan,
) {
    let by_key: BTreeMap<&ObjectKey, &Template<'_>> =
        templates.iter().map(|t| (&t.key, t)).collect();
    for (key, clusters) in required {
        // A dependency defined nowhere may be created in the member clusters by other means.
        let Some(template) = by_key.get(&key) else {
            continue;
        };
        let json = match template.json() {
            Ok(json) => json,
            Err(message) => {
                plan.problems
                    .push(Problem::new(template.to_string(), message));
                continue;
            }
        };
        let manifest_key = template.manifest_key();
        let reference = template.reference();
        let own = plan.bindings.get(&reference).map(|b| {
            b.spec
                .clusters
                .iter()
                .map(|t| t.name.clone())
                .collect::<BTreeSet<_>>()
        });
        for cluster in clusters
            .iter()
            .filter(|c| own.as_ref().is_none_or(|o| !o.contains(*c)))
        {
            let Some(&i) = fleet.by_name.get(cluster.as_str()) else {
                continue;
            };
            let input = RenderInput {
                template: &json,
                resource: template.id(),
                cluster: &fleet.clusters[i],
                replicas: None,
                overrides: &fleet.overrides,
            };
            place(
                plan,
                cluster,
                &manifest_key,
                template,
                render::render(&input),
            );
        }
        if own.is_none() {
            let targets = clusters
                .iter()
                .map(|name| TargetCluster {
                    name: name.clone(),
                    replicas: 0,
                })
                .collect();
            let mut binding = binding_for(
                template,
                &PropagationPolicy {
                    api_version: String::new(),
                    kind: String::new(),
                    metadata: ObjectMeta::default(),
                    spec: Default::default(),
                },
                0,
                targets,
                Vec::new(),
                scheduled(),
            );
            binding.metadata.labels.clear();
            binding.spec.placement = None;
            binding
                .metadata
                .annotations
                .insert("meshfleet.io/dependency".to_owned(), "true".to_owned());
            plan.bindings.insert(reference, binding);
        }
    }
}

/// Records one rendered manifest, or the failure to render it.
fn place(
    plan: &mut Plan,
    cluster: &str,
    key: &ManifestKey,
    template: &Template<'_>,
    rendered: Result<serde_json::Value, render::RenderError>,
) {
    match rendered {
        Ok(mut manifest) => {
            super::set_namespace(&mut manifest, template.namespace);
            plan.manifests
                .entry(cluster.to_owned())
                .or_default()
                .insert(key.clone(), Arc::new(manifest));
        }
        Err(error) => {
            plan.problems.push(Problem::new(
                template.to_string(),
                format!("not rendered for cluster {cluster} (its last copy stays): {error}"),
            ));
            plan.keep
                .entry(cluster.to_owned())
                .or_default()
                .insert(key.clone());
        }
    }
}
