use crate::{DocumentError, Object, parse_document};

/// Parses one policy document; `Ok(())` when accepted, else the field and message.
fn check(yaml: &str) -> Result<(), (String, String)> {
    let value: serde_norway::Value = serde_norway::from_str(yaml).expect("test YAML");
    match parse_document(&value) {
        Ok(Object::PropagationPolicy(_) | Object::OverridePolicy(_)) => Ok(()),
        Ok(other) => panic!("not a policy: {other:?}"),
        Err(DocumentError::Invalid { field, message }) => Err((field.unwrap_or_default(), message)),
        Err(other) => panic!("{other:?}"),
    }
}

fn propagation(placement: &str) -> String {
    format!(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: p}}\n\
         spec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment}}]\n  placement:\n{}",
        placement
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    )
}

fn overriders(overriders: &str) -> String {
    format!(
        "apiVersion: policy.karmada.io/v1alpha1\nkind: OverridePolicy\nmetadata: {{name: o}}\n\
         spec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment}}]\n  overrideRules:\n  - overriders:\n{}",
        overriders
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    )
}

fn field_of(result: Result<(), (String, String)>) -> String {
    result.expect_err("refused").0
}

#[test]
fn karmadas_samples_are_accepted() {
    let samples = [
        propagation(
            "clusterAffinity: {clusterNames: [member1, member2]}\nreplicaScheduling:\n  replicaSchedulingType: Divided\n  replicaDivisionPreference: Weighted\n  weightPreference:\n    staticWeightList:\n    - {targetCluster: {clusterNames: [member1]}, weight: 1}",
        ),
        propagation(
            "spreadConstraints:\n- {spreadByField: region, maxGroups: 2, minGroups: 2}\n- {spreadByField: cluster, maxGroups: 2, minGroups: 2}",
        ),
        propagation(
            "clusterAffinities:\n- {affinityName: local, clusterNames: [member1]}\n- {affinityName: cloud, clusterNames: [member2]}",
        ),
        propagation("spreadConstraints:\n- {spreadByLabel: rack, minGroups: 2, maxGroups: 3}"),
        propagation("spreadConstraints:\n- {spreadByField: cluster, minGroups: 2, maxGroups: 0}"),
        propagation(
            "clusterTolerations:\n- {key: cluster.karmada.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 30}",
        ),
        overriders(
            "imageOverrider:\n- {component: Registry, operator: replace, value: test-repo}\n- {predicate: {path: /spec/template/spec/initContainers/0/image}, component: Tag, operator: add, value: v1}",
        ),
        overriders(
            "fieldOverrider:\n- {fieldPath: /data/config.yaml, yaml: [{subPath: /db/port, operator: replace, value: 5432}]}",
        ),
    ];
    for sample in samples {
        assert_eq!(check(&sample), Ok(()), "{sample}");
    }
}

#[test]
fn what_karmadas_admission_refuses_is_refused_with_its_field() {
    let cases = [
        (
            propagation("spreadConstraints:\n- {spreadByField: region, minGroups: 2}"),
            "spec.placement.spreadConstraints",
            "the cluster spread constraint must be enabled",
        ),
        (
            propagation(
                "spreadConstraints:\n- {spreadByField: cluster, minGroups: 3, maxGroups: 1}",
            ),
            "spec.placement.spreadConstraints[0].maxGroups",
            "maxGroups lower than minGroups",
        ),
        (
            propagation("replicaScheduling: {replicaSchedulingType: Divded}"),
            "spec.placement.replicaScheduling.replicaSchedulingType",
            "unsupported value \"Divded\"",
        ),
        (
            propagation(
                "clusterAffinity: {clusterNames: [a]}\nclusterAffinities: [{affinityName: x, clusterNames: [b]}]",
            ),
            "spec.placement.clusterAffinities",
            "can not co-exist",
        ),
        (
            propagation("clusterAffinities: [{affinityName: x}, {affinityName: x}]"),
            "spec.placement.clusterAffinities[1].affinityName",
            "unique name",
        ),
        (
            propagation(
                "spreadConstraints: [{spreadByField: datacenter, minGroups: 1}, {spreadByField: cluster}]",
            ),
            "spec.placement.spreadConstraints[0].spreadByField",
            "unsupported value",
        ),
        (
            propagation("spreadConstraints: [{spreadByField: region, spreadByLabel: rack}]"),
            "spec.placement.spreadConstraints[0]",
            "cannot be set at the same time",
        ),
        (
            propagation(
                "clusterAffinity: {fieldSelector: {matchExpressions: [{key: country, operator: In, values: [x]}]}}",
            ),
            "spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].key",
            "unsupported value",
        ),
        (
            propagation(
                "clusterAffinity: {labelSelector: {matchExpressions: [{key: env, operator: In}]}}",
            ),
            "spec.placement.clusterAffinity.labelSelector.matchExpressions[0].values",
            "must be specified",
        ),
        (
            overriders("imageOverrider: [{component: Registri, operator: replace, value: x}]"),
            "spec.overrideRules[0].overriders.imageOverrider[0].component",
            "unsupported value \"Registri\"",
        ),
        (
            overriders(
                "fieldOverrider: [{fieldPath: /data/a, json: [{subPath: /x, operator: add, value: 1}], yaml: [{subPath: /y, operator: add, value: 1}]}]",
            ),
            "spec.overrideRules[0].overriders.fieldOverrider[0]",
            "both YAML and JSON",
        ),
        (
            overriders(
                "fieldOverrider: [{fieldPath: /data/a, yaml: [{subPath: db/port, operator: replace, value: 1}]}]",
            ),
            "spec.overrideRules[0].overriders.fieldOverrider[0].yaml[0].subPath",
            "a JSON pointer",
        ),
        (
            overriders(
                "fieldOverrider: [{fieldPath: /data/a, json: [{subPath: /x, operator: add}]}]",
            ),
            "spec.overrideRules[0].overriders.fieldOverrider[0].json[0].value",
            "value is required",
        ),
        (
            overriders("labelsOverrider: [{operator: upsert, value: {a: b}}]"),
            "spec.overrideRules[0].overriders.labelsOverrider[0].operator",
            "unsupported value",
        ),
    ];
    let spec = |body: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: p}}\nspec:\n{body}"
        )
    };
    let more = [
        (
            spec(
                "  preemption: Always\n  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]\n",
            ),
            "spec.resourceSelectors[0].name",
            "name cannot be empty if preemption is Always",
        ),
        (
            spec(
                "  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]\n  failover: {application: {purgeMode: Directly}}\n",
            ),
            "spec.propagateDeps",
            "propagateDeps must be true",
        ),
        (
            propagation(
                "spreadConstraints: [{spreadByField: region, minGroups: 1}, {spreadByField: region, minGroups: 2}, {spreadByField: cluster}]",
            ),
            "spec.placement.spreadConstraints[1].spreadByField",
            "multiple region spread constraints are not allowed",
        ),
        (
            propagation("clusterAffinities: [{affinityName: 'Bad Name!', clusterNames: [a]}]"),
            "spec.placement.clusterAffinities[0].affinityName",
            "a qualified name",
        ),
        (
            propagation(
                "replicaScheduling: {replicaSchedulingType: Divided, weightPreference: {staticWeightList: [{targetCluster: {clusterNames: [a]}, weight: -3}]}}",
            ),
            "spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight",
            "greater than or equal to 0",
        ),
        (
            overriders("labelsOverrider: [{operator: add, value: {'bad key!': x}}]"),
            "spec.overrideRules[0].overriders.labelsOverrider[0].value",
            "a qualified name",
        ),
        (
            overriders("labelsOverrider: [{operator: add, value: {app: 'no spaces'}}]"),
            "spec.overrideRules[0].overriders.labelsOverrider[0].value.app",
            "a valid label value",
        ),
    ];
    for (yaml, field, message) in cases.into_iter().chain(more) {
        let (got_field, got_message) = check(&yaml).expect_err(&yaml);
        assert_eq!(got_field, field, "{yaml}");
        assert!(got_message.contains(message), "{got_message:?} for {yaml}");
    }
}

#[test]
fn failover_grace_period_only_with_graceful_purging() {
    let with = |application: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: p}}\n\
             spec:\n  propagateDeps: true\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment}}]\n  failover:\n    application: {application}\n"
        )
    };
    assert_eq!(
        check(&with("{purgeMode: Graciously, gracePeriodSeconds: 60}")),
        Ok(())
    );
    assert_eq!(check(&with("{gracePeriodSeconds: 60}")), Ok(()));
    assert_eq!(
        field_of(check(&with("{purgeMode: Never, gracePeriodSeconds: 60}"))),
        "spec.failover.application.gracePeriodSeconds"
    );
    assert_eq!(
        field_of(check(&with(
            "{purgeMode: Graciously, gracePeriodSeconds: 0}"
        ))),
        "spec.failover.application.gracePeriodSeconds"
    );
}

/// Karmada 1.18.2's mutating webhook gives both graceful purge modes a 600 s grace period
/// when none is written (`pkg/util/helper/policy.go`, `SetDefaultGracePeriodSeconds`), so its
/// validating webhook, which requires one, never sees them without. 1.19 drops `Graciously`.
#[test]
fn graceful_purging_without_a_grace_period_is_accepted_as_karmada_1_18_defaults_it() {
    let with = |application: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: p}}\n\
             spec:\n  propagateDeps: true\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment}}]\n  failover:\n    application: {application}\n"
        )
    };
    assert_eq!(check(&with("{purgeMode: Gracefully}")), Ok(()));
    assert_eq!(check(&with("{purgeMode: Graciously}")), Ok(()));
    assert_eq!(
        check(&with("{purgeMode: Never, gracePeriodSeconds: 60}")),
        Err((
            "spec.failover.application.gracePeriodSeconds".to_owned(),
            "only takes effect when purgeMode is gracefully".to_owned()
        ))
    );
}

/// Karmada's `validateResourceSelectors` (`pkg/util/validation/validation.go`, v1.18.2): a
/// namespaced policy selects only in its own namespace; an empty selector namespace is the
/// policy's (its mutating webhook fills it in).
#[test]
fn a_namespaced_policy_selects_only_in_its_namespace() {
    let policy = |kind: &str, namespace: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: {kind}\nmetadata: {{name: p, namespace: shop}}\n\
             spec:\n  resourceSelectors:\n  - {{apiVersion: apps/v1, kind: Deployment}}\n  - {{apiVersion: apps/v1, kind: Deployment, namespace: {namespace}}}\n"
        )
    };
    let refused = Err((
        "spec.resourceSelectors[1].namespace".to_owned(),
        "\"billing\": namespace of resource selector must be the same as the namespace of the policy (\"shop\")".to_owned(),
    ));
    assert_eq!(check(&policy("PropagationPolicy", "billing")), refused);
    assert_eq!(check(&policy("OverridePolicy", "billing")), refused);
    assert_eq!(check(&policy("PropagationPolicy", "shop")), Ok(()));
    assert_eq!(
        check(&policy("ClusterPropagationPolicy", "billing")),
        Ok(())
    );
    assert_eq!(check(&policy("ClusterOverridePolicy", "billing")), Ok(()));
}

/// Karmada's `validateSuspension` (v1.18.2).
#[test]
fn suspension_is_for_every_cluster_or_for_some() {
    let suspension = |s: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: p}}\n\
             spec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment}}]\n  suspension: {s}\n"
        )
    };
    assert_eq!(
        check(&suspension(
            "{dispatching: true, dispatchingOnClusters: {clusterNames: [member1]}}"
        )),
        Err((
            "spec.suspension".to_owned(),
            "suspension dispatching cannot co-exist with dispatchingOnClusters.clusterNames"
                .to_owned()
        ))
    );
    for ok in [
        "{dispatching: true}",
        "{dispatchingOnClusters: {clusterNames: [member1]}}",
        "{dispatching: false, dispatchingOnClusters: {clusterNames: [member1]}}",
        "{dispatching: true, dispatchingOnClusters: {clusterNames: []}}",
    ] {
        assert_eq!(check(&suspension(ok)), Ok(()), "{ok}");
    }
    assert_eq!(
        field_of(check(&suspension(
            "{dispatchingOnCluster: {clusterNames: [m]}}"
        ))),
        "spec.suspension.dispatchingOnCluster"
    );
}

#[test]
fn cluster_failover_purges_directly_or_gracefully() {
    let policy = |mode: &str| {
        format!(
            "apiVersion: policy.karmada.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {{name: p}}\n\
             spec:\n  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment}}]\n  failover: {{cluster: {{purgeMode: {mode}}}}}\n"
        )
    };
    assert_eq!(check(&policy("Directly")), Ok(()));
    assert_eq!(check(&policy("Gracefully")), Ok(()));
    assert_eq!(
        field_of(check(&policy("Immediately"))),
        "spec.failover.cluster.purgeMode"
    );
}
