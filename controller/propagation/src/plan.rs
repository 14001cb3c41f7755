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
//! - A policy's `suspension` stops dispatching to the clusters it names (or to all): the
//!   binding is still scheduled and records its result, with a `Dispatching=False` condition
//!   (reason `SuspendDispatching`, as Karmada's Work says it), and the template's copies on
//!   those clusters are listed in [`Plan::keep`] and [`Plan::suspended`]: what is there stays
//!   as it is, neither updated nor removed, and nothing new is written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use meshfleet_api::{
    BindingCondition, Cluster, Object, ObjectKey, ObjectReference, OverridePolicy,
    PropagationPolicy, ResourceBinding, TargetCluster, split_api_version,
};
use meshfleet_index::Index;
use meshfleet_model::problem::{Problem, Source};

use super::claim::{Holder, claim_held};
use super::failover;
use super::render::{self, RenderError, RenderInput};
use super::selector::ResourceId;
use super::templates::{Template, TemplateError, templates};
use super::workload::{WorkloadError, workload};
use crate::manifest::Desired;
use crate::manifest::{Manifest, ManifestKey, Manifests};

/// Annotation on a PropagationPolicy: `"true"` moves replicas back to a cluster that recovers
/// (Karmada leaves them where failover put them).
pub const ANNOTATION_FAILBACK: &str = "meshfleet.io/failback";

/// Bindings by the resource they bind.
pub type Bindings = BTreeMap<ObjectReference, Arc<ResourceBinding>>;

/// What propagation wants: see the module docs.
#[derive(Debug, Default)]
pub struct Plan {
    pub bindings: Bindings,
    /// Per member cluster, every manifest it should hold.
    pub manifests: BTreeMap<String, Manifests>,
    /// Per member cluster, manifests whose new rendering failed, or whose dispatching is
    /// suspended: keep the last good copy.
    pub keep: BTreeMap<String, BTreeSet<ManifestKey>>,
    /// Per member cluster, the manifests of [`Plan::keep`] kept because their policy suspends
    /// dispatching there: kept on purpose, not for a failure.
    pub suspended: BTreeMap<String, BTreeSet<ManifestKey>>,
    /// Templates no policy claims: as in Karmada, where one was propagated before (its policy
    /// deleted, or no longer selecting it), its copies are left as they are. Deleting the
    /// template itself removes them.
    pub keep_everywhere: BTreeSet<ManifestKey>,
    /// Dependencies (`propagateDeps`): never kept everywhere, they go where their workloads go.
    pub dependencies: BTreeSet<ManifestKey>,
    pub problems: Vec<Problem>,
    /// What the last [`Planner::plan`] changed: by cluster, the manifest keys whose manifest
    /// or kept status may differ. `None` when every cluster may have changed (the first plan,
    /// or the fleet or a policy changed).
    pub changed: Option<Changes>,
}

impl Plan {
    /// What the sinks should make the clusters hold.
    pub fn desired(&self) -> Desired<'_> {
        Desired {
            manifests: &self.manifests,
            keep: &self.keep,
            keep_everywhere: &self.keep_everywhere,
            dependencies: &self.dependencies,
        }
    }
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

/// One template's part of the plan, or one dependency's.
#[derive(Debug, Default)]
struct Entry {
    /// `None` for a dependency that only adds copies to its own binding's.
    binding: Option<Arc<ResourceBinding>>,
    /// Per cluster, the rendered copy, or why it could not be rendered.
    copies: Vec<(String, Result<Arc<Manifest>, CopyError>)>,
    problems: Vec<Problem>,
    /// Dependencies (`propagateDeps`) and the clusters they follow the template to.
    deps: Vec<(ObjectKey, BTreeSet<String>)>,
    /// Whether the clock can change it: a copy being evicted, or a target with a `NoExecute`
    /// taint whose toleration may run out.
    timed: bool,
    /// A template no policy claims.
    unclaimed: bool,
}

/// Why a template cannot be scheduled as written: its last binding's copies stay as they are.
#[derive(Debug, thiserror::Error)]
pub(super) enum InvalidTemplate {
    /// The template has no JSON form.
    #[error(transparent)]
    ConvertToJson(#[from] TemplateError),
    /// The template's replicas or resource requests cannot be read.
    #[error(transparent)]
    ReadWorkload(#[from] WorkloadError),
}

/// Why a template has no new copy for a cluster: the copy already there, if any, stays.
#[derive(Debug, thiserror::Error)]
pub(super) enum CopyError {
    /// The template cannot be scheduled as written, so no copy of it is rendered.
    #[error(transparent)]
    ScheduleTemplate(Arc<InvalidTemplate>),
    /// The policy waits for the override policies it depends on (`dependentOverrides`).
    #[error("not propagated until {policies} exist (a copy already there stays as it is)")]
    WaitForOverrides { policies: String },
    /// The policy suspends dispatching to the cluster.
    #[error("dispatching to cluster {cluster} is suspended (a copy already there stays as it is)")]
    SuspendDispatching { cluster: String },
    /// The template cannot be rendered for the cluster.
    #[error("not rendered for cluster {cluster} (a copy already there stays as it is): {source}")]
    Render {
        cluster: String,
        #[source]
        source: RenderError,
    },
    /// The rendered copy cannot be encoded as YAML.
    #[error(
        "not rendered for cluster {cluster} (a copy already there stays as it is): \
         cannot be encoded: {source}"
    )]
    Encode {
        cluster: String,
        #[source]
        source: serde_norway::Error,
    },
}

/// An entry as last planned, with what it was planned from.
#[derive(Debug, Clone)]
struct Planned {
    /// The template object.
    object: Object,
    /// For a dependency: what it was planned from.
    required: Option<deps::Required>,
    entry: Arc<Entry>,
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

/// Plans propagation again and again, re-planning only templates whose inputs changed, and
/// changing only their part of the plan.
///
/// # Guarantees
/// [`Planner::plan`] gives what [`plan`] would for the same index, previous bindings and clock:
/// an entry is reused only when its template, the fleet, the policies, the override policies
/// and the binding documents are all unchanged and the clock cannot change it. A reused entry's
/// binding keeps its `status.lastScheduledTime`: when it was scheduled, not when last looked at.
#[derive(Debug, Default)]
pub struct Planner {
    /// Last entries by template.
    entries: BTreeMap<ObjectKey, Planned>,
    /// Last entries by dependency (`propagateDeps`).
    deps: BTreeMap<ObjectKey, Planned>,
    /// What the entries were planned against.
    world: World,
    /// The plan, kept up to date entry by entry; its bindings are where the next plan starts.
    plan: Plan,
    /// When each unready Cluster without a `lastTransitionTime` was first seen unready: its
    /// failover clock starts there.
    unready_since: BTreeMap<String, SystemTime>,
}

/// Plans propagation for everything in `index` once. `previous` are the last results (a binding
/// not there is looked up among the index's ResourceBinding documents).
pub fn plan(index: &Index, previous: &Bindings, now: SystemTime) -> Plan {
    let mut planner = Planner::starting_from(previous.clone());
    planner.plan(index, now);
    planner.plan
}

impl Planner {
    /// A planner whose first plan starts from `bindings`.
    pub fn starting_from(bindings: Bindings) -> Self {
        Self {
            plan: Plan {
                bindings,
                ..Plan::default()
            },
            ..Self::default()
        }
    }

    /// The plan for `index` at `now`; see the module docs.
    pub fn plan(&mut self, index: &Index, now: SystemTime) -> &Plan {
        let world = World {
            clusters: index.clusters().cloned().collect(),
            policies: index.propagation_policies().cloned().collect(),
            overrides: index.override_policies().cloned().collect(),
            bindings: index.resource_bindings().cloned().collect(),
        };
        let everything = world != self.world || self.entries.is_empty();
        let previous = if everything {
            // Start over, from the last bindings.
            self.world = world;
            self.entries.clear();
            self.deps.clear();
            self.plan.manifests.clear();
            self.plan.keep.clear();
            self.plan.suspended.clear();
            self.plan.keep_everywhere.clear();
            std::mem::take(&mut self.plan.bindings)
        } else {
            Bindings::new()
        };
        let fleet = self.fleet(index, now);
        let templates = templates(index);
        let mut replaced = self.plan_templates(&fleet, &templates, &previous);
        let deps = plan_dependencies(&fleet, &templates, &self.entries, &self.deps, everything);
        for (key, planned) in &self.deps {
            if deps
                .get(key)
                .is_none_or(|p| !Arc::ptr_eq(&p.entry, &planned.entry))
            {
                replaced.push((key.clone(), Some(planned.clone()), None));
            }
        }
        for (key, planned) in &deps {
            if self
                .deps
                .get(key)
                .is_none_or(|p| !Arc::ptr_eq(&p.entry, &planned.entry))
            {
                replaced.push((key.clone(), None, Some(planned.clone())));
            }
        }
        self.plan.dependencies = deps
            .iter()
            .map(|(key, planned)| manifest_key_of(key, &planned.object))
            .collect();
        self.deps = deps;
        // Everything taken out first, then put in: a manifest moving from one entry to
        // another (a dependency's copy now made by its own binding) is not lost.
        let mut changed = Changes::new();
        for (key, old, _) in &replaced {
            if let Some(old) = old {
                take_out(&mut self.plan, key, old, &mut changed);
            }
        }
        for (key, _, new) in &replaced {
            if let Some(new) = new {
                put_in(&mut self.plan, key, new, &mut changed);
            }
        }
        self.plan.changed = (!everything).then_some(changed);
        self.plan.problems = check_clusters(index);
        self.plan.problems.extend(check_policies(&fleet.policies));
        for planned in self.entries.values().chain(self.deps.values()) {
            self.plan
                .problems
                .extend(planned.entry.problems.iter().cloned());
        }
        &self.plan
    }

    /// The plan as it stands.
    pub fn current(&self) -> &Plan {
        &self.plan
    }

    /// Plans every claimed template whose inputs changed, in place. Returns the entries
    /// replaced: key, what it held before, what it holds now.
    fn plan_templates(
        &mut self,
        fleet: &Fleet<'_>,
        templates: &[Template<'_>],
        previous: &Bindings,
    ) -> Vec<Replaced> {
        let from_index: BTreeMap<&ObjectReference, &ResourceBinding> = fleet
            .index
            .resource_bindings()
            .map(|b| (&b.spec.resource, &**b))
            .collect();
        // Templates and entries are both in key order: one pass finds what to plan again.
        debug_assert!(templates.is_sorted_by_key(|t| t.key));
        let mut stale = Vec::new();
        let mut gone = Vec::new();
        let mut entries = self.entries.iter_mut().peekable();
        for template in templates {
            while let Some((key, _)) = entries.next_if(|(key, _)| *key < template.key) {
                gone.push(key.clone());
            }
            if let Some((_, planned)) = entries.next_if(|(key, _)| *key == template.key)
                && !planned.entry.timed
                && planned.object.same(template.object)
            {
                // Keep the index's current object: the next compare is by pointer.
                planned.object = template.object.clone();
                continue;
            }
            stale.push(template);
        }
        gone.extend(entries.map(|(key, _)| key.clone()));
        let mut replaced = Vec::new();
        for template in stale {
            let reference = template.reference();
            let last = self
                .plan
                .bindings
                .get(&reference)
                .or_else(|| previous.get(&reference))
                .map(|b| &**b)
                .or_else(|| from_index.get(&reference).copied());
            // A template no policy claims gets an empty entry: it is not claimed again
            // until it or the world changes.
            let holder = from_index
                .get(&reference)
                .and_then(|b| Holder::of(&b.metadata));
            let history = History {
                last,
                document: from_index.get(&reference).copied(),
            };
            let entry = plan_template(fleet, template, history, holder).unwrap_or_else(|| Entry {
                unclaimed: true,
                problems: without_effect(template).into_iter().collect(),
                ..Entry::default()
            });
            let new = Planned {
                object: template.object.clone(),
                required: None,
                entry: Arc::new(entry),
            };
            let old = self.entries.insert(template.key.clone(), new.clone());
            replaced.push((template.key.clone(), old, Some(new)));
        }
        for key in gone {
            let old = self.entries.remove(&key);
            replaced.push((key, old, None));
        }
        replaced
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

/// By cluster, the manifest keys a plan changed.
pub type Changes = BTreeMap<String, BTreeSet<ManifestKey>>;

/// An entry replaced by a plan: key, what it held before, what it holds now.
type Replaced = (ObjectKey, Option<Planned>, Option<Planned>);

/// Takes an entry's copies and binding out of the plan.
fn take_out(plan: &mut Plan, key: &ObjectKey, planned: &Planned, changed: &mut Changes) {
    let manifest_key = manifest_key_of(key, &planned.object);
    if planned.entry.unclaimed {
        plan.keep_everywhere.remove(&manifest_key);
    }
    for (cluster, _) in &planned.entry.copies {
        if let Some(m) = plan.manifests.get_mut(cluster) {
            m.remove(&manifest_key);
        }
        if let Some(k) = plan.keep.get_mut(cluster) {
            k.remove(&manifest_key);
        }
        if let Some(k) = plan.suspended.get_mut(cluster) {
            k.remove(&manifest_key);
        }
        changed
            .entry(cluster.clone())
            .or_default()
            .insert(manifest_key.clone());
    }
    if let Some(binding) = &planned.entry.binding {
        plan.bindings.remove(&binding.spec.resource);
    }
}

/// Puts an entry's copies and binding into the plan.
fn put_in(plan: &mut Plan, key: &ObjectKey, planned: &Planned, changed: &mut Changes) {
    let manifest_key = manifest_key_of(key, &planned.object);
    if planned.entry.unclaimed {
        plan.keep_everywhere.insert(manifest_key.clone());
    }
    for (cluster, copy) in &planned.entry.copies {
        match copy {
            Ok(manifest) => {
                plan.manifests
                    .entry(cluster.clone())
                    .or_default()
                    .insert(manifest_key.clone(), manifest.clone());
            }
            Err(error) => {
                plan.keep
                    .entry(cluster.clone())
                    .or_default()
                    .insert(manifest_key.clone());
                if matches!(error, CopyError::SuspendDispatching { .. }) {
                    plan.suspended
                        .entry(cluster.clone())
                        .or_default()
                        .insert(manifest_key.clone());
                }
            }
        }
        changed
            .entry(cluster.clone())
            .or_default()
            .insert(manifest_key.clone());
    }
    if let Some(binding) = &planned.entry.binding {
        plan.bindings
            .insert(binding.spec.resource.clone(), binding.clone());
    }
}

/// The manifest key of a template, from its index key and object.
fn manifest_key_of(key: &ObjectKey, object: &Object) -> ManifestKey {
    ManifestKey {
        group: split_api_version(object.api_version()).0.to_owned(),
        kind: object.kind().to_owned(),
        namespace: key.namespace.to_string(),
        name: key.name.to_string(),
    }
}

/// A Divided Job's `spec.completions` split over its clusters by their replicas, as Karmada
/// does; empty when the template is not one.
fn job_completions<'a>(
    kind: &str,
    json: &serde_json::Value,
    divided: bool,
    targets: &'a [TargetCluster],
) -> BTreeMap<&'a str, i64> {
    let completions = json
        .pointer("/spec/completions")
        .and_then(serde_json::Value::as_i64);
    let (true, "Job", Some(completions)) = (divided, kind, completions) else {
        return BTreeMap::new();
    };
    let shares = super::scheduler::apportion(
        completions,
        targets
            .iter()
            .map(|t| (t.name.as_str(), i64::from(t.replicas))),
    );
    targets
        .iter()
        .map(|t| t.name.as_str())
        .zip(shares)
        .collect()
}

/// The entry of a template that cannot be scheduled as written (YAML that JSON cannot hold,
/// replicas that are not a count): `Scheduled=False`, and the copies its last binding placed
/// are kept as they are, as an API server would have refused the edit.
fn invalid(
    template: &Template<'_>,
    policy: &PropagationPolicy,
    last: Option<&ResourceBinding>,
    error: InvalidTemplate,
    mut problems: Vec<Problem>,
) -> Entry {
    let message = error.to_string();
    let error = Arc::new(error);
    problems.push(Problem::new(
        Source::from(template.key),
        format!("{message}; not scheduled, its copies stay as they are"),
    ));
    let condition = BindingCondition {
        type_: "Scheduled".to_owned(),
        status: "False".to_owned(),
        reason: "InvalidTemplate".to_owned(),
        message,
    };
    let targets: Vec<TargetCluster> = last.map(|b| b.spec.clusters.clone()).unwrap_or_default();
    let tasks = last
        .map(|b| b.spec.graceful_eviction_tasks.clone())
        .unwrap_or_default();
    let copies = targets
        .iter()
        .map(|t| &t.name)
        .chain(tasks.iter().map(|t| &t.from_cluster))
        .map(|cluster| {
            let error = CopyError::ScheduleTemplate(error.clone());
            (cluster.clone(), Err(error))
        })
        .collect();
    let replicas = last.map_or(0, |b| b.spec.replicas);
    let mut binding = binding_for(template, policy, replicas, targets, tasks, condition);
    binding.status.scheduler_observed_affinity_name =
        last.and_then(|b| b.status.scheduler_observed_affinity_name.clone());
    binding.status.last_scheduled_time = last.and_then(|b| b.status.last_scheduled_time.clone());
    Entry {
        binding: Some(Arc::new(binding)),
        copies,
        problems,
        deps: Vec::new(),
        timed: false,
        unclaimed: false,
    }
}

/// Plans one template: claim, schedule, render. `None` when no policy claims it. `holder` is
/// the policy the config's ResourceBinding document says claimed it.
fn plan_template(
    fleet: &Fleet<'_>,
    template: &Template<'_>,
    history: History<'_>,
    holder: Option<Holder<'_>>,
) -> Option<Entry> {
    let id = template.id();
    let claimed = claim_held(fleet.policies.iter().copied(), &id, holder)?;
    let policy = claimed.policy;
    let mut problems = Vec::new();
    if !claimed.tied.is_empty() {
        let others: Vec<String> = claimed.tied.iter().map(|p| policy_name(p)).collect();
        problems.push(Problem::new(
            Source::from(template.key),
            format!(
                "claimed by {} and, at equal priority, by {}; {} wins by name order",
                policy_name(policy),
                others.join(", "),
                policy_name(policy)
            ),
        ));
    }
    let missing = missing_overrides(&fleet.overrides, policy);
    if !missing.is_empty() {
        return Some(waiting(template, policy, history.last, &missing, problems));
    }
    let workload = template
        .json()
        .map_err(InvalidTemplate::from)
        .and_then(|json| {
            let w = workload(template.kind, &json)?;
            Ok((json, w))
        });
    let (json, replicas, requirements) = match workload {
        Ok((json, w)) => (json, w.replicas, w.requirements),
        Err(error) => return Some(invalid(template, policy, history.last, error, problems)),
    };
    let mut binding = schedule(
        fleet,
        template,
        policy,
        history,
        replicas,
        &requirements,
        &mut problems,
    );
    let divided = is_divided(policy) && replicas > 0;
    let completions = job_completions(template.kind, &json, divided, &binding.spec.clusters);
    let mut copies: Vec<(String, Result<Arc<Manifest>, CopyError>)> = binding
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
                completions: completions.get(cluster).copied(),
                overrides: &fleet.overrides,
            };
            let rendered = render_copy(template, cluster, &input, &mut problems);
            Some((cluster.to_owned(), rendered))
        })
        .collect();
    let placed: BTreeSet<String> = copies.iter().map(|(c, _)| c.clone()).collect();
    suspend(fleet, policy, &mut copies, &mut binding);
    let deps = dependencies_of(template, policy, &json, &placed);
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
        binding: Some(Arc::new(binding)),
        copies,
        problems,
        deps,
        timed,
        unclaimed: false,
    })
}

/// A problem for a template no policy claims that a user may think meshfleet serves itself:
/// Istio's routing kinds. Any other unclaimed template is left alone, as in Karmada.
fn without_effect(template: &Template<'_>) -> Option<Problem> {
    let (group, _) = split_api_version(template.api_version);
    let ("networking.istio.io", "VirtualService" | "ServiceEntry") = (group, template.kind) else {
        return None;
    };
    Some(Problem::new(
        Source::from(template.key),
        format!(
            "no effect: meshfleet's xDS and DNS do not read a {} (of Istio's kinds they read only DestinationRules), and no policy propagates it to member clusters",
            template.kind
        ),
    ))
}

/// With `propagateDeps`, what `json` (the template) references, each to go to `placed`.
fn dependencies_of(
    template: &Template<'_>,
    policy: &PropagationPolicy,
    json: &serde_json::Value,
    placed: &BTreeSet<String>,
) -> Vec<(ObjectKey, BTreeSet<String>)> {
    if !policy.spec.propagate_deps {
        return Vec::new();
    }
    render::dependencies(template.kind, json)
        .into_iter()
        .map(|dep| {
            let key = ObjectKey {
                kind: Arc::from(dep.kind),
                namespace: Arc::from(template.namespace),
                name: Arc::from(dep.name),
                cluster: Arc::from(""),
            };
            (key, placed.clone())
        })
        .collect()
}

/// Renders one copy; a failure is reported and becomes the error of the copy.
pub(super) fn render_copy(
    template: &Template<'_>,
    cluster: &str,
    input: &RenderInput<'_>,
    problems: &mut Vec<Problem>,
) -> Result<Arc<Manifest>, CopyError> {
    let encoded = render::render(input)
        .map_err(|source| CopyError::Render {
            cluster: cluster.to_owned(),
            source,
        })
        .and_then(|mut manifest| {
            set_namespace(&mut manifest, template.namespace);
            Manifest::encode(&manifest).map_err(|source| CopyError::Encode {
                cluster: cluster.to_owned(),
                source,
            })
        });
    encoded.map(Arc::new).inspect_err(|error| {
        problems.push(Problem::new(Source::from(template.key), error.to_string()));
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
    pub fn id(&self) -> ResourceId<'_> {
        ResourceId {
            api_version: self.api_version,
            kind: self.kind,
            namespace: self.namespace,
            meta: self.meta,
        }
    }

    pub fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: self.api_version.to_owned(),
            kind: self.kind.to_owned(),
            namespace: (!self.namespace.is_empty()).then(|| self.namespace.to_owned()),
            name: self.meta.name.clone(),
        }
    }

    pub fn manifest_key(&self) -> ManifestKey {
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
mod dependent;
mod deps;
mod suspension;

use binding::{History, binding_for, is_divided, schedule};
use checks::{check_clusters, check_policies, policy_name};
use dependent::{missing_overrides, waiting};
use deps::plan_dependencies;
use suspension::suspend;

#[cfg(test)]
mod tests;
