//! What Karmada's admission (its CRD schemas and validating webhook) refuses in a policy,
//! refused here when the document is loaded: a policy Karmada would not accept never takes
//! effect, and the document is reported with the field at fault.

use super::policy::{
    ClusterAffinity, LabelSelector, OverridePolicy, Overriders, Placement, PropagationPolicy,
    ResourceSelector, SelectorRequirement, WorkloadAffinity,
};

/// A refused field: its path and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub field: String,
    pub message: String,
}

type Checked = Result<(), Refused>;

fn refuse(field: impl Into<String>, message: impl Into<String>) -> Checked {
    Err(Refused {
        field: field.into(),
        message: message.into(),
    })
}

/// `value` must be one of `allowed` (a CRD enum).
fn one_of(field: impl Into<String>, value: &str, allowed: &[&str]) -> Checked {
    if allowed.contains(&value) {
        return Ok(());
    }
    refuse(
        field,
        format!(
            "unsupported value {value:?}: supported values are {}",
            allowed
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// A Kubernetes qualified name (label and annotation keys): an optional DNS subdomain prefix
/// and `/`, then at most 63 characters, alphanumeric at both ends, `-`, `_` or `.` between.
fn qualified_name(field: &str, name: &str) -> Checked {
    let (prefix, local) = match name.rsplit_once('/') {
        Some((prefix, local)) => (Some(prefix), local),
        None => (None, name),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if prefix_ok && !local.is_empty() && name_part_ok(local) {
        return Ok(());
    }
    refuse(
        field,
        format!(
            "{name:?}: a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'"
        ),
    )
}

/// A label value: empty, or a name part.
fn label_value(field: &str, value: &str) -> Checked {
    if value.is_empty() || name_part_ok(value) {
        return Ok(());
    }
    refuse(
        field,
        format!(
            "{value:?}: a valid label value must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ),
    )
}

/// At most 63 characters: alphanumeric at both ends, `-`, `_` or `.` between.
fn name_part_ok(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    part.len() <= 63
        && part.starts_with(alnum)
        && part.ends_with(alnum)
        && part
            .chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
}

/// A JSON pointer: empty (the whole document) or starting with `/`.
fn pointer(field: String, path: &str) -> Checked {
    if path.is_empty() || path.starts_with('/') {
        return Ok(());
    }
    refuse(
        field,
        format!("{path:?}: a JSON pointer must be empty or start with '/'"),
    )
}

fn optional(field: impl Into<String>, value: Option<&str>, allowed: &[&str]) -> Checked {
    value.map_or(Ok(()), |v| one_of(field, v, allowed))
}

/// Checks a PropagationPolicy or ClusterPropagationPolicy as Karmada's admission does.
///
/// # Errors
/// The first field Karmada would refuse.
pub(crate) fn propagation_policy(policy: &PropagationPolicy) -> Checked {
    let spec = &policy.spec;
    optional(
        "spec.preemption",
        spec.preemption.as_deref(),
        &["Always", "Never"],
    )?;
    optional(
        "spec.conflictResolution",
        spec.conflict_resolution.as_deref(),
        &["Abort", "Overwrite"],
    )?;
    optional(
        "spec.activationPreference",
        spec.activation_preference.as_deref(),
        &["", "Lazy"],
    )?;
    let namespace = (!policy.is_cluster_scoped()).then(|| policy.metadata.namespace_or_default());
    resource_selectors(&spec.resource_selectors, namespace)?;
    if spec.preemption.as_deref() == Some("Always") {
        for (i, selector) in spec.resource_selectors.iter().enumerate() {
            if selector.name.as_deref().is_none_or(str::is_empty) {
                return refuse(
                    format!("spec.resourceSelectors[{i}].name"),
                    "name cannot be empty if preemption is Always, the empty name may cause unexpected resources preemption",
                );
            }
        }
    }
    placement(&spec.placement)?;
    if let Some(suspension) = &spec.suspension
        && suspension.dispatching == Some(true)
        && suspension
            .dispatching_on_clusters
            .as_ref()
            .is_some_and(|c| !c.cluster_names.is_empty())
    {
        return refuse(
            "spec.suspension",
            "suspension dispatching cannot co-exist with dispatchingOnClusters.clusterNames",
        );
    }
    if let Some(cluster) = spec.failover.as_ref().and_then(|f| f.cluster.as_ref()) {
        optional(
            "spec.failover.cluster.purgeMode",
            cluster.purge_mode.as_deref(),
            &["Directly", "Gracefully"],
        )?;
    }
    if let Some(failover) = &spec.failover
        && let Some(application) = &failover.application
    {
        let field = "spec.failover.application";
        if !spec.propagate_deps {
            return refuse(
                "spec.propagateDeps",
                "application failover is set, propagateDeps must be true",
            );
        }
        optional(
            format!("{field}.purgeMode"),
            application.purge_mode.as_deref(),
            &[
                "Directly",
                "Gracefully",
                "Never",
                "Immediately",
                "Graciously",
            ],
        )?;
        let gracious = application
            .purge_mode
            .as_deref()
            .is_none_or(|m| m == "Graciously" || m == "Gracefully");
        if !gracious && application.grace_period_seconds.is_some() {
            return refuse(
                format!("{field}.gracePeriodSeconds"),
                "only takes effect when purgeMode is gracefully",
            );
        }
        if application.grace_period_seconds.is_some_and(|s| s <= 0) {
            return refuse(
                format!("{field}.gracePeriodSeconds"),
                "must be greater than 0",
            );
        }
        if let Some(conditions) = &application.decision_conditions
            && conditions.toleration_seconds.is_some_and(|s| s < 0)
        {
            return refuse(
                format!("{field}.decisionConditions.tolerationSeconds"),
                "must be greater than or equal to 0",
            );
        }
    }
    Ok(())
}

/// `namespace`: the policy's, for a namespaced policy, whose selectors may name no other (an
/// empty one is the policy's: Karmada's mutating webhook fills it in).
fn resource_selectors(selectors: &[ResourceSelector], namespace: Option<&str>) -> Checked {
    for (i, selector) in selectors.iter().enumerate() {
        let field = format!("spec.resourceSelectors[{i}]");
        if selector.api_version.is_empty() || selector.kind.is_empty() {
            return refuse(field, "apiVersion and kind are required");
        }
        if let (Some(policy), Some(own)) = (namespace, selector.namespace.as_deref())
            && !own.is_empty()
            && own != policy
        {
            return refuse(
                format!("{field}.namespace"),
                format!(
                    "{own:?}: namespace of resource selector must be the same as the namespace of the policy ({policy:?})"
                ),
            );
        }
        if let Some(labels) = &selector.label_selector {
            label_selector(&format!("{field}.labelSelector"), labels)?;
        }
    }
    Ok(())
}

fn placement(placement: &Placement) -> Checked {
    let field = "spec.placement";
    if placement.cluster_affinity.is_some() && !placement.cluster_affinities.is_empty() {
        return refuse(
            format!("{field}.clusterAffinities"),
            "clusterAffinities can not co-exist with clusterAffinity",
        );
    }
    if let Some(affinity) = &placement.cluster_affinity {
        cluster_affinity(&format!("{field}.clusterAffinity"), affinity)?;
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, term) in placement.cluster_affinities.iter().enumerate() {
        let at = format!("{field}.clusterAffinities[{i}]");
        qualified_name(&format!("{at}.affinityName"), &term.affinity_name)?;
        if !names.insert(term.affinity_name.as_str()) {
            return refuse(
                format!("{at}.affinityName"),
                format!(
                    "{:?}: each affinity term in a policy must have a unique name",
                    term.affinity_name
                ),
            );
        }
        cluster_affinity(&at, &term.affinity)?;
    }
    for (i, toleration) in placement.cluster_tolerations.iter().enumerate() {
        let at = format!("{field}.clusterTolerations[{i}]");
        optional(
            format!("{at}.operator"),
            toleration.operator.as_deref(),
            &["", "Exists", "Equal"],
        )?;
        optional(
            format!("{at}.effect"),
            toleration.effect.as_deref(),
            &["", "NoSchedule", "PreferNoSchedule", "NoExecute"],
        )?;
        if toleration.operator.as_deref() == Some("Exists")
            && toleration.value.as_deref().is_some_and(|v| !v.is_empty())
        {
            return refuse(
                format!("{at}.value"),
                "must be empty when operator is Exists",
            );
        }
    }
    spread_constraints(placement)?;
    if let Some(workload) = &placement.workload_affinity {
        workload_affinity(workload)?;
    }
    if let Some(scheduling) = &placement.replica_scheduling {
        let at = format!("{field}.replicaScheduling");
        optional(
            format!("{at}.replicaSchedulingType"),
            scheduling.replica_scheduling_type.as_deref(),
            &["Duplicated", "Divided"],
        )?;
        optional(
            format!("{at}.replicaDivisionPreference"),
            scheduling.replica_division_preference.as_deref(),
            &["Aggregated", "Weighted"],
        )?;
        if let Some(weights) = &scheduling.weight_preference {
            optional(
                format!("{at}.weightPreference.dynamicWeight"),
                weights.dynamic_weight.as_deref(),
                &["", "AvailableReplicas"],
            )?;
            for (i, weight) in weights.static_weight_list.iter().enumerate() {
                let at = format!("{at}.weightPreference.staticWeightList[{i}]");
                if weight.weight < 0 {
                    return refuse(format!("{at}.weight"), "must be greater than or equal to 0");
                }
                cluster_affinity(&format!("{at}.targetCluster"), &weight.target_cluster)?;
            }
        }
    }
    Ok(())
}

/// Karmada's `ValidateWorkloadAffinity`: label keys, not the same for both.
fn workload_affinity(workload: &WorkloadAffinity) -> Checked {
    let at = "spec.placement.workloadAffinity";
    for (name, term) in [
        ("affinity", &workload.affinity),
        ("antiAffinity", &workload.anti_affinity),
    ] {
        if let Some(term) = term {
            qualified_name(
                &format!("{at}.{name}.groupByLabelKey"),
                &term.group_by_label_key,
            )?;
        }
    }
    if let (Some(a), Some(b)) = (&workload.affinity, &workload.anti_affinity)
        && a.group_by_label_key == b.group_by_label_key
    {
        return refuse(
            at,
            "affinity and antiAffinity must not use the same groupByLabelKey",
        );
    }
    Ok(())
}

/// Karmada's `ValidateSpreadConstraint`, plus the CRD's enum and bounds.
fn spread_constraints(placement: &Placement) -> Checked {
    let mut by_cluster = false;
    let mut by_group = false;
    let mut seen = std::collections::BTreeSet::new();
    for (i, constraint) in placement.spread_constraints.iter().enumerate() {
        let at = format!("spec.placement.spreadConstraints[{i}]");
        let field = constraint.spread_by_field.as_deref().unwrap_or_default();
        let label = constraint.spread_by_label.as_deref().unwrap_or_default();
        if !field.is_empty() && !label.is_empty() {
            return refuse(
                at,
                format!(
                    "invalid constraints: SpreadByLabel({label}) and SpreadByField({field}) cannot be set at the same time"
                ),
            );
        }
        if !field.is_empty() {
            one_of(
                format!("{at}.spreadByField"),
                field,
                &["cluster", "region", "zone", "provider"],
            )?;
            if !seen.insert(field) {
                return refuse(
                    format!("{at}.spreadByField"),
                    format!("multiple {field} spread constraints are not allowed"),
                );
            }
        }
        if field == "cluster" {
            by_cluster = true;
        } else if !field.is_empty() {
            by_group = true;
        }
        let min = constraint.min_groups.unwrap_or(0);
        if min < 0 {
            return refuse(
                format!("{at}.minGroups"),
                "must be greater than or equal to 0",
            );
        }
        if let Some(max) = constraint.max_groups
            && max > 0
            && max < min
        {
            return refuse(
                format!("{at}.maxGroups"),
                "maxGroups lower than minGroups is not allowed",
            );
        }
    }
    if by_group && !by_cluster {
        return refuse(
            "spec.placement.spreadConstraints",
            "the cluster spread constraint must be enabled in one of the constraints in case of SpreadByField is enabled",
        );
    }
    Ok(())
}

fn cluster_affinity(at: &str, affinity: &ClusterAffinity) -> Checked {
    if let Some(labels) = &affinity.label_selector {
        label_selector(&format!("{at}.labelSelector"), labels)?;
    }
    if let Some(fields) = &affinity.field_selector {
        for (i, requirement) in fields.match_expressions.iter().enumerate() {
            let req = format!("{at}.fieldSelector.matchExpressions[{i}]");
            one_of(
                format!("{req}.key"),
                &requirement.key,
                &["provider", "region", "zone"],
            )?;
            one_of(
                format!("{req}.operator"),
                &requirement.operator,
                &["In", "NotIn"],
            )?;
        }
    }
    Ok(())
}

fn label_selector(at: &str, selector: &LabelSelector) -> Checked {
    for (i, requirement) in selector.match_expressions.iter().enumerate() {
        requirement_ok(&format!("{at}.matchExpressions[{i}]"), requirement)?;
    }
    Ok(())
}

/// A Kubernetes label selector requirement, as the API server checks it.
fn requirement_ok(at: &str, requirement: &SelectorRequirement) -> Checked {
    one_of(
        format!("{at}.operator"),
        &requirement.operator,
        &["In", "NotIn", "Exists", "DoesNotExist"],
    )?;
    let has_values = !requirement.values.is_empty();
    match (requirement.operator.as_str(), has_values) {
        ("In" | "NotIn", false) => refuse(
            format!("{at}.values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        ),
        ("Exists" | "DoesNotExist", true) => refuse(
            format!("{at}.values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        _ => Ok(()),
    }
}

/// Checks an OverridePolicy or ClusterOverridePolicy as Karmada's admission does.
///
/// # Errors
/// The first field Karmada would refuse.
pub(crate) fn override_policy(policy: &OverridePolicy) -> Checked {
    let spec = &policy.spec;
    let deprecated = spec.target_cluster.is_some() || spec.overriders.is_some();
    if !spec.override_rules.is_empty() && deprecated {
        return refuse(
            "spec.overrideRules",
            "overrideRules and (overriders or targetCluster) can't co-exist",
        );
    }
    let namespace = (!policy.is_cluster_scoped()).then(|| policy.metadata.namespace_or_default());
    resource_selectors(&spec.resource_selectors, namespace)?;
    if let Some(target) = &spec.target_cluster {
        cluster_affinity("spec.targetCluster", target)?;
    }
    if let Some(overriders) = &spec.overriders {
        self::overriders("spec.overriders", overriders)?;
    }
    for (i, rule) in spec.override_rules.iter().enumerate() {
        let at = format!("spec.overrideRules[{i}]");
        if let Some(target) = &rule.target_cluster {
            cluster_affinity(&format!("{at}.targetCluster"), target)?;
        }
        overriders(&format!("{at}.overriders"), &rule.overriders)?;
    }
    Ok(())
}

fn overriders(at: &str, overriders: &Overriders) -> Checked {
    const OPERATORS: &[&str] = &["add", "remove", "replace"];
    for (i, o) in overriders.plaintext.iter().enumerate() {
        let field = format!("{at}.plaintext[{i}]");
        one_of(format!("{field}.operator"), &o.operator, OPERATORS)?;
    }
    for (i, o) in overriders.image_overrider.iter().enumerate() {
        let field = format!("{at}.imageOverrider[{i}]");
        one_of(
            format!("{field}.component"),
            &o.component,
            &["Registry", "Repository", "Tag"],
        )?;
        one_of(format!("{field}.operator"), &o.operator, OPERATORS)?;
        if let Some(predicate) = &o.predicate {
            pointer(format!("{field}.predicate.path"), &predicate.path)?;
        }
    }
    for (name, list) in [
        ("commandOverrider", &overriders.command_overrider),
        ("argsOverrider", &overriders.args_overrider),
    ] {
        for (i, o) in list.iter().enumerate() {
            let field = format!("{at}.{name}[{i}]");
            one_of(format!("{field}.operator"), &o.operator, &["add", "remove"])?;
            if o.container_name.is_empty() {
                return refuse(format!("{field}.containerName"), "must not be empty");
            }
        }
    }
    for (name, list, labels) in [
        ("labelsOverrider", &overriders.labels_overrider, true),
        (
            "annotationsOverrider",
            &overriders.annotations_overrider,
            false,
        ),
    ] {
        for (i, o) in list.iter().enumerate() {
            let field = format!("{at}.{name}[{i}]");
            one_of(format!("{field}.operator"), &o.operator, OPERATORS)?;
            for (key, value) in &o.value {
                qualified_name(&format!("{field}.value"), key)?;
                if labels {
                    label_value(&format!("{field}.value.{key}"), value)?;
                }
            }
        }
    }
    for (i, o) in overriders.field_overrider.iter().enumerate() {
        let field = format!("{at}.fieldOverrider[{i}]");
        pointer(format!("{field}.fieldPath"), &o.field_path)?;
        if !o.json.is_empty() && !o.yaml.is_empty() {
            return refuse(
                field,
                "FieldOverrider has both YAML and JSON set. Only one is allowed",
            );
        }
        for (j, op) in o.json.iter().chain(&o.yaml).enumerate() {
            let list = if j < o.json.len() { "json" } else { "yaml" };
            let k = if j < o.json.len() {
                j
            } else {
                j - o.json.len()
            };
            let at = format!("{field}.{list}[{k}]");
            one_of(format!("{at}.operator"), &op.operator, OPERATORS)?;
            pointer(format!("{at}.subPath"), &op.sub_path)?;
            match (op.operator.as_str(), &op.value) {
                ("add" | "replace", None) => {
                    return refuse(
                        format!("{at}.value"),
                        "value is required for add or replace operation",
                    );
                }
                ("remove", Some(_)) => {
                    return refuse(
                        format!("{at}.value"),
                        "value is not allowed for remove operation",
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
