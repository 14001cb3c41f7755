//! `propagateDeps`: the ConfigMaps, Secrets, ServiceAccounts and claims a workload references
//! go wherever it goes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meshfleet_api::{BindingSnapshot, ObjectKey, ObjectMeta, PropagationPolicy, ResourceBinding};
use meshfleet_model::problem::{Problem, Source};

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
    let mut required: BTreeMap<ObjectKey, (BTreeSet<String>, Vec<BindingSnapshot>)> =
        BTreeMap::new();
    for planned in entries.values() {
        for (dep, clusters) in &planned.entry.deps {
            let (all, by) = required.entry(dep.clone()).or_default();
            all.extend(clusters.iter().cloned());
            if let Some(binding) = &planned.entry.binding {
                by.push(BindingSnapshot {
                    namespace: binding.metadata.namespace.clone().unwrap_or_default(),
                    name: binding.metadata.name.clone(),
                    clusters: binding.spec.clusters.clone(),
                });
            }
        }
    }
    if required.is_empty() {
        return deps;
    }
    for (key, (clusters, by)) in required {
        // Templates are in key order. A dependency defined nowhere may be created in the
        // member clusters by other means.
        let Ok(at) = templates.binary_search_by(|t| t.key.cmp(&key)) else {
            continue;
        };
        let template = &templates[at];
        let object = template.object;
        // Where its own binding puts copies, those being evicted included: those clusters'
        // copies are its own entry's.
        let own: Option<BTreeSet<String>> = entries
            .get(&key)
            .filter(|p| p.entry.binding.is_some())
            .map(|p| p.entry.copies.iter().map(|(c, _)| c.clone()).collect());
        let inputs = Required { clusters, own, by };
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
                entry: Arc::new(dependency(fleet, template, &inputs)),
                required: Some(inputs),
            },
        };
        deps.insert(key, planned);
    }
    deps
}

/// What a dependency's entry is planned from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Required {
    /// Every cluster a workload needing it goes to.
    clusters: BTreeSet<String>,
    /// Its own binding's clusters, when a policy claims it.
    own: Option<BTreeSet<String>>,
    /// The bindings of the workloads needing it.
    by: Vec<BindingSnapshot>,
}

/// One dependency's entry: its copies in the clusters its own binding (if any) does not cover.
fn dependency(fleet: &Fleet<'_>, template: &Template<'_>, required: &Required) -> Entry {
    let (clusters, own) = (&required.clusters, required.own.as_ref());
    let mut problems = Vec::new();
    let json = match template.json() {
        Ok(json) => Some(json),
        Err(error) => {
            problems.push(Problem::new(Source::from(template.key), error.to_string()));
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
        .then(|| Arc::new(dependency_binding(template, &required.by)));
    Entry {
        binding,
        copies,
        problems,
        deps: Vec::new(),
        timed: false,
        unclaimed: false,
    }
}

/// The binding of a dependency no policy claims: it goes where its workloads go.
fn dependency_binding(template: &Template<'_>, by: &[BindingSnapshot]) -> ResourceBinding {
    let unclaimed = PropagationPolicy {
        api_version: String::new(),
        kind: String::new(),
        metadata: ObjectMeta::default(),
        spec: Default::default(),
    };
    // As Karmada's attached bindings: no placement, no clusters of its own, no scheduling;
    // `requiredBy` says where it goes.
    let mut binding = binding_for(template, &unclaimed, 0, Vec::new(), Vec::new(), scheduled());
    binding.metadata.labels.clear();
    binding.spec.placement = None;
    binding.spec.required_by = by.to_vec();
    binding.status = Default::default();
    binding
}
