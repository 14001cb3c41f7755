//! East-west gateways given by hostname (a cloud load balancer's DNS name): resolved through
//! hickory-resolver, A and AAAA, and resolved again when their TTL runs out, as istiod resolves
//! `meshNetworks` gateway names (Istio 1.30 `pilot/pkg/model/network.go`): the TTL is kept
//! between a minimum (30 s by default) and an hour, a failed lookup keeps the last addresses,
//! and every change reaches the catalog, whose gateway endpoints move with it.
//!
//! ```text
//!  index (Clusters) ──gateway_hostnames──> names to resolve ──hickory──> addresses + TTL
//!        ^ config changed                                                     │
//!        └──────────── sleep until the first expiry ──────── catalog.set_gateway_addresses
//!                                                              └─ changed: wake the reconcile
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshfleet_catalog::{GatewayAddresses, Incremental, gateway_hostnames};
use meshfleet_dns::server::TokioResolver;
use meshfleet_index::Index;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Istio's `MinGatewayTTL`: the default least time between two lookups of a name.
pub const MIN_TTL: Duration = Duration::from_secs(30);
/// The least `--gateway-min-ttl` taken.
const FLOOR_TTL: Duration = Duration::from_millis(100);
/// Istio's `MaxGatewayTTL`.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// One name's last addresses and when to look it up again.
struct Entry {
    addresses: Vec<IpAddr>,
    refresh_at: Instant,
}

/// Resolves the gateway hostnames of the Clusters in `index` until the process ends; each
/// change of their addresses is handed to `catalog` and announced on `wake`.
pub async fn resolve_loop(
    index: Arc<Mutex<Index>>,
    catalog: Arc<Mutex<Incremental>>,
    resolver: TokioResolver,
    mut config_changed: watch::Receiver<u64>,
    wake: Arc<Notify>,
    min_ttl: Duration,
) {
    // A TTL of nothing would look the names up in a loop.
    let min_ttl = min_ttl.max(FLOOR_TTL);
    let mut names: BTreeMap<String, Entry> = BTreeMap::new();
    loop {
        // The index and the catalog are locked by the reconcile loop for a whole build: wait
        // for them on a blocking thread, not on one of the runtime's workers.
        let wanted = {
            let index = index.clone();
            tokio::task::spawn_blocking(move || {
                let index = index.lock().unwrap_or_else(|e| e.into_inner());
                gateway_hostnames(index.clusters())
            })
            .await
            .unwrap_or_default()
        };
        names.retain(|name, _| wanted.contains(name));
        let now = Instant::now();
        for name in &wanted {
            if names.get(name).is_some_and(|e| e.refresh_at > now) {
                continue;
            }
            let previous = names.remove(name).map(|e| e.addresses);
            names.insert(
                name.clone(),
                lookup(&resolver, name, previous, min_ttl).await,
            );
        }
        let addresses: GatewayAddresses = names
            .iter()
            .map(|(name, e)| (name.clone(), e.addresses.clone()))
            .collect();
        let changed = {
            let catalog = catalog.clone();
            tokio::task::spawn_blocking(move || {
                catalog
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_gateway_addresses(addresses)
            })
            .await
            .unwrap_or(false)
        };
        if changed {
            wake.notify_one();
        }
        let next = names.values().map(|e| e.refresh_at).min();
        tokio::select! {
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
            changed = config_changed.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Looks `name` up: its addresses (IPv4 first, each family sorted) until its TTL runs out,
/// kept between `min_ttl` and [`MAX_TTL`]; none when the name does not exist or has no
/// address; after another failure (no upstream answers), `previous` until `min_ttl`.
async fn lookup(
    resolver: &TokioResolver,
    name: &str,
    previous: Option<Vec<IpAddr>>,
    min_ttl: Duration,
) -> Entry {
    let fqdn = format!("{name}.");
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(found) => {
            let mut addresses: Vec<IpAddr> = found.iter().collect();
            addresses.sort_by_key(|ip| (ip.is_ipv6(), *ip));
            addresses.dedup();
            let ttl = found
                .valid_until()
                .saturating_duration_since(std::time::Instant::now())
                .clamp(min_ttl, MAX_TTL.max(min_ttl));
            if previous.as_ref() != Some(&addresses) {
                tracing::info!(name, ?addresses, ?ttl, "east-west gateway resolved");
            }
            Entry {
                addresses,
                refresh_at: Instant::now() + ttl,
            }
        }
        Err(error) if error.is_nx_domain() || error.is_no_records_found() => {
            // The name is gone (or has no address): so is the gateway, as with Istio.
            tracing::warn!(name, %error, "an east-west gateway name has no address");
            Entry {
                addresses: Vec::new(),
                refresh_at: Instant::now() + min_ttl,
            }
        }
        Err(error) => {
            tracing::warn!(name, %error, kept = ?previous, "cannot resolve an east-west gateway");
            Entry {
                addresses: previous.unwrap_or_default(),
                refresh_at: Instant::now() + min_ttl,
            }
        }
    }
}
