//! The propagation plan: from the index to one binding per claimed template and, per member
//! cluster, the manifests it should hold. Pure: the index, the previous bindings and the clock
//! in; bindings, manifests and problems out.
//!
//! ```text
//!  templates ──claim──> policy ──failover──> previous minus evicted ──schedule──> targets
//!                                                                                  │
//!  manifests[cluster][key] <──render (overrides, locality, replicas)───────────────┘
//!                          <──dependencies (propagateDeps) follow their workload
//! ```
//!
//! # Guarantees
//! - One bad template, policy or override costs only itself: it is reported, and every other
//!   binding is still scheduled and rendered.
//! - A binding that cannot be scheduled keeps its previous clusters (as Karmada keeps a
//!   binding's last result) and says why in its `Scheduled` condition.
//! - A manifest whose rendering fails is listed in [`Plan::keep`]: sinks leave the last good
//!   copy in place instead of deleting it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use crate::api::{
    BindingCondition, Cluster, ObjectKey, ObjectReference, OverridePolicy, PropagationPolicy,
    ResourceBinding, split_api_version,
};
use crate::index::Index;
use crate::problem::Problem;

use super::claim::claim;
use super::failover;
use super::render::{self, RenderInput};
use super::selector::ResourceId;
use super::sink::{ManifestKey, Manifests};
use super::templates::{Template, templates};
use super::workload::{Requirements, workload};

/// Annotation on a PropagationPolicy: `"true"` moves replicas back to a cluster that recovers
/// (Karmada leaves them where failover put them).
pub const ANNOTATION_FAILBACK: &str = "meshfleet.io/failback";

/// Bindings by the resource they bind.
pub type Bindings = BTreeMap<ObjectReference, ResourceBinding>;

/// What propagation wants: see the module docs.
#[derive(Debug, Default)]
pub struct Plan {
    pub bindings: Bindings,
    /// Per member cluster, every manifest it should hold.
    pub manifests: BTreeMap<String, Manifests>,
    /// Per member cluster, manifests whose new rendering failed: keep the last good copy.
    pub keep: BTreeMap<String, BTreeSet<ManifestKey>>,
    pub problems: Vec<Problem>,
}

/// What every binding is planned against.
struct Fleet<'a> {
    /// Every member cluster, by name, with its health taints.
    clusters: Vec<Arc<Cluster>>,
    by_name: BTreeMap<&'a str, usize>,
    policies: Vec<&'a Arc<PropagationPolicy>>,
    overrides: Vec<Arc<OverridePolicy>>,
    index: &'a Index,
    now: SystemTime,
}

/// One template's part of the plan.
#[derive(Debug)]
struct Entry {
    binding: ResourceBinding,
    /// Per cluster, the rendered copy, or why it could not be rendered.
    copies: Vec<(String, Result<Arc<serde_json::Value>, String>)>,
    problems: Vec<Problem>,
    /// Dependencies (`propagateDeps`) and the clusters they follow the template to.
    deps: Vec<(ObjectKey, BTreeSet<String>)>,
    /// Whether the clock can change it: a copy being evicted, or a target with a `NoExecute`
    /// taint whose toleration may run out.
    timed: bool,
}

/// What every entry depends on besides its own template: when any of it changes, every
/// template is planned again.
#[derive(Debug, Default, PartialEq)]
struct World {
    clusters: Vec<Arc<Cluster>>,
    policies: Vec<Arc<PropagationPolicy>>,
    overrides: Vec<Arc<OverridePolicy>>,
    bindings: Vec<Arc<ResourceBinding>>,
}

/// Plans propagation again and again, re-planning only templates whose inputs changed.
///
/// # Guarantees
/// [`Planner::plan`] returns what [`plan`] would for the same index, previous bindings and
/// clock: an entry is reused only when its template, the fleet, the policies, the override
/// policies and the binding documents are all unchanged and the clock cannot change it.
#[derive(Debug, Default)]
pub struct Planner {
    /// Last entries by template, with the template object they were planned from.
    entries: BTreeMap<ObjectKey, (crate::api::Object, Arc<Entry>)>,
    /// What the entries were planned against.
    world: World,
    /// The last bindings: where the next plan starts from.
    bindings: Bindings,
    /// When each unready Cluster without a `lastTransitionTime` was first seen unready: its
    /// failover clock starts there.
    unready_since: BTreeMap<String, SystemTime>,
}

/// Plans propagation for everything in `index` once. `previous` are the last results (a binding
/// not there is looked up among the index's ResourceBinding documents).
pub fn plan(index: &Index, previous: &Bindings, now: SystemTime) -> Plan {
    Planner::starting_from(previous.clone()).plan(index, now)
}

impl Planner {
    /// A planner whose first plan starts from `bindings`.
    pub fn starting_from(bindings: Bindings) -> Self {
        Self {
            bindings,
            ..Self::default()
        }
    }

    /// The plan for `index` at `now`; see the module docs.
    pub fn plan(&mut self, index: &Index, now: SystemTime) -> Plan {
        let world = World {
            clusters: index.clusters().cloned().collect(),
            policies: index.propagation_policies().cloned().collect(),
            overrides: index.override_policies().cloned().collect(),
            bindings: index.resource_bindings().cloned().collect(),
        };
        if world != self.world {
            self.entries.clear();
            self.world = world;
        }
        let fleet = self.fleet(index, now);
        let from_index: Bindings = index
            .resource_bindings()
            .map(|b| (b.spec.resource.clone(), (**b).clone()))
            .collect();
        let templates = templates(index);
        let mut entries = BTreeMap::new();
        for template in &templates {
            let object = index
                .get(&template.key)
                .expect("templates come from the index");
            let reused = self
                .entries
                .get(&template.key)
                .filter(|(was, entry)| !entry.timed && was == object)
                .map(|(_, entry)| entry.clone());
            let entry = match reused {
                Some(entry) => entry,
                None => {
                    let reference = template.reference();
                    let last = self
                        .bindings
                        .get(&reference)
                        .or_else(|| from_index.get(&reference));
                    match plan_template(&fleet, template, last) {
                        Some(entry) => Arc::new(entry),
                        None => continue,
                    }
                }
            };
            entries.insert(template.key.clone(), (object.clone(), entry));
        }
        let plan = assemble(&fleet, &templates, &entries);
        self.entries = entries;
        self.bindings = plan.bindings.clone();
        plan
    }

    /// The fleet at `now`, with health taints; remembers when clusters turned unready.
    fn fleet<'a>(&mut self, index: &'a Index, now: SystemTime) -> Fleet<'a> {
        let mut clusters = Vec::new();
        let mut unready = BTreeMap::new();
        for cluster in index.clusters() {
            let since = *self.unready_since.get(cluster.name()).unwrap_or(&now);
            let tainted = failover::with_health_taints(cluster, since);
            if !Arc::ptr_eq(&tainted, cluster) {
                unready.insert(cluster.name().to_owned(), since);
            }
            clusters.push(tainted);
        }
        self.unready_since = unready;
        let by_name = index
            .clusters()
            .enumerate()
            .map(|(i, c)| (c.name(), i))
            .collect();
        Fleet {
            clusters,
            by_name,
            policies: index.propagation_policies().collect(),
            overrides: index.override_policies().cloned().collect(),
            index,
            now,
        }
    }
}

/// Puts the entries together: bindings, manifests per cluster, dependencies, problems.
fn assemble(
    fleet: &Fleet<'_>,
    templates: &[Template<'_>],
    entries: &BTreeMap<ObjectKey, (crate::api::Object, Arc<Entry>)>,
) -> Plan {
    let mut plan = Plan::default();
    plan.problems.extend(check_clusters(fleet.index));
    plan.problems.extend(check_policies(&fleet.policies));
    let mut required: BTreeMap<ObjectKey, BTreeSet<String>> = BTreeMap::new();
    let by_key: BTreeMap<&ObjectKey, &Template<'_>> =
        templates.iter().map(|t| (&t.key, t)).collect();
    for (key, (_, entry)) in entries {
        let template = by_key[key];
        let manifest_key = template.manifest_key();
        for (cluster, copy) in &entry.copies {
            match copy {
                Ok(manifest) => {
                    plan.manifests
                        .entry(cluster.clone())
                        .or_default()
                        .insert(manifest_key.clone(), manifest.clone());
                }
                Err(_) => {
                    plan.keep
                        .entry(cluster.clone())
                        .or_default()
                        .insert(manifest_key.clone());
                }
            }
        }
        plan.problems.extend(entry.problems.iter().cloned());
        plan.bindings
            .insert(template.reference(), entry.binding.clone());
        for (dep, clusters) in &entry.deps {
            required
                .entry(dep.clone())
                .or_default()
                .extend(clusters.iter().cloned());
        }
    }
    attach_dependencies(fleet, templates, required, &mut plan);
    plan
}

/// Plans one template: claim, schedule, render. `None` when no policy claims it.
fn plan_template(
    fleet: &Fleet<'_>,
    template: &Template<'_>,
    last: Option<&ResourceBinding>,
) -> Option<Entry> {
    let id = template.id();
    let claimed = claim(fleet.policies.iter().copied(), &id)?;
    let policy = claimed.policy;
    let mut problems = Vec::new();
    if !claimed.tied.is_empty() {
        let others: Vec<String> = claimed.tied.iter().map(|p| policy_name(p)).collect();
        problems.push(Problem::new(
            template.to_string(),
            format!(
                "claimed by {} and, at equal priority, by {}; {} wins by name order",
                policy_name(policy),
                others.join(", "),
                policy_name(policy)
            ),
        ));
    }
    let json = match template.json() {
        Ok(json) => json,
        Err(message) => {
            problems.push(Problem::new(template.to_string(), message.clone()));
            let condition = BindingCondition {
                type_: "Scheduled".to_owned(),
                status: "False".to_owned(),
                reason: "InvalidTemplate".to_owned(),
                message,
            };
            let binding = binding_for(template, policy, 0, Vec::new(), Vec::new(), condition);
            return Some(Entry {
                binding,
                copies: Vec::new(),
                problems,
                deps: Vec::new(),
                timed: false,
            });
        }
    };
    let (replicas, requirements) = match workload(template.kind, &json) {
        Ok(w) => (w.replicas, w.requirements),
        Err(error) => {
            problems.push(Problem::new(template.to_string(), error.to_string()));
            (0, Requirements::default())
        }
    };
    let binding = schedule(
        fleet,
        template,
        policy,
        last,
        replicas,
        &requirements,
        &mut problems,
    );
    let divided = is_divided(policy) && replicas > 0;
    let copies: Vec<(String, Result<Arc<serde_json::Value>, String>)> = binding
        .spec
        .clusters
        .iter()
        .map(|t| (t.name.as_str(), t.replicas))
        .chain(
            binding
                .spec
                .graceful_eviction_tasks
                .iter()
                .map(|t| (t.from_cluster.as_str(), t.replicas.unwrap_or(0))),
        )
        .filter_map(|(cluster, share)| {
            let i = *fleet.by_name.get(cluster)?;
            let input = RenderInput {
                template: &json,
                resource: id,
                cluster: &fleet.clusters[i],
                replicas: divided.then_some(share),
                overrides: &fleet.overrides,
            };
            let rendered = render_copy(template, cluster, &input, &mut problems);
            Some((cluster.to_owned(), rendered))
        })
        .collect();
    let placed: BTreeSet<String> = copies.iter().map(|(c, _)| c.clone()).collect();
    let deps = if policy.spec.propagate_deps {
        render::dependencies(template.kind, &json)
            .into_iter()
            .map(|dep| {
                let key = ObjectKey {
                    kind: dep.kind.to_owned(),
                    namespace: template.namespace.to_owned(),
                    name: dep.name,
                    cluster: String::new(),
                };
                (key, placed.clone())
            })
            .collect()
    } else {
        Vec::new()
    };
    let timed = !binding.spec.graceful_eviction_tasks.is_empty()
        || binding.spec.clusters.iter().any(|t| {
            fleet.by_name.get(t.name.as_str()).is_some_and(|&i| {
                fleet.clusters[i]
                    .spec
                    .taints
                    .iter()
                    .any(|t| t.effect == "NoExecute")
            })
        });
    Some(Entry {
        binding,
        copies,
        problems,
        deps,
        timed,
    })
}

/// Renders one copy; a failure is reported and becomes the message of the copy.
fn render_copy(
    template: &Template<'_>,
    cluster: &str,
    input: &RenderInput<'_>,
    problems: &mut Vec<Problem>,
) -> Result<Arc<serde_json::Value>, String> {
    render::render(input)
        .map(|mut manifest| {
            set_namespace(&mut manifest, template.namespace);
            Arc::new(manifest)
        })
        .map_err(|error| {
            let message =
                format!("not rendered for cluster {cluster} (its last copy stays): {error}");
            problems.push(Problem::new(template.to_string(), message.clone()));
            message
        })
}

/// Writes the namespace into a namespaced copy that names none, so that it lands where the
/// template is, whatever namespace the applier defaults to.
pub(super) fn set_namespace(manifest: &mut serde_json::Value, namespace: &str) {
    if namespace.is_empty() {
        return;
    }
    if let Some(meta) = manifest.get_mut("metadata").and_then(|m| m.as_object_mut())
        && meta
            .get("namespace")
            .and_then(|n| n.as_str())
            .is_none_or(str::is_empty)
    {
        meta.insert("namespace".to_owned(), namespace.into());
    }
}

impl Template<'_> {
    pub(super) fn id(&self) -> ResourceId<'_> {
        ResourceId {
            api_version: self.api_version,
            kind: self.kind,
            namespace: self.namespace,
            meta: self.meta,
        }
    }

    pub(super) fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: self.api_version.to_owned(),
            kind: self.kind.to_owned(),
            namespace: (!self.namespace.is_empty()).then(|| self.namespace.to_owned()),
            name: self.meta.name.clone(),
        }
    }

    pub(super) fn manifest_key(&self) -> ManifestKey {
        ManifestKey {
            group: split_api_version(self.api_version).0.to_owned(),
            kind: self.kind.to_owned(),
            namespace: self.namespace.to_owned(),
            name: self.meta.name.clone(),
        }
    }
}

mod binding;
mod checks;
mod deps;

use binding::{binding_for, is_divided, schedule};
use checks::{check_clusters, check_policies, policy_name};
use deps::attach_dependencies;

#[cfg(test)]
mod tests;
