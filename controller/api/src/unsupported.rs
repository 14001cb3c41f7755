//! Fields of Karmada's policy API (Karmada 1.18, `pkg/apis/policy/v1alpha1`) that meshfleet
//! reads but does not act on. A policy that sets one loads, and each is reported once, naming
//! what Karmada would do that meshfleet does not, so the user does not take it for a typo
//! (an unknown field refuses the policy) nor for something that works.

use serde_norway::Value;

use super::Note;

/// What a PropagationPolicy sets that meshfleet does not act on.
pub(crate) fn propagation_policy(value: &Value) -> Vec<Note> {
    const SPEC: &[(&str, &str)] = &[
        (
            "association",
            "deprecated by Karmada in favour of propagateDeps, and read by neither",
        ),
        (
            "conflictResolution",
            "meshfleet does not check whether a member cluster already holds the resource",
        ),
        (
            "activationPreference",
            "a change to the policy takes effect at once, not when the resource next changes",
        ),
        (
            "preserveResourcesOnDeletion",
            "deleting the template removes its copies",
        ),
        (
            "schedulePriority",
            "it orders Karmada's scheduling queue; meshfleet plans every binding in one pass",
        ),
    ];
    let mut notes = Vec::new();
    let Some(spec) = value.get("spec") else {
        return notes;
    };
    for (field, why) in SPEC {
        if is_set(spec.get(*field)) {
            notes.push(note(format!("spec.{field}"), why));
        }
    }
    if let Some(name) = spec.get("schedulerName").and_then(Value::as_str)
        && !name.is_empty()
        && name != "default-scheduler"
    {
        notes.push(note(
            "spec.schedulerName".to_owned(),
            "meshfleet schedules every policy's resources itself",
        ));
    }
    if let Some(placement) = spec.get("placement") {
        placement_notes(placement, &mut notes);
    }
    if let Some(failover) = spec.get("failover") {
        for kind in ["application", "cluster"] {
            let preservation = failover.get(kind).and_then(|f| f.get("statePreservation"));
            if is_set(preservation) {
                notes.push(note(
                    format!("spec.failover.{kind}.statePreservation"),
                    "no state is carried to the cluster a workload fails over to",
                ));
            }
        }
    }
    notes
}

fn placement_notes(placement: &Value, notes: &mut Vec<Note>) {
    if is_set(placement.get("workloadAffinity")) {
        notes.push(note(
            "spec.placement.workloadAffinity".to_owned(),
            "the workload is scheduled without regard to other workloads",
        ));
    }
    let terms = placement
        .get("clusterAffinities")
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, term) in terms.iter().enumerate() {
        if is_set(term.get("overflowAffinities")) {
            notes.push(note(
                format!("spec.placement.clusterAffinities[{i}].overflowAffinities"),
                "only the term's own clusters are used, however full they are",
            ));
        }
    }
}

fn note(field: String, why: &str) -> Note {
    Note {
        field,
        message: format!("not supported by meshfleet ({why}); ignored"),
    }
}

/// Present, and not `null`, `false`, empty text or an empty collection.
fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Sequence(s)) => !s.is_empty(),
        Some(Value::Mapping(m)) => !m.is_empty(),
        Some(_) => true,
    }
}
