//! `meshfleet explain`: the traffic split one client locality gets for one global service,
//! now or after a failure, as its Envoy computes it from what meshfleet serves it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use meshfleet_catalog::Catalog;
use meshfleet_model::{ClientKey, Locality, Mesh};
use meshfleet_xds::cache::failover_label_keys;
use meshfleet_xds::explain::{Failure, Split, split, zones};

use crate::cli::Output;

#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// Directory of YAML manifests.
    #[arg(long, value_name = "DIR")]
    pub config: PathBuf,
    /// The service: `<svc>.<ns>.global` or `<svc>.<ns>.svc.clusterset.local`, with `:<port>`
    /// for a port other than its first.
    #[arg(value_name = "HOST[:PORT]", required_unless_present = "binding")]
    pub host: Option<String>,
    /// The client's locality: `region/zone[/subzone]`.
    #[arg(long, value_name = "LOCALITY", required_unless_present = "binding")]
    pub from: Option<String>,
    /// Propagation instead: why each cluster was chosen or filtered for the resource
    /// `NAMESPACE/KIND/NAME`, and (with `--without-cluster`) where its replicas go then.
    #[arg(
        long,
        value_name = "NS/KIND/NAME",
        conflicts_with_all = ["host", "from", "network", "labels", "without_zone", "unready"]
    )]
    pub binding: Option<String>,
    /// The client's network (Istio's `NETWORK` node metadata).
    #[arg(long, default_value = "")]
    pub network: String,
    /// The client's labels, `key=value[,key=value...]`, for `failoverPriority`.
    #[arg(long, value_name = "LABELS", default_value = "")]
    pub labels: String,
    /// What if this zone's endpoints all fail (repeatable).
    #[arg(long, value_name = "ZONE")]
    pub without_zone: Vec<String>,
    /// What if this cluster's endpoints all fail (repeatable).
    #[arg(long, value_name = "CLUSTER")]
    pub without_cluster: Vec<String>,
    /// What if this percent of every locality's hosts fail.
    #[arg(long, value_name = "PERCENT", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub unready: u32,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The question cannot be answered as asked (an unknown host, locality, zone or cluster):
/// exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Runs `meshfleet explain`.
pub fn run(args: &ExplainArgs, index: &meshfleet_index::Index) -> anyhow::Result<String> {
    if let Some(binding) = &args.binding {
        return crate::explain_binding::run(args, binding, index);
    }
    let catalog = Catalog::build(index);
    let mesh = catalog.mesh();
    let (host, port) = split_port(args.host.as_deref().unwrap_or_default())?;
    let svc = find(&mesh, &host)?;
    let from = args.from.as_deref().unwrap_or_default();
    let locality = Locality::parse(from);
    let clusters: Vec<_> = index.clusters().collect();
    // Every zone a cluster names: a cluster spanning zones places its endpoints by node.
    let known: BTreeSet<(String, String)> = clusters
        .iter()
        .filter_map(|c| Some((c.region()?.to_owned(), c.zones())))
        .flat_map(|(region, zones)| {
            let zones: Vec<String> = if zones.is_empty() {
                vec![String::new()]
            } else {
                zones.into_iter().map(str::to_owned).collect()
            };
            zones.into_iter().map(move |z| (region.clone(), z))
        })
        .collect();
    if !known.contains(&(locality.region.clone(), locality.zone.clone())) {
        let list: Vec<String> = known.iter().map(|(r, z)| format!("{r}/{z}")).collect();
        return Err(Refused(format!(
            "no cluster is in locality {from:?} (known: {})",
            list.join(", ")
        ))
        .into());
    }
    let zones = zones(svc);
    let all_zones: BTreeSet<String> = known.iter().map(|(_, z)| z.clone()).chain(zones).collect();
    for zone in &args.without_zone {
        if !all_zones.contains(zone) {
            return Err(Refused(format!("--without-zone {zone:?}: no such zone")).into());
        }
    }
    let names: BTreeSet<&str> = clusters.iter().map(|c| c.name()).collect();
    for cluster in &args.without_cluster {
        if !names.contains(cluster.as_str()) {
            return Err(Refused(format!("--without-cluster {cluster:?}: no such Cluster")).into());
        }
    }
    let key = client_key(&mesh, locality, &args.network, &args.labels)?;
    let failure = Failure {
        zones: args.without_zone.iter().cloned().collect(),
        clusters: args.without_cluster.iter().cloned().collect(),
        unready_percent: args.unready,
    };
    let split = split(svc, port, &key, &failure).map_err(|e| Refused(e.to_string()))?;
    Ok(match args.output {
        Output::Json => serde_json::to_string_pretty(&split)? + "\n",
        Output::Table => table(&split, args, from),
    })
}

/// `host[:port]`.
fn split_port(host: &str) -> anyhow::Result<(String, Option<u32>)> {
    match host.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| Refused(format!("{host:?}: port {p:?} is not in 1..=65535")))?;
            Ok((h.to_owned(), Some(port)))
        }
        None => Ok((host.to_owned(), None)),
    }
}

/// The service named `host` (its `.global` host or an alias).
fn find<'a>(mesh: &'a Mesh, host: &str) -> anyhow::Result<&'a meshfleet_model::GlobalService> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    mesh.services
        .values()
        .find(|s| s.host == host || s.aliases.contains(&host))
        .map(|s| &**s)
        .ok_or_else(|| {
            let hosts: Vec<&str> = mesh.services.keys().map(String::as_str).collect();
            Refused(format!(
                "no global service {host:?} (there are: {})",
                if hosts.is_empty() {
                    "none".to_owned()
                } else {
                    hosts.join(", ")
                }
            ))
            .into()
        })
}

/// The cache key of a client at `locality` on `network` with `labels`, as the ADS server
/// would key it (topology labels added as Istio's `AugmentLabels` adds them).
fn client_key(
    mesh: &Mesh,
    locality: Locality,
    network: &str,
    labels: &str,
) -> anyhow::Result<ClientKey> {
    let mut all = BTreeMap::new();
    for pair in labels.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Refused(format!("--labels: {pair:?} is not key=value")))?;
        all.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(meshfleet_xds::explain::client_key(
        locality,
        network,
        all,
        &failover_label_keys(mesh),
    ))
}

fn table(split: &Split, args: &ExplainArgs, from: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} from {from}", split.cluster);
    let _ = writeln!(out, "rule: {}", split.rule);
    let mut what_if = Vec::new();
    what_if.extend(args.without_zone.iter().map(|z| format!("zone {z} down")));
    what_if.extend(
        args.without_cluster
            .iter()
            .map(|c| format!("cluster {c} down")),
    );
    if args.unready > 0 {
        what_if.push(format!(
            "{}% of every locality's hosts unready",
            args.unready
        ));
    }
    if !what_if.is_empty() {
        let _ = writeln!(out, "after: {}", what_if.join(", "));
    }
    let loads: Vec<String> = split
        .priority_load
        .iter()
        .enumerate()
        .map(|(p, l)| format!("P{p} {l}%"))
        .collect();
    let _ = writeln!(out, "priority load: {}", loads.join(", "));
    if split.no_healthy_host {
        let _ = writeln!(
            out,
            "no healthy host and panic mode off: requests fail (503, no healthy upstream)"
        );
    }
    if split.not_ejected > 0 {
        let _ = writeln!(
            out,
            "{} failed host(s) not ejected (outlier detection's max ejection percent, or none): \
             they keep their share and the requests sent to them fail",
            split.not_ejected
        );
    }
    if split.total_panic {
        let _ = writeln!(
            out,
            "no healthy host: Envoy spreads the load over all hosts (total panic)"
        );
    }
    let _ = writeln!(
        out,
        "{:<8} {:<32} {:>7} {:>9} {:>8} {:<9} VIA",
        "PRIORITY", "LOCALITY", "SHARE", "WEIGHT", "HEALTHY", "RELATION"
    );
    for l in &split.localities {
        let _ = writeln!(
            out,
            "{:<8} {:<32} {:>6.1}% {:>9} {:>8} {:<9} {}",
            l.priority,
            l.locality.to_string(),
            l.percent,
            l.weight,
            format!("{}/{}", l.healthy, l.hosts),
            l.relation,
            l.via_gateway.as_deref().unwrap_or("-"),
        );
    }
    out
}
