//! A typed, encoded xDS resource with a content version, and the type URLs meshfleet serves.

use envoy_types::pb::google::protobuf::Any;
use prost::Message;

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// Istio's debug type: the ADS stream answers it with every client's sync status.
pub const SYNCZ: &str = "istio.io/debug/syncz";

/// The types a snapshot holds, in the order a new client must receive them: clusters before
/// their endpoints, listeners before their routes.
pub const SNAPSHOT_TYPES: [&str; 4] = [CLUSTER, ENDPOINT, LISTENER, ROUTE];

/// One resource ready to send: its name, its content version and its encoded body.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: String,
    /// Hash of the encoded body: equal content gives an equal version on every instance.
    pub version: String,
    pub body: Any,
}

impl Resource {
    /// Encodes `msg` as a resource of type `type_url`.
    pub fn new(name: impl Into<String>, type_url: &str, msg: &impl Message) -> Self {
        let value = msg.encode_to_vec();
        let version = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&value));
        Self {
            name: name.into(),
            version,
            body: Any {
                type_url: type_url.to_owned(),
                value,
            },
        }
    }

    pub fn type_url(&self) -> &str {
        &self.body.type_url
    }
}
