use super::*;
use meshfleet_api::fixtures::*;
use meshfleet_model::Source;

fn contents(objects: Vec<Object>) -> Contents {
    Contents {
        documents: objects
            .into_iter()
            .enumerate()
            .map(|(index, object)| Document { index, object })
            .collect(),
        ..Contents::default()
    }
}

fn names<'a, T: 'a>(
    items: impl Iterator<Item = &'a Arc<T>>,
    name: impl Fn(&T) -> String,
) -> Vec<String> {
    items.map(|item| name(item)).collect()
}

#[test]
fn reset_and_forget_say_whether_anything_changed() {
    let mut index = Index::default();
    let file = || {
        contents(vec![
            cluster("east-1").region("us-east").into(),
            service("team-a", "api").into(),
        ])
    };
    assert!(index.reset(&Origin::file("a.yaml"), file()));
    assert!(
        !index.reset(&Origin::file("a.yaml"), file()),
        "same contents again"
    );
    assert!(index.reset(
        &Origin::file("a.yaml"),
        contents(vec![cluster("east-1").region("us-west").into()])
    ));
    assert_eq!(index.cluster("east-1").unwrap().region(), Some("us-west"));
    assert_eq!(
        index.services().count(),
        0,
        "the file's Service is gone with its old contents"
    );
    assert!(index.forget(&Origin::file("a.yaml")));
    assert!(!index.forget(&Origin::file("a.yaml")), "already gone");
    assert!(!index.forget(&Origin::file("never.yaml")));
    assert_eq!(index.objects().count(), 0);
    assert_eq!(index.origins().count(), 0);
}

#[test]
fn typed_getters_split_templates_from_observed_copies() {
    let mut index = Index::default();
    index.reset(
        &Origin::file("all.yaml"),
        contents(vec![
            service("team-a", "api").observed_in("west-1").into(),
            service("team-a", "api").into(),
            service("team-a", "api").observed_in("east-1").into(),
            slice("team-a", "api-1", "api", "east-1").into(),
            service_export("team-a", "api"),
            rule("team-a", "api", "api").into(),
            cluster("east-1").into(),
        ]),
    );
    let cluster_of = |s: &Service| s.source_cluster().unwrap_or("-").to_owned();
    assert_eq!(
        names(index.services(), cluster_of),
        ["-", "east-1", "west-1"]
    );
    assert_eq!(names(index.service_templates(), cluster_of), ["-"]);
    assert_eq!(
        names(index.observed_services(), cluster_of),
        ["east-1", "west-1"]
    );
    assert_eq!(
        names(index.endpoint_slices(), |s| s.metadata.name.clone()),
        ["api-1"]
    );
    assert_eq!(
        names(index.service_exports(), |s| s.metadata.name.clone()),
        ["api"]
    );
    assert_eq!(
        names(index.destination_rules(), |s| s.metadata.name.clone()),
        ["api"]
    );
    assert_eq!(names(index.clusters(), |c| c.name().to_owned()), ["east-1"]);
    assert_eq!(index.generic().count(), 0);
    assert_eq!(index.problems(), vec![]);
}

#[test]
fn the_same_key_twice_is_reported_and_the_last_file_wins() {
    let mut index = Index::default();
    assert!(index.reset(
        &Origin::file("b.yaml"),
        contents(vec![cluster("east-1").region("from-b").into()])
    ));
    assert!(index.reset(
        &Origin::file("a.yaml"),
        contents(vec![cluster("east-1").region("from-a").into()])
    ));
    // Path order, not load order, decides.
    assert_eq!(index.cluster("east-1").unwrap().region(), Some("from-b"));
    assert_eq!(
        index.problems(),
        vec![Problem::new(
            Source::document("a.yaml", 0),
            "Cluster east-1 is defined again in b.yaml#0, which wins; this one is ignored"
        )]
    );
    assert!(index.forget(&Origin::file("b.yaml")));
    assert_eq!(index.cluster("east-1").unwrap().region(), Some("from-a"));
    assert_eq!(index.problems(), vec![]);
}

#[test]
fn the_same_key_twice_in_one_file_keeps_the_later_document() {
    let mut index = Index::default();
    index.reset(
        &Origin::file("a.yaml"),
        contents(vec![
            cluster("c").region("first").into(),
            cluster("c").region("second").into(),
        ]),
    );
    assert_eq!(index.cluster("c").unwrap().region(), Some("second"));
    assert_eq!(
        index.problems(),
        vec![Problem::new(
            Source::document("a.yaml", 0),
            "Cluster c is defined again in a.yaml#1, which wins; this one is ignored"
        )]
    );
    index.reset(
        &Origin::file("a.yaml"),
        contents(vec![cluster("c").region("only").into()]),
    );
    assert_eq!(index.problems(), vec![]);
}

#[test]
fn parse_problems_are_replaced_when_the_file_reloads() {
    let mut index = Index::default();
    let bad = Contents {
        problems: vec![Problem::new(Source::document("a.yaml", 0), "bad")],
        ..Contents::default()
    };
    index.reset(
        &Origin::file("b.yaml"),
        Contents {
            problems: vec![Problem::new(Source::document("b.yaml", 3), "worse")],
            ..Default::default()
        },
    );
    index.reset(&Origin::file("a.yaml"), bad);
    assert_eq!(
        index.problems(),
        vec![
            Problem::new(Source::document("a.yaml", 0), "bad"),
            Problem::new(Source::document("b.yaml", 3), "worse")
        ]
    );
    index.reset(&Origin::file("a.yaml"), contents(vec![cluster("c").into()]));
    assert_eq!(
        index.problems(),
        vec![Problem::new(Source::document("b.yaml", 3), "worse")]
    );
}

#[test]
fn a_refused_document_keeps_the_last_valid_version_of_its_object() {
    use meshfleet_api::yaml::parse_file;
    let good = "
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
  placement: {clusterAffinity: {clusterNames: [member1]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
";
    let mut index = Index::default();
    index.reset(&Origin::file("p.yaml"), parse_file("p.yaml", good));
    let before: Vec<_> = index.propagation_policies().cloned().collect();
    assert_eq!(before.len(), 1);

    // An edit Karmada would refuse, and the ConfigMap taken out: the policy stays as it was,
    // the ConfigMap goes, and the problem says what stays.
    let broken = "
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
  placement:
    clusterAffinity: {clusterNames: [member1]}
    spreadConstraints: [{spreadByField: region, minGroups: 1}]
";
    assert!(index.reset(&Origin::file("p.yaml"), parse_file("p.yaml", broken)));
    let after: Vec<_> = index.propagation_policies().cloned().collect();
    assert_eq!(after, before);
    assert_eq!(index.objects().count(), 1, "the ConfigMap is gone");
    let problems: Vec<String> = index.problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("p.yaml#0 spec.placement.spreadConstraints: "),
        "{problems:?}"
    );
    assert!(
        problems[0].ends_with("; its last valid version stays in effect"),
        "{problems:?}"
    );
    // Read again unchanged: nothing changes.
    assert!(!index.reset(&Origin::file("p.yaml"), parse_file("p.yaml", broken)));

    // A refused document with no earlier version defines nothing.
    index.reset(
        &Origin::file("q.yaml"),
        parse_file("q.yaml", &broken.replace("name: web", "name: new")),
    );
    assert_eq!(index.propagation_policies().count(), 1);

    // Fixed: the new version takes effect.
    let fixed = good.replace("member1", "member2");
    index.reset(&Origin::file("p.yaml"), parse_file("p.yaml", &fixed));
    let policy = index.propagation_policies().next().unwrap();
    let names = &policy
        .spec
        .placement
        .cluster_affinity
        .as_ref()
        .unwrap()
        .cluster_names;
    assert_eq!(names, &["member2"]);
}

#[test]
fn a_file_that_cannot_be_read_keeps_what_it_held() {
    let mut index = Index::default();
    index.reset(
        &Origin::file("a.yaml"),
        contents(vec![cluster("east-1").region("us-east").into()]),
    );
    let unreadable = Contents {
        problems: vec![Problem::new(
            Source::file("a.yaml"),
            "not UTF-8: invalid utf-8 sequence",
        )],
        unreadable: true,
        ..Contents::default()
    };
    index.reset(&Origin::file("a.yaml"), unreadable);
    assert_eq!(names(index.clusters(), |c| c.name().to_owned()), ["east-1"]);
    let problems: Vec<String> = index.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        ["a.yaml: not UTF-8: invalid utf-8 sequence; what it held before stays in effect"]
    );
    // Removing the file still removes what it held.
    index.forget(&Origin::file("a.yaml"));
    assert_eq!(index.clusters().count(), 0);
}

#[test]
fn a_document_refused_for_its_metadata_still_keeps_its_last_valid_version() {
    use meshfleet_api::yaml::parse_file;
    let good = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop, labels: {version: '1.0'}}\nspec: {replicas: 2}\n";
    let mut index = Index::default();
    index.reset(&Origin::file("d.yaml"), parse_file("d.yaml", good));
    let before: Vec<_> = index.objects().map(|(k, _)| k.clone()).collect();
    assert_eq!(before.len(), 1);
    // A label value that is a number, not a string: refused, and the object stays.
    let bad = good.replace("'1.0'", "1.0");
    let contents = parse_file("d.yaml", &bad);
    assert_eq!(contents.rejected.len(), 1, "{:?}", contents.problems);
    index.reset(&Origin::file("d.yaml"), contents);
    let after: Vec<_> = index.objects().map(|(k, _)| k.clone()).collect();
    assert_eq!(after, before);
}

#[test]
fn a_watch_applies_and_deletes_one_object_at_a_time() {
    let mut index = Index::default();
    let east = Origin::cluster("east-1");
    let slice = || -> Object { slice("team-a", "api-1", "api", "east-1").into() };
    assert!(index.apply(&east, slice()));
    assert!(!index.apply(&east, slice()), "the same object again");
    assert!(index.apply(&east, service("team-a", "api").observed_in("east-1").into()));
    assert_eq!(index.endpoint_slices().count(), 1);
    assert_eq!(index.observed_services().count(), 1);

    let key = slice().key();
    assert!(index.delete(&east, &key));
    assert!(
        !index.delete(&east, &key),
        "deleting what is gone is no change"
    );
    assert!(!index.delete(&Origin::cluster("west-1"), &key));
    assert_eq!(index.endpoint_slices().count(), 0);
    assert_eq!(index.observed_services().count(), 1);

    assert!(index.forget(&east));
    assert_eq!(index.objects().count(), 0);
    assert_eq!(index.origins().count(), 0);
}

#[test]
fn a_watch_relisted_replaces_what_it_held() {
    let mut index = Index::default();
    let east = Origin::cluster("east-1");
    index.apply(&east, slice("team-a", "old", "api", "east-1").into());
    let relist = contents(vec![slice("team-a", "new", "api", "east-1").into()]);
    assert!(index.reset(&east, relist.clone()));
    assert!(!index.reset(&east, relist));
    let names: Vec<_> = index
        .endpoint_slices()
        .map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["new"]);
}

#[test]
fn a_key_from_a_file_and_a_watch_is_reported_and_the_watch_wins() {
    let mut index = Index::default();
    index.reset(
        &Origin::file("clusters.yaml"),
        contents(vec![cluster("east-1").region("from-file").into()]),
    );
    index.apply(
        &Origin::cluster("gateway"),
        cluster("east-1").region("from-watch").into(),
    );
    assert_eq!(
        index.cluster("east-1").unwrap().region(),
        Some("from-watch")
    );
    assert_eq!(
        index.problems(),
        vec![Problem::new(
            Source::document("clusters.yaml", 0),
            "Cluster east-1 is defined again in cluster gateway, which wins; this one is ignored"
        )]
    );
    index.delete(
        &Origin::cluster("gateway"),
        &Object::from(cluster("east-1")).key(),
    );
    assert_eq!(index.cluster("east-1").unwrap().region(), Some("from-file"));
    assert_eq!(index.problems(), vec![]);
}

#[test]
fn the_change_log_names_each_changed_key_once() {
    let mut index = Index::default();
    let file = Origin::file("a.yaml");
    let start = index.generation();
    index.reset(
        &file,
        contents(vec![
            cluster("east-1").region("r").into(),
            service("team-a", "api").into(),
        ]),
    );
    let loaded = index.generation();
    let keys = |changes: Option<Vec<&ObjectKey>>| -> Vec<String> {
        changes.unwrap().iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        keys(index.changes_since(start)),
        ["Cluster east-1", "Service team-a/api"]
    );
    assert_eq!(keys(index.changes_since(loaded)), Vec::<String>::new());

    // The same contents again change nothing; a new region changes the cluster alone.
    index.reset(
        &file,
        contents(vec![
            cluster("east-1").region("r").into(),
            service("team-a", "api").into(),
        ]),
    );
    assert_eq!(index.generation(), loaded);
    index.reset(
        &file,
        contents(vec![
            cluster("east-1").region("s").into(),
            service("team-a", "api").into(),
        ]),
    );
    assert_eq!(keys(index.changes_since(loaded)), ["Cluster east-1"]);
    assert_eq!(
        keys(index.changes_since(start)),
        ["Service team-a/api", "Cluster east-1"],
        "each key once, at its last change"
    );

    // A deletion is a change; once trimmed, it is forgotten and older readers start afresh.
    let before_delete = index.generation();
    index.forget(&file);
    assert_eq!(
        keys(index.changes_since(before_delete)),
        ["Cluster east-1", "Service team-a/api"]
    );
    let now = index.generation();
    index.trim_changes(now);
    assert!(index.changes_since(start).is_none());
    assert_eq!(keys(index.changes_since(now)), Vec::<String>::new());
}

#[test]
fn a_snapshot_leaves_out_the_kinds_asked_and_shares_the_rest() {
    let mut index = Index::default();
    let file = Origin::file("a.yaml");
    index.reset(
        &file,
        contents(vec![
            cluster("east-1").region("us-east").into(),
            service("team-a", "api").into(),
            slice("team-a", "api-1", "api", "east-1").into(),
        ]),
    );
    let snapshot = index.snapshot_without(&[kinds::ENDPOINT_SLICE]);
    assert_eq!(snapshot.endpoint_slices().count(), 0);
    assert_eq!(
        names(snapshot.clusters(), |c| c.name().to_owned()),
        ["east-1"]
    );
    assert!(Arc::ptr_eq(
        snapshot.clusters().next().unwrap(),
        index.clusters().next().unwrap()
    ));
    // Later changes to the index do not reach the snapshot.
    index.forget(&file);
    assert_eq!(snapshot.services().count(), 1);
}

#[test]
fn a_watch_sets_its_problems_beside_its_objects() {
    let mut index = Index::default();
    let origin = Origin::cluster("east-1");
    assert!(index.apply(
        &origin,
        service("team-a", "api").observed_in("east-1").into()
    ));
    let problem = Problem::new(
        Source::object("Service", "team-a", "broken"),
        "spec.ports: invalid type",
    );
    assert!(index.set_problems(&origin, vec![problem.clone()], 1));
    assert!(
        !index.set_problems(&origin, vec![problem.clone()], 1),
        "the same problems again"
    );
    assert_eq!(index.problems(), vec![problem]);
    assert_eq!(index.refused(), 1);
    assert_eq!(index.services().count(), 1, "its objects stay");
    assert!(index.set_problems(&origin, Vec::new(), 0));
    assert!(index.problems().is_empty());
    assert!(index.forget(&origin));
}
