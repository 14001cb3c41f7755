//! What each connected client has been sent and has acknowledged: for the admin page
//! ([`ClientStatus`]) and for Istio's `istio.io/debug/syncz` ([`client_config`]).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::admin::v3::UpdateFailureState;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::status::v3::{ClientConfig, ConfigStatus, client_config};
use envoy_types::pb::google::protobuf::{Any, Timestamp};
use prost::{Message, Name};
use serde::{Serialize, Serializer};

use crate::model::Locality;
use crate::resource::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use crate::server::metrics::short_type;

/// Which ADS variant a stream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Sotw,
    Delta,
}

/// One connected client, as the admin page shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientStatus {
    pub node_id: String,
    pub locality: Locality,
    pub network: String,
    pub kind: StreamKind,
    /// The identity the mTLS port verified (SPIFFE ID of the client certificate); `None` on
    /// the plaintext port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub connected_at: SystemTime,
    /// Per short type name (`cds`, `eds`, `lds`, `rds`), for the types the client asked for.
    pub types: BTreeMap<&'static str, TypeStatus>,
    /// Responses computed for the client that the transport has not taken yet (at most one).
    pub queued_responses: usize,
    /// Their encoded size, in bytes.
    pub queued_bytes: usize,
}

/// The state of one type on one stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TypeStatus {
    /// Version of the last response sent; empty = none sent.
    pub version_sent: String,
    /// Version the client last acknowledged.
    pub version_acked: String,
    /// Nonce of the last response sent.
    pub nonce_sent: String,
    /// Nonce the client last acknowledged.
    pub nonce_acked: String,
    /// The client's last rejection, kept until the next one.
    pub last_nack: Option<Nack>,
}

/// A response the client rejected.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Nack {
    /// The rejected version.
    pub version: String,
    /// Nonce of the rejected response.
    pub nonce: String,
    /// The client's `error_detail.message`.
    pub message: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
}

impl TypeStatus {
    /// Istio's sync status: NOT_SENT, SYNCED (last response acknowledged), ERROR (last
    /// response rejected) or STALE (not acknowledged yet).
    pub fn config_status(&self) -> ConfigStatus {
        if self.nonce_sent.is_empty() {
            ConfigStatus::NotSent
        } else if self.nonce_acked == self.nonce_sent {
            ConfigStatus::Synced
        } else if self
            .last_nack
            .as_ref()
            .is_some_and(|n| n.nonce == self.nonce_sent)
        {
            ConfigStatus::Error
        } else {
            ConfigStatus::Stale
        }
    }
}

/// Types in the order istiod lists them in syncz.
const SYNCZ_TYPES: [&str; 4] = [LISTENER, ROUTE, ENDPOINT, CLUSTER];

/// The client as `istioctl proxy-status --xds-address` reads it: node id and metadata, and per
/// type the version sent and the sync status (as istiod's `pilot/pkg/xds/statusgen.go`).
pub(super) fn client_config(node: &Node, status: &ClientStatus) -> ClientConfig {
    let generic_xds_configs = SYNCZ_TYPES
        .iter()
        .map(|ty| {
            let ts = short_type(ty).and_then(|s| status.types.get(s));
            let ts = ts.cloned().unwrap_or_default();
            client_config::GenericXdsConfig {
                type_url: (*ty).to_owned(),
                version_info: ts.version_sent.clone(),
                config_status: ts.config_status().into(),
                error_state: ts.last_nack.as_ref().map(failure_state),
                ..Default::default()
            }
        })
        .collect();
    ClientConfig {
        node: Some(Node {
            id: node.id.clone(),
            metadata: node.metadata.clone(),
            locality: node.locality.clone(),
            ..Default::default()
        }),
        generic_xds_configs,
        ..Default::default()
    }
}

/// `config` packed as an `Any`.
pub(super) fn client_config_any(config: &ClientConfig) -> Any {
    Any {
        type_url: ClientConfig::type_url(),
        value: config.encode_to_vec(),
    }
}

fn failure_state(nack: &Nack) -> UpdateFailureState {
    UpdateFailureState {
        last_update_attempt: Some(timestamp(nack.at)),
        details: nack.message.clone(),
        version_info: nack.version.clone(),
        ..Default::default()
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_rfc3339(*t))
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` in UTC.
pub fn format_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let ms = d.subsec_millis();
    format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(format_rfc3339(t), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn config_status_follows_nonces() {
        let mut ts = TypeStatus::default();
        assert_eq!(ts.config_status(), ConfigStatus::NotSent);
        ts.nonce_sent = "1".into();
        assert_eq!(ts.config_status(), ConfigStatus::Stale);
        ts.nonce_acked = "1".into();
        assert_eq!(ts.config_status(), ConfigStatus::Synced);
        ts.nonce_sent = "2".into();
        ts.last_nack = Some(Nack {
            version: "v2".into(),
            nonce: "2".into(),
            message: "bad".into(),
            at: UNIX_EPOCH,
        });
        assert_eq!(ts.config_status(), ConfigStatus::Error);
    }
}
