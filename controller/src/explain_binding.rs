//! `meshfleet explain --binding NS/KIND/NAME`: why each member cluster was chosen for a
//! propagated resource or filtered out (Karmada's filter reasons), how many replicas each runs,
//! and with `--without-cluster`, where they go once those clusters are gone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use meshfleet_api::ResourceBinding;
use meshfleet_index::Index;
use meshfleet_propagation::failover::{format_time, with_default_tolerations, with_health_taints};
use meshfleet_propagation::plan::plan;
use meshfleet_propagation::scheduler::filter_reason;
use serde::Serialize;

use crate::cli::Output;
use crate::explain::{ExplainArgs, Refused};

/// How long after a failure the what-if looks: past Karmada's default not-ready toleration
/// (300 s) and its graceful eviction timeout (600 s).
const FAILOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(900);

/// One member cluster's part.
#[derive(Debug, Serialize)]
struct ClusterVerdict {
    cluster: String,
    /// `selected`, `feasible` (passed the filters, not chosen by spread or division), or
    /// `filtered`.
    verdict: &'static str,
    /// The filter that stopped it, in Karmada's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    replicas: i32,
    /// Replicas after the what-if; `None` when none was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<i32>,
}

#[derive(Debug, Serialize)]
struct Explanation {
    binding: String,
    replicas: i32,
    scheduled: String,
    clusters: Vec<ClusterVerdict>,
    /// The clusters the what-if fails.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    without: Vec<String>,
    /// The binding's `Scheduled` condition after the what-if, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_after: Option<String>,
}

pub fn run(args: &ExplainArgs, wanted: &str, index: &Index) -> anyhow::Result<String> {
    let parts: Vec<&str> = wanted.splitn(3, '/').collect();
    let [namespace, kind, name] = parts[..] else {
        return Err(Refused(format!(
            "--binding {wanted:?}: expected NAMESPACE/KIND/NAME"
        ))
        .into());
    };
    let now = SystemTime::now();
    let before = plan(index, &Default::default(), now);
    let find = |bindings: &meshfleet_propagation::plan::Bindings| {
        bindings
            .values()
            .find(|b| {
                let r = &b.spec.resource;
                r.namespace.as_deref().unwrap_or_default() == namespace
                    && r.kind.eq_ignore_ascii_case(kind)
                    && r.name == name
            })
            .cloned()
    };
    let Some(binding) = find(&before.bindings) else {
        let known: Vec<String> = before
            .bindings
            .values()
            .map(|b| {
                let r = &b.spec.resource;
                format!(
                    "{}/{}/{}",
                    r.namespace.as_deref().unwrap_or_default(),
                    r.kind,
                    r.name
                )
            })
            .collect();
        return Err(Refused(format!(
            "no propagated resource {wanted:?} (there are: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    for cluster in &args.without_cluster {
        if index.cluster(cluster).is_none() {
            return Err(Refused(format!("--without-cluster {cluster:?}: no such Cluster")).into());
        }
    }

    // What-if: the clusters fail (Ready=False from now on); plan again from the current
    // bindings once the not-ready taint's toleration has run out, as Karmada's taint manager
    // evicts and its scheduler places the replicas again.
    let after = (!args.without_cluster.is_empty()).then(|| {
        let mut failed = index.snapshot_without(&[]);
        for name in &args.without_cluster {
            let Some(cluster) = index.cluster(name) else {
                continue;
            };
            let mut down = (**cluster).clone();
            down.status.conditions.retain(|c| c.type_ != "Ready");
            down.status.conditions.push(meshfleet_api::Condition {
                type_: "Ready".to_owned(),
                status: "False".to_owned(),
                reason: Some("WhatIf".to_owned()),
                message: Some("meshfleet explain --without-cluster".to_owned()),
                last_transition_time: Some(format_time(now)),
            });
            // Defined again from an origin that sorts after every file and watch, so that this
            // definition is the one in effect whatever document defined the cluster.
            let what_if = meshfleet_index::Origin::cluster("~meshfleet-explain-what-if");
            failed.apply(
                &what_if,
                meshfleet_api::Object::Cluster(std::sync::Arc::new(down)),
            );
        }
        let later = now + FAILOVER_WAIT;
        let planned = plan(&failed, &before.bindings, later);
        find(&planned.bindings)
    });
    let after = after.flatten();

    let explanation = explain(&binding, after.as_deref(), index, args, now);
    Ok(match args.output {
        Output::Json => serde_json::to_string_pretty(&explanation)? + "\n",
        Output::Table => table(&explanation),
    })
}

fn scheduled(binding: &ResourceBinding) -> String {
    binding
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Scheduled")
        .map(|c| {
            if c.status == "True" {
                "Scheduled".to_owned()
            } else {
                format!("{}: {}", c.reason, c.message)
            }
        })
        .unwrap_or_else(|| "not scheduled".to_owned())
}

fn explain(
    binding: &ResourceBinding,
    after: Option<&ResourceBinding>,
    index: &Index,
    args: &ExplainArgs,
    now: SystemTime,
) -> Explanation {
    let replicas: BTreeMap<&str, i32> = binding
        .spec
        .clusters
        .iter()
        .map(|t| (t.name.as_str(), t.replicas))
        .collect();
    let after_replicas: Option<BTreeMap<&str, i32>> = after.map(|b| {
        b.spec
            .clusters
            .iter()
            .map(|t| (t.name.as_str(), t.replicas))
            .collect()
    });
    let mut placement = binding.spec.placement.clone().unwrap_or_default();
    placement.cluster_tolerations = with_default_tolerations(&placement.cluster_tolerations);
    let observed = binding.status.scheduler_observed_affinity_name.as_deref();
    let affinity = match observed {
        Some(name) => placement
            .cluster_affinities
            .iter()
            .find(|t| t.affinity_name == name)
            .map(|t| &t.affinity),
        None => placement
            .cluster_affinity
            .as_ref()
            .or_else(|| placement.cluster_affinities.first().map(|t| &t.affinity)),
    };
    let evicting: Vec<&str> = binding
        .spec
        .graceful_eviction_tasks
        .iter()
        .map(|t| t.from_cluster.as_str())
        .collect();
    let mut clusters: Vec<_> = index.clusters().collect();
    clusters.sort_by_key(|c| c.name().to_owned());
    let verdicts = clusters
        .into_iter()
        .map(|cluster| {
            let name = cluster.name();
            let effective = with_health_taints(cluster, now);
            let held = replicas.contains_key(name);
            let reason = filter_reason(
                &placement,
                affinity,
                &effective,
                held,
                evicting.contains(&name),
            );
            let verdict = match (&reason, held) {
                (_, true) => "selected",
                (None, false) => "feasible",
                (Some(_), false) => "filtered",
            };
            ClusterVerdict {
                cluster: name.to_owned(),
                verdict,
                reason: if held { None } else { reason },
                replicas: replicas.get(name).copied().unwrap_or(0),
                after: after_replicas
                    .as_ref()
                    .map(|a| a.get(name).copied().unwrap_or(0)),
            }
        })
        .collect();
    let r = &binding.spec.resource;
    let scheduled_before = scheduled(binding);
    let scheduled_after = after.map(scheduled).filter(|s| *s != scheduled_before);
    Explanation {
        binding: format!(
            "{}/{}/{}",
            r.namespace.as_deref().unwrap_or_default(),
            r.kind,
            r.name
        ),
        replicas: binding.spec.replicas,
        scheduled: scheduled_before,
        clusters: verdicts,
        without: args.without_cluster.clone(),
        scheduled_after,
    }
}

fn table(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} replicas): {}",
        e.binding, e.replicas, e.scheduled
    );
    let what_if = !e.without.is_empty();
    if what_if {
        let _ = writeln!(
            out,
            "after: {} not ready past Karmada's toleration, its copies evicted",
            e.without.join(", ")
        );
        if let Some(s) = &e.scheduled_after {
            let _ = writeln!(out, "then: {s}");
        }
    }
    let _ = writeln!(
        out,
        "{:<16} {:<9} {:>8} {:>6}  WHY",
        "CLUSTER",
        "VERDICT",
        "REPLICAS",
        if what_if { "AFTER" } else { "" }
    );
    for c in &e.clusters {
        let after = match (what_if, c.after) {
            (false, _) => String::new(),
            (true, Some(n)) => n.to_string(),
            (true, None) => "-".to_owned(),
        };
        let why = match (c.verdict, &c.reason) {
            ("selected", _) => "chosen by the placement".to_owned(),
            ("feasible", _) => "passed the filters; not chosen by spread or division".to_owned(),
            (_, Some(r)) => r.clone(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<9} {:>8} {:>6}  {why}",
            c.cluster, c.verdict, c.replicas, after
        );
    }
    out
}
