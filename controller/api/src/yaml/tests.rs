use super::*;
use crate::Object;
use crate::fixtures::*;

/// A problem at `file#index`.
fn problem(source: &str, field: Option<&str>, message: &str) -> Problem {
    let (file, index) = source.split_once('#').expect("file#index");
    Problem {
        source: Source::document(file, index.parse().expect("a document index")),
        field: field.map(str::to_owned),
        message: message.to_owned(),
    }
}

/// Parses like the source, without Service templates' copies of their documents.
fn parse_file(file: &str, text: &str) -> Contents {
    let mut contents = super::parse_file(file, text);
    for document in &mut contents.documents {
        document.object = without_raw(document.object.clone());
    }
    contents
}

fn document(index: usize, object: impl Into<Object>) -> Document {
    Document {
        index,
        object: object.into(),
    }
}

#[test]
fn a_bad_document_in_the_middle_costs_only_itself() {
    let text = "\
# clusters of the east zone
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: {name: east-1}
spec: {region: us-east, zone: us-east-1a}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: team-a}
spec:
  ports:
  - name: http
    port: eighty
---
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: {name: east-2}
spec: {region: us-east, zone: us-east-1b}
";
    assert_eq!(
        parse_file("zones/east.yaml", text),
        Contents {
            documents: vec![
                document(0, cluster("east-1").region("us-east").zone("us-east-1a")),
                document(2, cluster("east-2").region("us-east").zone("us-east-1b")),
            ],
            problems: vec![problem(
                "zones/east.yaml#1",
                Some("spec.ports[0].port"),
                "invalid type: string \"eighty\", expected u32"
            )],
            rejected: vec![(
                1,
                ObjectKey {
                    kind: "Service".into(),
                    namespace: "team-a".into(),
                    name: "api".into(),
                    cluster: "".into(),
                }
            )],
            unreadable: false,
            refused: 1,
        }
    );
}

#[test]
fn a_syntax_error_is_reported_with_its_line_and_later_documents_still_load() {
    let text = "\
apiVersion: v1
kind: Service
metadata: {name: a}
---
apiVersion: v1
kind: Service
metadata: {name: b, labels: [x
---
apiVersion: v1
kind: Service
metadata: {name: c}
";
    let contents = parse_file("svc.yaml", text);
    assert_eq!(
        contents.documents,
        vec![document(0, service("", "a")), document(2, service("", "c"))]
    );
    assert_eq!(
        contents.problems,
        vec![problem(
            "svc.yaml#1",
            None,
            "invalid YAML: did not find expected ',' or ']' at line 8 column 1, while parsing a flow sequence at line 7 column 29"
        )]
    );
}

#[test]
fn unknown_kinds_are_a_warning_and_skipped() {
    let text = "apiVersion: meshfleet.io/v1alpha1\nkind: Clustr\nmetadata: {name: w}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n";
    assert_eq!(
        parse_file("w.yaml", text),
        Contents {
            documents: vec![document(1, service("", "a"))],
            problems: vec![problem(
                "w.yaml#0",
                None,
                "unknown kind Clustr (meshfleet.io/v1alpha1); skipped"
            )],
            rejected: vec![],
            unreadable: false,
            refused: 0,
        }
    );
}

#[test]
fn document_indexes_count_documents_not_separators() {
    let text = "\
# leading comment, then a marker: not a document of its own
---
apiVersion: v1
kind: Service
metadata: {name: a}
---
# an empty document still has an index
---
apiVersion: v1
kind: Service
metadata: {name: b}
...
---
apiVersion: v1
kind: Service
metadata: {name: c}
";
    let contents = parse_file("f.yaml", text);
    assert_eq!(
        contents.documents,
        vec![
            document(0, service("", "a")),
            document(2, service("", "b")),
            document(3, service("", "c")),
        ]
    );
    assert_eq!(contents.problems, vec![]);
    assert_eq!(parse_file("empty.yaml", ""), Contents::default());
    assert_eq!(
        parse_file("comments.yaml", "# nothing here\n"),
        Contents::default()
    );
}

#[test]
fn merge_keys_are_applied() {
    let text = "\
x-ports: &ports
  ports: [{name: http, port: 80}]
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  <<: *ports
";
    let contents = parse_file("m.yaml", text);
    assert_eq!(
        contents.documents,
        vec![document(0, service("", "a").port("http", 80))]
    );
}

#[test]
fn split_documents_on_marker_lines_only() {
    let text = "a: 1\n--- # start\nb: |\n  ---not a marker\n---\r\nc: 3";
    let chunks = split_documents(text);
    assert_eq!(
        chunks,
        vec![
            Chunk {
                text: "a: 1\n",
                first_line: 0
            },
            Chunk {
                text: "--- # start\nb: |\n  ---not a marker\n",
                first_line: 1
            },
            Chunk {
                text: "---\r\nc: 3",
                first_line: 4
            },
        ]
    );
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_document() {
    let text = "\u{feff}apiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata: {name: east-1}\nspec: {region: us-east}\n---\napiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata: {name: east-2}\nspec: {region: us-east}\n";
    let contents = parse_file("bom.yaml", text);
    assert_eq!(contents.problems, vec![]);
    assert_eq!(contents.documents.len(), 2);
}

#[test]
fn a_kubectl_list_loads_its_items() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: meshfleet.io/v1alpha1
  kind: Cluster
  metadata: {name: east-1}
  spec: {region: us-east}
- apiVersion: v1
  kind: Service
  metadata: {name: api, namespace: team-a}
  spec:
    ports: [{name: http, port: eighty}]
- apiVersion: meshfleet.io/v1alpha1
  kind: Cluster
  metadata: {name: east-2}
  spec: {region: us-east}
";
    let contents = parse_file("list.yaml", text);
    let names: Vec<String> = contents
        .documents
        .iter()
        .map(|d| format!("{}#{}", d.object.key(), d.index))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(contents.problems.len(), 1, "{:?}", contents.problems);
    let problem = &contents.problems[0];
    assert_eq!(problem.source, Source::document("list.yaml", 0));
    assert_eq!(
        problem.field.as_deref(),
        Some("items[1].spec.ports[0].port")
    );
}

/// Strict, as `kubectl apply` validates by default: a field Karmada's API does not have
/// refuses the policy, with its path, wherever it is (inside a `clusterAffinities` term too).
#[test]
fn a_policy_with_an_unknown_field_is_refused_with_its_path() {
    let pp = |placement: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: web\n  namespace: shop\n  uid: 0b5c7e1e-2c0e-4d8f-9a57-1b6f0c1d2e3f\n  resourceVersion: '4711'\n  managedFields: [{{manager: kubectl}}]\nspec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: web}}]\n  placement:\n{placement}status: {{}}\n"
        )
    };
    let unknown = "unknown field (check its spelling and indentation); the policy is refused, as kubectl apply refuses it";
    for (placement, field, also) in [
        (
            "    clusterAffinities:\n    - {affinityName: local, clusterNamess: [member1]}\n",
            "spec.placement.clusterAffinities[0].clusterNamess",
            "",
        ),
        // `clusterNames` one level too deep: under `clusterAffinity`'s sibling instead.
        (
            "    clusterAffinity:\n    clusterNames: [member1]\n",
            "spec.placement.clusterNames",
            "",
        ),
        (
            "    overflowAffinities: [{affinityName: more}]\n    clusterAfinity: {}\n",
            "spec.placement.overflowAffinities",
            "; also unknown: spec.placement.clusterAfinity",
        ),
    ] {
        let contents = parse_file("p.yaml", &pp(placement));
        assert_eq!(contents.documents, vec![], "{placement}");
        assert_eq!(contents.refused, 1);
        assert_eq!(
            contents.problems,
            [problem(
                "p.yaml#0",
                Some(field),
                &format!("{unknown}{also}")
            )]
        );
        assert_eq!(contents.rejected.len(), 1, "the last valid version stays");
    }
    let text = "
apiVersion: v1
kind: List
items:
- apiVersion: policy.karmada.io/v1alpha1
  kind: ClusterOverridePolicy
  metadata: {name: mirror, lables: {a: b}}
  spec:
    resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]
    overrideRules:
    - overriders: {imageOverrider: [{component: Registry, operator: replace, value: m, extra: 1}]}
";
    assert_eq!(
        parse_file("o.yaml", text).problems,
        [problem(
            "o.yaml#0",
            Some("items[0].metadata.lables"),
            &format!(
                "{unknown}; also unknown: spec.overrideRules[0].overriders.imageOverrider[0].extra"
            )
        )]
    );
}

/// Every field of Karmada 1.18's PropagationPolicy (`pkg/apis/policy/v1alpha1/
/// propagation_types.go`, v1.18.2) loads; those meshfleet does not act on are named as such.
#[test]
fn karmadas_fields_meshfleet_does_not_act_on_are_named_and_the_policy_loads() {
    let text = "
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {name: web, namespace: shop}
spec:
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: web}]
  association: true
  propagateDeps: true
  priority: 5
  preemption: Never
  dependentOverrides: [web-overrides]
  schedulerName: default-scheduler
  conflictResolution: Overwrite
  activationPreference: Lazy
  suspension: {dispatching: false}
  preserveResourcesOnDeletion: true
  schedulePriority: {priorityClassSource: KubePriorityClass, priorityClassName: high}
  failover:
    application:
      decisionConditions: {tolerationSeconds: 60}
      purgeMode: Gracefully
      statePreservation: {rules: [{aliasLabelName: app.io/replicas, jsonPath: '{ .replicas }'}]}
    cluster: {purgeMode: Directly}
  placement:
    clusterAffinities:
    - affinityName: primary
      clusterNames: [member1]
      overflowAffinities: [{affinityName: backup, clusterNames: [member2]}]
    workloadAffinity:
      affinity: {groupByLabelKey: app.io/group}
    replicaScheduling: {replicaSchedulingType: Divided, replicaDivisionPreference: Aggregated}
";
    let contents = parse_file("p.yaml", text);
    assert_eq!(contents.documents.len(), 1, "{:?}", contents.problems);
    let why = |field: &str, why: &str| {
        problem(
            "p.yaml#0",
            Some(field),
            &format!("not supported by meshfleet ({why}); ignored"),
        )
    };
    assert_eq!(
        contents.problems,
        [
            why(
                "spec.association",
                "deprecated by Karmada in favour of propagateDeps, and read by neither"
            ),
            why(
                "spec.conflictResolution",
                "meshfleet does not check whether a member cluster already holds the resource"
            ),
            why(
                "spec.activationPreference",
                "a change to the policy takes effect at once, not when the resource next changes"
            ),
            why(
                "spec.preserveResourcesOnDeletion",
                "deleting the template removes its copies"
            ),
            why(
                "spec.schedulePriority",
                "it orders Karmada's scheduling queue; meshfleet plans every binding in one pass"
            ),
            why(
                "spec.placement.workloadAffinity",
                "the workload is scheduled without regard to other workloads"
            ),
            why(
                "spec.placement.clusterAffinities[0].overflowAffinities",
                "only the term's own clusters are used, however full they are"
            ),
            why(
                "spec.failover.application.statePreservation",
                "no state is carried to the cluster a workload fails over to"
            ),
        ]
    );
}

#[test]
fn a_flood_of_problems_is_capped_per_file() {
    let text = "apiVersion: config.karmada.io/v1alpha1\nkind: Nothing\nmetadata: {name: n}\n---\n"
        .repeat(700);
    let contents = parse_file("flood.yaml", &text);
    assert_eq!(contents.problems.len(), MAX_PROBLEMS_PER_FILE + 1);
    assert_eq!(
        contents.problems.last(),
        Some(&Problem::new(
            Source::file("flood.yaml"),
            "600 more problems in this file, not listed (only the first 100 are)"
        ))
    );
}

#[test]
fn a_deeply_nested_document_is_refused_unparsed_and_fast() {
    let deep = 100_000;
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ok}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(deep),
        "]".repeat(deep)
    );
    let started = std::time::Instant::now();
    let contents = parse_file("deep.yaml", &text);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(contents.documents.len(), 1);
    assert_eq!(
        contents.problems,
        [problem(
            "deep.yaml#1",
            None,
            "nested deeper than 128 levels at line 8; not parsed"
        )]
    );
    // Block nesting counts too: `- - - …` on one line.
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}a\n",
        "- ".repeat(deep)
    );
    assert_eq!(parse_file("deep.yaml", &text).refused, 1);
}

#[test]
fn many_broken_documents_cost_each_only_itself() {
    let text = "a: [1\n---\n".repeat(20_000);
    let started = std::time::Instant::now();
    let contents = parse_file("broken.yaml", &text);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(contents.refused, 20_000);
    assert_eq!(
        contents.problems[1],
        problem(
            "broken.yaml#1",
            None,
            "invalid YAML: did not find expected ',' or ']' at line 4 column 1, while parsing a flow sequence at line 3 column 4"
        )
    );
}
