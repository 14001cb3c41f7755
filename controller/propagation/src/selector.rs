//! Matching, as Kubernetes and Karmada define it: label selectors, Karmada's cluster field
//! selector, cluster affinities and resource selectors. Shared by the claim rule, the scheduler
//! and the overriders.

use std::collections::BTreeMap;

use meshfleet_api::{
    Cluster, ClusterAffinity, FieldSelector, LabelSelector, ObjectMeta, ResourceSelector,
    SelectorRequirement,
};

/// Whether `labels` satisfy `selector` (an empty selector matches everything). An unknown
/// operator matches nothing, as the API server would have rejected it.
pub fn labels_match(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector
            .match_expressions
            .iter()
            .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
}

/// One requirement against the value of its key (`None`: the key is absent).
pub fn requirement_matches(requirement: &SelectorRequirement, value: Option<&str>) -> bool {
    let listed = |v: &str| requirement.values.iter().any(|x| x == v);
    match requirement.operator.as_str() {
        "In" => value.is_some_and(listed),
        "NotIn" => !value.is_some_and(listed),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Karmada's field selector: keys `provider`, `region` and `zone` (a cluster in several zones
/// matches `In` when any of them is listed, and `NotIn` when none is). Other keys match nothing.
pub fn fields_match(selector: &FieldSelector, cluster: &Cluster) -> bool {
    selector.match_expressions.iter().all(|r| {
        let values: Vec<&str> = match r.key.as_str() {
            "provider" => cluster.spec.provider.iter().map(String::as_str).collect(),
            "region" => cluster.region().into_iter().collect(),
            "zone" => cluster.zones(),
            _ => return false,
        };
        match r.operator.as_str() {
            "In" => values.iter().any(|v| r.values.iter().any(|x| x == v)),
            "NotIn" => !values.iter().any(|v| r.values.iter().any(|x| x == v)),
            "Exists" => !values.is_empty(),
            "DoesNotExist" => values.is_empty(),
            _ => false,
        }
    })
}

/// Whether `cluster` is one `affinity` selects: listed in `clusterNames` (when any are),
/// not in `exclude`, and matching both selectors.
pub fn cluster_matches(affinity: &ClusterAffinity, cluster: &Cluster) -> bool {
    let name = cluster.name();
    if !affinity.cluster_names.is_empty() && !affinity.cluster_names.iter().any(|n| n == name) {
        return false;
    }
    if affinity.exclude.iter().any(|n| n == name) {
        return false;
    }
    affinity
        .label_selector
        .as_ref()
        .is_none_or(|s| labels_match(s, &cluster.metadata.labels))
        && affinity
            .field_selector
            .as_ref()
            .is_none_or(|s| fields_match(s, cluster))
}

/// How precisely a resource selector matched, Karmada's implicit priority: a name beats a
/// label selector, which beats apiVersion + kind alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Kind = 1,
    LabelSelector = 2,
    Name = 3,
}

/// The identity of a resource template, as selectors see it.
#[derive(Clone, Copy, Debug)]
pub struct ResourceId<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// Empty for cluster-scoped kinds.
    pub namespace: &'a str,
    pub meta: &'a ObjectMeta,
}

/// Whether `selector` selects `resource`, and how precisely. `namespace` applies only when set;
/// `name`, when set, makes `labelSelector` ignored.
pub fn resource_matches(
    selector: &ResourceSelector,
    resource: &ResourceId<'_>,
) -> Option<Precision> {
    if selector.api_version != resource.api_version || selector.kind != resource.kind {
        return None;
    }
    if let Some(namespace) = selector.namespace.as_deref().filter(|ns| !ns.is_empty())
        && namespace != resource.namespace
    {
        return None;
    }
    if let Some(name) = selector.name.as_deref().filter(|n| !n.is_empty()) {
        return (name == resource.meta.name).then_some(Precision::Name);
    }
    match &selector.label_selector {
        Some(s) => labels_match(s, &resource.meta.labels).then_some(Precision::LabelSelector),
        None => Some(Precision::Kind),
    }
}

/// The best precision among `selectors` that select `resource`; `None` when none does.
pub fn best_match(selectors: &[ResourceSelector], resource: &ResourceId<'_>) -> Option<Precision> {
    selectors
        .iter()
        .filter_map(|s| resource_matches(s, resource))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshfleet_api::fixtures::cluster;

    fn req(key: &str, op: &str, values: &[&str]) -> SelectorRequirement {
        SelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn label_selector_operators() {
        let labels = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
        let selector = |r| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![r],
        };
        assert!(labels_match(&LabelSelector::default(), &labels));
        assert!(labels_match(
            &selector(req("env", "In", &["prod", "qa"])),
            &labels
        ));
        assert!(!labels_match(
            &selector(req("env", "NotIn", &["prod"])),
            &labels
        ));
        assert!(labels_match(
            &selector(req("tier", "NotIn", &["x"])),
            &labels
        ));
        assert!(labels_match(&selector(req("env", "Exists", &[])), &labels));
        assert!(labels_match(
            &selector(req("tier", "DoesNotExist", &[])),
            &labels
        ));
        assert!(!labels_match(&selector(req("env", "Gt", &["1"])), &labels));
    }

    #[test]
    fn affinity_names_exclude_and_fields() {
        let east = cluster("east-1")
            .region("us-east")
            .zone("us-east-1a")
            .build();
        let names = ClusterAffinity {
            cluster_names: vec!["east-1".to_owned(), "west-1".to_owned()],
            ..ClusterAffinity::default()
        };
        assert!(cluster_matches(&names, &east));
        let excluded = ClusterAffinity {
            exclude: vec!["east-1".to_owned()],
            ..ClusterAffinity::default()
        };
        assert!(!cluster_matches(&excluded, &east));
        let fields = ClusterAffinity {
            field_selector: Some(FieldSelector {
                match_expressions: vec![
                    req("region", "In", &["us-east"]),
                    req("zone", "NotIn", &["us-east-1b"]),
                ],
            }),
            ..ClusterAffinity::default()
        };
        assert!(cluster_matches(&fields, &east));
        let provider = ClusterAffinity {
            field_selector: Some(FieldSelector {
                match_expressions: vec![req("provider", "In", &["aws"])],
            }),
            ..ClusterAffinity::default()
        };
        assert!(!cluster_matches(&provider, &east));
    }

    #[test]
    fn resource_selector_precision() {
        let meta = ObjectMeta {
            name: "nginx".to_owned(),
            namespace: Some("web".to_owned()),
            labels: BTreeMap::from([("app".to_owned(), "nginx".to_owned())]),
            ..ObjectMeta::default()
        };
        let id = ResourceId {
            api_version: "apps/v1",
            kind: "Deployment",
            namespace: "web",
            meta: &meta,
        };
        let sel = |name: Option<&str>, labels: Option<LabelSelector>| ResourceSelector {
            api_version: "apps/v1".to_owned(),
            kind: "Deployment".to_owned(),
            namespace: None,
            name: name.map(str::to_owned),
            label_selector: labels,
        };
        assert_eq!(
            resource_matches(&sel(None, None), &id),
            Some(Precision::Kind)
        );
        let app = LabelSelector {
            match_labels: BTreeMap::from([("app".to_owned(), "nginx".to_owned())]),
            ..LabelSelector::default()
        };
        assert_eq!(
            resource_matches(&sel(None, Some(app.clone())), &id),
            Some(Precision::LabelSelector)
        );
        // A name makes the label selector ignored, even one that would not match.
        let other = LabelSelector {
            match_labels: BTreeMap::from([("app".to_owned(), "other".to_owned())]),
            ..LabelSelector::default()
        };
        assert_eq!(
            resource_matches(&sel(Some("nginx"), Some(other)), &id),
            Some(Precision::Name)
        );
        assert_eq!(resource_matches(&sel(Some("redis"), None), &id), None);
        let mut wrong_ns = sel(None, Some(app));
        wrong_ns.namespace = Some("db".to_owned());
        assert_eq!(resource_matches(&wrong_ns, &id), None);
        let mut wrong_version = sel(None, None);
        wrong_version.api_version = "apps/v1beta1".to_owned();
        assert_eq!(resource_matches(&wrong_version, &id), None);
    }
}
