//! `Cluster` (`meshfleet.io/v1alpha1`, and Karmada's `cluster.karmada.io/v1alpha1`): a member
//! cluster, its locality, network and east-west gateway, health and capacity.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ANNOTATION_EAST_WEST_GATEWAY, ObjectMeta, nullable};

/// Istio's port for east-west (cross-network) traffic.
pub(crate) const EAST_WEST_PORT: u32 = 15443;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub api_version: String,
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: ClusterSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub status: ClusterStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub region: Option<String>,
    /// Karmada's single zone (deprecated there in favour of `zones`).
    pub zone: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub zones: Vec<String>,
    /// meshfleet's: Istio's third locality level.
    pub subzone: Option<String>,
    pub provider: Option<String>,
    /// Istio network; endpoints on another network are reached through its east-west gateway.
    pub network: Option<String>,
    /// meshfleet's: where other networks reach this cluster.
    pub east_west_gateway: Option<EastWestGateway>,
    #[serde(default, deserialize_with = "nullable")]
    pub taints: Vec<Taint>,
    /// Karmada's: the member's API server, reached with the credentials of `secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,
    /// Karmada's: the Secret (in the gateway cluster) with the credentials to reach the member:
    /// a whole kubeconfig under `kubeconfig`, or Karmada's `token` and `caBundle` for
    /// `apiEndpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
    /// Karmada's: skip verifying the member API server's certificate (with `secretRef`'s token).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verification: bool,
    /// Karmada's `Push` (the default: meshfleet applies to the member) or `Pull` (`meshfleet
    /// agent` inside the member pulls its manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<String>,
}

/// A Secret by namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct SecretReference {
    #[serde(default)]
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EastWestGateway {
    pub address: String,
    #[serde(default = "east_west_port")]
    pub port: u32,
}

fn east_west_port() -> u32 {
    EAST_WEST_PORT
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
    /// RFC 3339; when a `NoExecute` taint's toleration period starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    #[serde(default, deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
    pub resource_summary: Option<ResourceSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339; when the status last changed (a not-ready cluster's taint dates from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// Karmada's `status.resourceSummary`: resource names (`cpu`, `memory`, `pods`) to Kubernetes
/// quantities, integers or strings (`8`, `500m`, `16Gi`), kept as written until the scheduler
/// reads them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(extend("additionalProperties" = { "x-kubernetes-int-or-string": true }))]
    pub allocatable: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(extend("additionalProperties" = { "x-kubernetes-int-or-string": true }))]
    pub allocated: BTreeMap<String, serde_json::Value>,
    /// Requested by pods not yet running.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(extend("additionalProperties" = { "x-kubernetes-int-or-string": true }))]
    pub allocating: BTreeMap<String, serde_json::Value>,
}

impl Cluster {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether the member pulls its manifests (`spec.syncMode: Pull`) rather than being written to.
    pub fn is_pull_mode(&self) -> bool {
        self.spec
            .sync_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("pull"))
    }

    /// Every zone of the cluster: `spec.zone` (Karmada's deprecated field), then `spec.zones`,
    /// each once, empty names left out. The one definition of a cluster's zones: scheduling
    /// (`--zone`, spread by zone), locality labels and the catalog all read it.
    pub fn zones(&self) -> Vec<&str> {
        let mut zones: Vec<&str> = Vec::new();
        let named = self.spec.zone.iter().chain(&self.spec.zones);
        for zone in named.map(String::as_str).filter(|z| !z.is_empty()) {
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        zones
    }

    /// The cluster's zone as a locality: the first of [`Cluster::zones`]. Endpoints of a cluster
    /// that spans zones carry their node's zone instead.
    pub fn zone(&self) -> Option<&str> {
        self.zones().first().copied()
    }

    /// The zone, when the cluster has exactly one.
    pub fn single_zone(&self) -> Option<&str> {
        match self.zones()[..] {
            [zone] => Some(zone),
            _ => None,
        }
    }

    pub fn region(&self) -> Option<&str> {
        self.spec.region.as_deref().filter(|r| !r.is_empty())
    }

    pub fn subzone(&self) -> Option<&str> {
        self.spec.subzone.as_deref().filter(|s| !s.is_empty())
    }

    /// The Istio network; empty = the default network.
    pub fn network(&self) -> &str {
        self.spec.network.as_deref().unwrap_or_default()
    }

    /// Whether the `Ready` condition is `True`.
    pub fn ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }

    /// The east-west gateway: `spec.eastWestGateway`, else the `meshfleet.io/east-west-gateway`
    /// annotation (`host[:port]`, port 15443 by default).
    ///
    /// The address is an IP, or a hostname (a cloud load balancer's DNS name, as Istio's
    /// `meshNetworks` allow) that `meshfleet run` resolves and refreshes by its TTL.
    ///
    /// # Errors
    /// The annotation does not parse, the address is neither an IP nor a valid hostname, or
    /// the port is out of range; the message says why.
    pub fn east_west_gateway(&self) -> Result<Option<EastWestGateway>, GatewayError> {
        let gateway = match &self.spec.east_west_gateway {
            Some(gateway) => Some(gateway.clone()),
            None => self
                .metadata
                .annotation(ANNOTATION_EAST_WEST_GATEWAY)
                .map(parse_host_port)
                .transpose()?,
        };
        if let Some(gateway) = &gateway {
            if gateway.address.parse::<std::net::IpAddr>().is_err()
                && !is_hostname(&gateway.address)
            {
                return Err(GatewayError::ParseAddress {
                    address: gateway.address.clone(),
                });
            }
            if !(1..=65535).contains(&gateway.port) {
                return Err(GatewayError::CheckPort { port: gateway.port });
            }
        }
        Ok(gateway)
    }
}

/// Why a Cluster's east-west gateway cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The annotation opens `[` without closing it.
    #[error("{value:?}: missing ']'")]
    CloseBracket { value: String },
    /// The annotation has something other than `:port` after `]`.
    #[error("{value:?}: expected ':' after ']'")]
    SeparatePort { value: String },
    /// The annotation has no host.
    #[error("{value:?}: empty host")]
    ParseHost { value: String },
    /// The annotation's port is not a number in 1..=65535.
    #[error("{value:?}: port {port:?} is not in 1..=65535")]
    ParsePort { value: String, port: String },
    /// The address is neither an IP nor a hostname.
    #[error(
        "east-west gateway {address:?} is neither an IP address nor a hostname (RFC 1123 labels \
         of letters, digits and '-', at most 63 bytes each and 253 in all)"
    )]
    ParseAddress { address: String },
    /// The port is out of range.
    #[error("east-west gateway port {port} is not in 1..=65535")]
    CheckPort { port: u32 },
}

impl EastWestGateway {
    /// The address when it is a hostname (to be resolved), not an IP.
    pub fn hostname(&self) -> Option<&str> {
        self.address
            .parse::<std::net::IpAddr>()
            .is_err()
            .then_some(self.address.as_str())
    }
}

/// An RFC 1123 hostname: dot-separated labels of ASCII letters, digits and `-`, not starting
/// or ending with `-`, 1 to 63 bytes each, 253 in all (a trailing dot allowed).
fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_host_port(value: &str) -> Result<EastWestGateway, GatewayError> {
    let value = value.trim();
    let owned = || value.to_owned();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| GatewayError::CloseBracket { value: owned() })?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| GatewayError::SeparatePort { value: owned() })?,
                ),
            ),
        }
    } else if value.matches(':').count() == 1 {
        let (host, port) = value.split_once(':').expect("one ':'");
        (host, Some(port))
    } else {
        (value, None)
    };
    if host.is_empty() {
        return Err(GatewayError::ParseHost { value: owned() });
    }
    let port = match port {
        None => EAST_WEST_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => u32::from(p),
            _ => {
                return Err(GatewayError::ParsePort {
                    value: owned(),
                    port: p.to_owned(),
                });
            }
        },
    };
    Ok(EastWestGateway {
        address: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(address: &str, port: u32) -> EastWestGateway {
        EastWestGateway {
            address: address.to_owned(),
            port,
        }
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(parse_host_port("10.0.0.1"), Ok(gw("10.0.0.1", 15443)));
        assert_eq!(parse_host_port("gw.east:8443"), Ok(gw("gw.east", 8443)));
        assert_eq!(parse_host_port("[fd00::1]:15443"), Ok(gw("fd00::1", 15443)));
        assert_eq!(parse_host_port("[fd00::1]"), Ok(gw("fd00::1", 15443)));
        assert_eq!(parse_host_port("fd00::1"), Ok(gw("fd00::1", 15443)));
        let message = |value: &str| parse_host_port(value).map_err(|e| e.to_string());
        assert_eq!(
            message("gw:x"),
            Err("\"gw:x\": port \"x\" is not in 1..=65535".to_owned())
        );
        assert_eq!(message(":80"), Err("\":80\": empty host".to_owned()));
    }
}
