//! `meshfleet catalog -o table`: one line per exported service, columns aligned as kubectl does.

use std::collections::BTreeSet;
use std::fmt::Write;

use meshfleet_model::{LocalityPolicy, Protocol};

use super::{Catalog, CatalogService, PolicySource, format_tier_weights};

const HEADER: [&str; 7] = [
    "GLOBAL NAME",
    "NAMESPACE",
    "PORTS",
    "CLUSTERS",
    "ENDPOINTS",
    "LOCALITIES",
    "POLICY",
];

pub(super) fn render(catalog: &Catalog) -> String {
    let rows: Vec<[String; 7]> = catalog.services.iter().map(|s| row(s)).collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}   ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(entry: &CatalogService) -> [String; 7] {
    let service = &entry.service;
    let ports = service
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.port, protocol(p.protocol)))
        .collect::<Vec<_>>();
    // Backends, not (backend, port) pairs: an address serving two ports is one endpoint here.
    let backends: BTreeSet<(&str, &str, bool)> = service
        .ports
        .iter()
        .flat_map(|p| &p.endpoints)
        .map(|e| (&*e.cluster, e.address.as_str(), e.ready))
        .collect();
    let total: BTreeSet<(&str, &str)> = backends.iter().map(|(c, a, _)| (*c, *a)).collect();
    let ready: BTreeSet<(&str, &str)> = backends
        .iter()
        .filter(|(_, _, ready)| *ready)
        .map(|(c, a, _)| (*c, *a))
        .collect();
    let localities = entry
        .localities()
        .into_iter()
        .map(|l| {
            let text = l.to_string();
            text.trim_end_matches('/').to_owned()
        })
        .collect::<Vec<_>>();
    [
        service.host.clone(),
        service.namespace.clone(),
        or_dash(ports.join(",")),
        or_dash(entry.clusters.join(",")),
        format!("{}/{}", ready.len(), total.len()),
        or_dash(localities.join(",")),
        policy(entry),
    ]
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

fn protocol(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http => "http",
        Protocol::Http2 => "http2",
        Protocol::Grpc => "grpc",
        Protocol::Tcp => "tcp",
    }
}

fn policy(entry: &CatalogService) -> String {
    match (&entry.service.locality, &entry.policy_source) {
        (LocalityPolicy::Tiers(tiers), PolicySource::Default) => {
            format!("{} (default)", format_tier_weights(tiers))
        }
        (LocalityPolicy::Tiers(tiers), _) => format_tier_weights(tiers),
        (LocalityPolicy::Istio(setting), source) => {
            let what = if setting.enabled == Some(false) {
                "disabled"
            } else if !setting.distribute.is_empty() {
                "distribute"
            } else if !setting.failover.is_empty() {
                "failover"
            } else if !setting.failover_priority.is_empty() {
                "failoverPriority"
            } else {
                "failover"
            };
            match source {
                PolicySource::DestinationRule { namespace, name } => {
                    format!("istio {what} (DestinationRule {namespace}/{name})")
                }
                _ => format!("istio {what}"),
            }
        }
    }
}
