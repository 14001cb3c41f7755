//! `propagateDeps`: the ConfigMaps, Secrets, ServiceAccounts and claims a workload references
//! go wherever it goes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::{ObjectKey, ObjectMeta, PropagationPolicy, ResourceBinding, TargetCluster};
use crate::problem::Problem;

use super::super::render::RenderInput;
use super::super::templates::Template;
use super::binding::{binding_for, scheduled};
use super::{Entry, Fleet, Planned, render_copy};

/// Dependencies (`propagateDeps`) go wherever a workload needing them goes: added to their own
/// binding's clusters when a policy claims them, else under a binding of their own. Returns one
/// entry per required dependency, reusing `old` ones whose template and clusters are
/// unchanged.
pub(super) fn plan_dependencies(
    fleet: &Fleet<'_>,
    templates: &[Template<'_>],
    entries: &BTreeMap<ObjectKey, Planned>,
    old: &BTreeMap<ObjectKey, Planned>,
    everything: bool,
) -> BTreeMap<ObjectKey, Planned> {
    let mut deps = BTreeMap::new();
    let mut required: BTreeMap<ObjectKey, BTreeSet<String>> = BTreeMap::new();
    for planned in entries.values() {
        for (dep, clusters) in &planned.entry.deps {
            required
                .entry(dep.clone())
                .or_default()
                .extend(clusters.iter().cloned());
        }
    }
    if required.is_empty() {
        return deps;
    }
    let by_key: BTreeMap<&ObjectKey, &Template<'_>> =
        templates.iter().map(|t| (t.key, t)).collect();
    for (key, clusters) in required {
        // A dependency defined nowhere may be created in the member clusters by other means.
        let Some(template) = by_key.get(&key) else {
            continue;
        };
        let object = template.object;
        let own: Option<BTreeSet<String>> = entries
            .get(&key)
            .and_then(|p| p.entry.binding.as_ref())
            .map(|b| b.spec.clusters.iter().map(|t| t.name.clone()).collect());
        let inputs = (clusters, own);
        let reused = old.get(&key).filter(|p| {
            !everything && p.object.same(object) && p.required.as_ref() == Some(&inputs)
        });
        let planned = match reused {
            Some(planned) => Planned {
                object: object.clone(),
                ..planned.clone()
            },
            None => Planned {
                object: object.clone(),
                entry: Arc::new(dependency(fleet, template, &inputs.0, inputs.1.as_ref())),
                required: Some(inputs),
            },
        };
        deps.insert(key, planned);
    }
    deps
}

/// One dependency's entry: its copies in the clusters its own binding (if any) does not cover.
fn dependency(
    fleet: &Fleet<'_>,
    template: &Template<'_>,
    clusters: &BTreeSet<String>,
    own: Option<&BTreeSet<String>>,
) -> Entry {
    let mut problems = Vec::new();
    let json = match template.json() {
        Ok(json) => Some(json),
        Err(message) => {
            problems.push(Problem::new(template.to_string(), message));
            None
        }
    };
    let mut copies = Vec::new();
    for cluster in clusters
        .iter()
        .filter(|c| own.is_none_or(|o| !o.contains(*c)))
    {
        let (Some(json), Some(&i)) = (&json, fleet.by_name.get(cluster.as_str())) else {
            continue;
        };
        let input = RenderInput {
            template: json,
            resource: template.id(),
            cluster: &fleet.clusters[i],
            replicas: None,
            completions: None,
            overrides: &fleet.overrides,
        };
        let copy = render_copy(template, cluster, &input, &mut problems);
        copies.push((cluster.clone(), copy));
    }
    let binding = own
        .is_none()
        .then(|| Arc::new(dependency_binding(template, clusters)));
    Entry {
        binding,
        copies,
        problems,
        deps: Vec::new(),
        timed: false,
    }
}

/// The binding of a dependency no policy claims: it goes where its workloads go.
fn dependency_binding(template: &Template<'_>, clusters: &BTreeSet<String>) -> ResourceBinding {
    let targets = clusters
        .iter()
        .map(|name| TargetCluster {
            name: name.clone(),
            replicas: 0,
        })
        .collect();
    let unclaimed = PropagationPolicy {
        api_version: String::new(),
        kind: String::new(),
        metadata: ObjectMeta::default(),
        spec: Default::default(),
    };
    let mut binding = binding_for(template, &unclaimed, 0, targets, Vec::new(), scheduled());
    binding.metadata.labels.clear();
    binding.spec.placement = None;
    binding
        .metadata
        .annotations
        .insert("meshfleet.io/dependency".to_owned(), "true".to_owned());
    binding
}
