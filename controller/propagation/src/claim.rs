//! Which PropagationPolicy claims a resource template, as Karmada decides it.
//!
//! A resource is claimed by at most one policy. Candidates are the PropagationPolicies of the
//! resource's namespace and every ClusterPropagationPolicy; a cluster-scoped resource can only
//! be claimed by a ClusterPropagationPolicy. The winner is, in this order:
//!
//! 1. a namespaced policy before a cluster-scoped one;
//! 2. the higher `spec.priority` (absent = 0);
//! 3. the more precise selector: a name, then a label selector, then apiVersion + kind alone;
//! 4. the first by name.
//!
//! A policy with no `resourceSelectors` selects nothing. Two candidates equal on 1–3 are a
//! conflict: the first by name still claims the resource, and the conflict is reported.
//!
//! A claim already made stays, as in Karmada, when the config holds it: a `ResourceBinding`
//! document names the policy that claimed its resource ([`Holder`]). While that policy still
//! exists and still selects the resource, it keeps it, unless a candidate with
//! `preemption: Always` may take it over: a PropagationPolicy of higher priority from a
//! PropagationPolicy; any PropagationPolicy, or a ClusterPropagationPolicy of higher priority,
//! from a ClusterPropagationPolicy. Without such a document the claim is decided afresh from
//! the policies there are, so every instance, whenever it started, decides alike.

use std::sync::Arc;

use meshfleet_api::{ObjectMeta, PropagationPolicy};

use super::selector::{Precision, ResourceId, best_match};

/// The policy claiming a resource, and the candidates that tied with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim<'a> {
    pub policy: &'a Arc<PropagationPolicy>,
    /// Candidates equal to the winner on scope, priority and precision, lost on name order.
    pub tied: Vec<&'a Arc<PropagationPolicy>>,
}

/// The policy a ResourceBinding says claimed its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder<'a> {
    /// `None` for a ClusterPropagationPolicy.
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl<'a> Holder<'a> {
    /// From Karmada's labels (or, as newer Karmada writes them, annotations) on a binding:
    /// `propagationpolicy.karmada.io/{namespace,name}` or `clusterpropagationpolicy.karmada.io/name`.
    pub fn of(meta: &'a ObjectMeta) -> Option<Self> {
        let get = |key: &str| {
            meta.labels
                .get(key)
                .or_else(|| meta.annotations.get(key))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        if let (Some(namespace), Some(name)) = (
            get("propagationpolicy.karmada.io/namespace"),
            get("propagationpolicy.karmada.io/name"),
        ) {
            return Some(Self {
                namespace: Some(namespace),
                name,
            });
        }
        get("clusterpropagationpolicy.karmada.io/name").map(|name| Self {
            namespace: None,
            name,
        })
    }

    fn is(&self, policy: &PropagationPolicy) -> bool {
        let namespace =
            (!policy.is_cluster_scoped()).then(|| policy.metadata.namespace_or_default());
        policy.metadata.name == self.name && namespace == self.namespace
    }
}

/// What decides between candidates: smaller wins.
type Rank<'a> = (bool, i64, std::cmp::Reverse<Precision>, &'a str);

/// The policy claiming `resource` among `policies` (any order), if any.
pub fn claim<'a>(
    policies: impl IntoIterator<Item = &'a Arc<PropagationPolicy>>,
    resource: &ResourceId<'_>,
) -> Option<Claim<'a>> {
    let mut candidates: Vec<(Rank<'a>, &'a Arc<PropagationPolicy>)> = policies
        .into_iter()
        .filter_map(|policy| Some((rank(policy, resource)?, policy)))
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let mut candidates = candidates.into_iter();
    let (best, policy) = candidates.next()?;
    let tied = candidates
        .take_while(|(rank, _)| rank.0 == best.0 && rank.1 == best.1 && rank.2 == best.2)
        .map(|(_, p)| p)
        .collect();
    Some(Claim { policy, tied })
}

/// The policy claiming `resource`, when `holder` claimed it before: see the module docs.
pub fn claim_held<'a>(
    policies: impl IntoIterator<Item = &'a Arc<PropagationPolicy>>,
    resource: &ResourceId<'_>,
    holder: Option<Holder<'_>>,
) -> Option<Claim<'a>> {
    let candidates: Vec<&'a Arc<PropagationPolicy>> = policies
        .into_iter()
        .filter(|p| rank(p, resource).is_some())
        .collect();
    let held = holder.and_then(|h| candidates.iter().copied().find(|p| h.is(p)));
    let Some(held) = held else {
        return claim(candidates, resource);
    };
    let priority = |p: &PropagationPolicy| p.spec.priority.unwrap_or(0);
    let preempts = |p: &PropagationPolicy| {
        p.spec.preemption.as_deref() == Some("Always")
            && match (held.is_cluster_scoped(), p.is_cluster_scoped()) {
                (false, false) | (true, true) => priority(p) > priority(held),
                (true, false) => true,
                (false, true) => false,
            }
    };
    claim(candidates.iter().copied().filter(|p| preempts(p)), resource).or(Some(Claim {
        policy: held,
        tied: Vec::new(),
    }))
}

/// How `policy` ranks for `resource`; `None` when it cannot claim it.
fn rank<'a>(policy: &'a PropagationPolicy, resource: &ResourceId<'_>) -> Option<Rank<'a>> {
    let cluster_scoped = policy.is_cluster_scoped();
    if !cluster_scoped {
        // A namespaced policy claims only resources of its own namespace.
        let namespace = policy.metadata.namespace_or_default();
        if resource.namespace.is_empty() || resource.namespace != namespace {
            return None;
        }
    }
    let precision = best_match(&policy.spec.resource_selectors, resource)?;
    let priority = i64::from(policy.spec.priority.unwrap_or(0));
    Some((
        cluster_scoped,
        -priority,
        std::cmp::Reverse(precision),
        policy.metadata.name.as_str(),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use meshfleet_api::{LabelSelector, ObjectMeta, PropagationSpec, ResourceSelector};

    fn policy(
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        priority: Option<i32>,
    ) -> Arc<PropagationPolicy> {
        Arc::new(PropagationPolicy {
            api_version: "policy.karmada.io/v1alpha1".to_owned(),
            kind: kind.to_owned(),
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: namespace.map(str::to_owned),
                ..ObjectMeta::default()
            },
            spec: PropagationSpec {
                priority,
                ..PropagationSpec::default()
            },
        })
    }

    fn pp(
        name: &str,
        priority: Option<i32>,
        selectors: Vec<ResourceSelector>,
    ) -> Arc<PropagationPolicy> {
        let mut p = policy("PropagationPolicy", Some("web"), name, priority);
        Arc::make_mut(&mut p).spec.resource_selectors = selectors;
        p
    }

    fn cpp(
        name: &str,
        priority: Option<i32>,
        selectors: Vec<ResourceSelector>,
    ) -> Arc<PropagationPolicy> {
        let mut p = policy("ClusterPropagationPolicy", None, name, priority);
        Arc::make_mut(&mut p).spec.resource_selectors = selectors;
        p
    }

    fn by_kind() -> ResourceSelector {
        ResourceSelector {
            api_version: "apps/v1".to_owned(),
            kind: "Deployment".to_owned(),
            ..ResourceSelector::default()
        }
    }

    fn by_name(name: &str) -> ResourceSelector {
        ResourceSelector {
            name: Some(name.to_owned()),
            ..by_kind()
        }
    }

    fn by_label(key: &str, value: &str) -> ResourceSelector {
        ResourceSelector {
            label_selector: Some(LabelSelector {
                match_labels: BTreeMap::from([(key.to_owned(), value.to_owned())]),
                ..LabelSelector::default()
            }),
            ..by_kind()
        }
    }

    fn nginx() -> ObjectMeta {
        ObjectMeta {
            name: "nginx".to_owned(),
            namespace: Some("web".to_owned()),
            labels: BTreeMap::from([("app".to_owned(), "nginx".to_owned())]),
            ..ObjectMeta::default()
        }
    }

    fn nginx_id(meta: &ObjectMeta) -> ResourceId<'_> {
        ResourceId {
            api_version: "apps/v1",
            kind: "Deployment",
            namespace: "web",
            meta,
        }
    }

    fn winner(policies: &[Arc<PropagationPolicy>]) -> Option<(String, Vec<String>)> {
        let meta = nginx();
        let id = nginx_id(&meta);
        claim(policies, &id).map(|c| {
            (
                format!("{} {}", c.policy.kind, c.policy.metadata.name),
                c.tied.iter().map(|p| p.metadata.name.clone()).collect(),
            )
        })
    }

    fn won(kind: &str, name: &str) -> Option<(String, Vec<String>)> {
        Some((format!("{kind} {name}"), vec![]))
    }

    #[test]
    fn namespaced_before_cluster_scoped_whatever_the_priority() {
        let policies = [
            cpp("all", Some(100), vec![by_name("nginx")]),
            pp("web", None, vec![by_kind()]),
        ];
        assert_eq!(winner(&policies), won("PropagationPolicy", "web"));
    }

    #[test]
    fn higher_priority_before_precision() {
        let policies = [
            pp("exact", Some(1), vec![by_name("nginx")]),
            pp("broad", Some(5), vec![by_kind()]),
        ];
        assert_eq!(winner(&policies), won("PropagationPolicy", "broad"));
    }

    #[test]
    fn name_beats_label_beats_kind() {
        let policies = [
            pp("a-kind", None, vec![by_kind()]),
            pp("b-label", None, vec![by_label("app", "nginx")]),
            pp("c-name", None, vec![by_name("nginx")]),
        ];
        assert_eq!(winner(&policies), won("PropagationPolicy", "c-name"));
        assert_eq!(winner(&policies[..2]), won("PropagationPolicy", "b-label"));
    }

    #[test]
    fn the_best_selector_of_a_policy_counts() {
        let policies = [
            pp("a", None, vec![by_label("app", "nginx")]),
            pp("b", None, vec![by_kind(), by_name("nginx")]),
        ];
        assert_eq!(winner(&policies), won("PropagationPolicy", "b"));
    }

    #[test]
    fn equal_candidates_go_by_name_and_are_reported() {
        let policies = [
            pp("zeta", Some(2), vec![by_name("nginx")]),
            pp("alpha", Some(2), vec![by_name("nginx")]),
            pp("low", Some(1), vec![by_name("nginx")]),
        ];
        assert_eq!(
            winner(&policies),
            Some((
                "PropagationPolicy alpha".to_owned(),
                vec!["zeta".to_owned()]
            ))
        );
    }

    #[test]
    fn empty_selectors_select_nothing_and_other_namespaces_do_not_claim() {
        let mut other = pp("other-ns", Some(9), vec![by_kind()]);
        Arc::make_mut(&mut other).metadata.namespace = Some("db".to_owned());
        let policies = [
            pp("empty", Some(9), vec![]),
            other,
            cpp("fallback", None, vec![by_label("app", "nginx")]),
        ];
        assert_eq!(
            winner(&policies),
            won("ClusterPropagationPolicy", "fallback")
        );
        assert_eq!(winner(&policies[..2]), None);
    }

    #[test]
    fn cluster_scoped_resources_only_by_cluster_policies() {
        let meta = ObjectMeta {
            name: "team-a".to_owned(),
            ..ObjectMeta::default()
        };
        let id = ResourceId {
            api_version: "v1",
            kind: "Namespace",
            namespace: "",
            meta: &meta,
        };
        let ns = ResourceSelector {
            api_version: "v1".to_owned(),
            kind: "Namespace".to_owned(),
            ..ResourceSelector::default()
        };
        let policies = [
            pp("web", None, vec![ns.clone()]),
            cpp("namespaces", None, vec![ns]),
        ];
        let got = claim(&policies, &id).map(|c| c.policy.metadata.name.clone());
        assert_eq!(got.as_deref(), Some("namespaces"));
    }

    fn always(mut p: Arc<PropagationPolicy>) -> Arc<PropagationPolicy> {
        Arc::make_mut(&mut p).spec.preemption = Some("Always".to_owned());
        p
    }

    fn held_by(policies: &[Arc<PropagationPolicy>], holder: Holder<'_>) -> Option<String> {
        let meta = nginx();
        let id = nginx_id(&meta);
        claim_held(policies, &id, Some(holder)).map(|c| c.policy.metadata.name.clone())
    }

    const PP_OLD: Holder<'static> = Holder {
        namespace: Some("web"),
        name: "old",
    };
    const CPP_OLD: Holder<'static> = Holder {
        namespace: None,
        name: "old",
    };

    #[test]
    fn a_claim_stays_unless_preempted() {
        // A newcomer of higher priority does not take the resource without preemption.
        let newcomer = pp("new", Some(10), vec![by_name("nginx")]);
        let policies = [pp("old", Some(1), vec![by_kind()]), newcomer.clone()];
        assert_eq!(held_by(&policies, PP_OLD).as_deref(), Some("old"));
        // With `preemption: Always` it does; at equal priority it does not.
        let policies = [pp("old", Some(1), vec![by_kind()]), always(newcomer)];
        assert_eq!(held_by(&policies, PP_OLD).as_deref(), Some("new"));
        let policies = [
            pp("old", Some(1), vec![by_kind()]),
            always(pp("new", Some(1), vec![by_name("nginx")])),
        ];
        assert_eq!(held_by(&policies, PP_OLD).as_deref(), Some("old"));
    }

    #[test]
    fn a_propagation_policy_preempts_a_cluster_policy_whatever_the_priorities() {
        let policies = [
            cpp("old", Some(100), vec![by_name("nginx")]),
            always(pp("new", Some(-5), vec![by_kind()])),
        ];
        assert_eq!(held_by(&policies, CPP_OLD).as_deref(), Some("new"));
        // A cluster policy preempts a cluster policy of lower priority only, and never a
        // namespaced one.
        let policies = [
            cpp("old", Some(1), vec![by_kind()]),
            always(cpp("higher", Some(2), vec![by_kind()])),
            always(cpp("same", Some(1), vec![by_kind()])),
        ];
        assert_eq!(held_by(&policies, CPP_OLD).as_deref(), Some("higher"));
        let policies = [
            pp("old", None, vec![by_kind()]),
            always(cpp("cluster", Some(100), vec![by_name("nginx")])),
        ];
        assert_eq!(held_by(&policies, PP_OLD).as_deref(), Some("old"));
    }

    #[test]
    fn a_holder_gone_or_no_longer_selecting_lets_the_best_claim_again() {
        let policies = [pp("new", None, vec![by_kind()])];
        assert_eq!(held_by(&policies, PP_OLD).as_deref(), Some("new"));
        let policies = [
            pp("old", Some(9), vec![by_name("other")]),
            pp("new", None, vec![by_kind()]),
        ];
        assert_eq!(held_by(&policies, PP_OLD).as_deref(), Some("new"));
        // A holder of the same name in another namespace is another policy.
        let elsewhere = Holder {
            namespace: Some("shop"),
            name: "old",
        };
        let policies = [
            pp("old", None, vec![by_kind()]),
            pp("a-best", Some(3), vec![by_kind()]),
        ];
        assert_eq!(held_by(&policies, elsewhere).as_deref(), Some("a-best"));
    }

    #[test]
    fn the_holder_is_read_from_labels_or_annotations() {
        let labelled = ObjectMeta {
            labels: BTreeMap::from([
                (
                    "propagationpolicy.karmada.io/namespace".to_owned(),
                    "web".to_owned(),
                ),
                (
                    "propagationpolicy.karmada.io/name".to_owned(),
                    "old".to_owned(),
                ),
            ]),
            ..ObjectMeta::default()
        };
        assert_eq!(Holder::of(&labelled), Some(PP_OLD));
        let annotated = ObjectMeta {
            annotations: BTreeMap::from([(
                "clusterpropagationpolicy.karmada.io/name".to_owned(),
                "old".to_owned(),
            )]),
            ..ObjectMeta::default()
        };
        assert_eq!(Holder::of(&annotated), Some(CPP_OLD));
        assert_eq!(Holder::of(&ObjectMeta::default()), None);
    }
}
