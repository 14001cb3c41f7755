//! A typed, encoded xDS resource with a content version, and the type URLs meshfleet serves.
//!
//! A resource's encoded body is a [`Body`]: a rope of [`Bytes`] chunks whose concatenation is
//! the protobuf encoding. Most resources are one chunk. A load assignment is several: the
//! encoded endpoints of each locality are chunks shared by every client key that sees them
//! alike, between a few bytes of the key's own (locality weight, priority, lengths):
//!
//! ```text
//!  ClusterLoadAssignment of key K:
//!   [own: cluster_name, endpoints#1 tag+len] [shared: locality + lb_endpoints of l1]
//!   [own: weight, priority of l1, endpoints#2 tag+len] [shared: ... of l2] [own: ...]
//! ```
//!
//! Protobuf allows a message to be written field by field, so the concatenation is exactly
//! what encoding the whole message at once gives: the bytes and the version are the same as
//! if each key had encoded its own copy.

use bytes::Bytes;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use xxhash_rust::xxh3::Xxh3;

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// Istio's DNS name table (NDS), for istio-agent's DNS proxy: one resource, without a name.
pub const NAME_TABLE: &str = "type.googleapis.com/istio.networking.nds.v1.NameTable";
/// Istio's debug type: the ADS stream answers it with every client's sync status.
pub const SYNCZ: &str = "istio.io/debug/syncz";

/// How many types a snapshot holds.
pub const TYPES: usize = 6;

/// The types a snapshot holds, in the order a new client must receive them: clusters before
/// their endpoints, listeners before their routes. Secrets are per client, never in the
/// cache's snapshots: a stream with a verified identity adds its own (`crate::server::Peer`).
/// The name table comes last: only istio-agent asks for it, and nothing refers to it.
pub const SNAPSHOT_TYPES: [&str; TYPES] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, NAME_TABLE];

/// One resource ready to send: its name, its content version and its encoded body.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: String,
    /// Hash of the encoded body: equal content gives an equal version on every instance.
    pub version: String,
    pub body: Body,
}

/// An encoded message of one type, as chunks to be sent one after the other.
///
/// # Guarantees
/// Two bodies are equal when their type URLs and concatenated bytes are, however they are
/// chunked.
#[derive(Clone, Debug)]
pub struct Body {
    /// One of the type URLs above.
    type_url: &'static str,
    /// The encoding, in order; chunks may be shared with other resources' bodies.
    chunks: Box<[Bytes]>,
    /// Total length of `chunks`.
    len: usize,
}

impl Resource {
    /// Encodes `msg` as a resource of type `type_url`.
    pub fn new(name: impl Into<String>, type_url: &'static str, msg: &impl Message) -> Self {
        Self::from_chunks(name, type_url, vec![Bytes::from(msg.encode_to_vec())])
    }

    /// A resource whose encoding is the concatenation of `chunks`; its version is the hash of
    /// that concatenation, equal to the one [`Resource::new`] gives for the same bytes.
    pub fn from_chunks(
        name: impl Into<String>,
        type_url: &'static str,
        chunks: Vec<Bytes>,
    ) -> Self {
        let mut hash = Xxh3::new();
        for c in &chunks {
            hash.update(c);
        }
        let body = Body {
            type_url,
            len: chunks.iter().map(Bytes::len).sum(),
            chunks: chunks.into_boxed_slice(),
        };
        Self {
            name: name.into(),
            version: format!("{:016x}", hash.digest()),
            body,
        }
    }

    pub fn type_url(&self) -> &str {
        self.body.type_url
    }
}

impl Body {
    /// The chunks, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoding in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for c in self.chunks.iter() {
            out.extend_from_slice(c);
        }
        out
    }

    /// The body as it goes on the wire: a copy of its bytes in an `Any`.
    pub fn to_any(&self) -> Any {
        Any {
            type_url: self.type_url.to_owned(),
            value: self.to_vec(),
        }
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        if self.type_url != other.type_url || self.len != other.len {
            return false;
        }
        let same_chunks = self.chunks.len() == other.chunks.len()
            && self.chunks.iter().zip(other.chunks.iter()).all(|(a, b)| {
                a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
            });
        same_chunks || self.to_vec() == other.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

    #[test]
    fn chunked_body_has_the_version_and_bytes_of_the_whole() {
        let cla = ClusterLoadAssignment {
            cluster_name: "outbound|80||a.ns.global".to_owned(),
            ..Default::default()
        };
        let whole = Resource::new("a", ENDPOINT, &cla);
        let bytes = cla.encode_to_vec();
        let (head, tail) = bytes.split_at(5);
        let chunked = Resource::from_chunks(
            "a",
            ENDPOINT,
            vec![Bytes::copy_from_slice(head), Bytes::copy_from_slice(tail)],
        );
        assert_eq!(chunked, whole);
        assert_eq!(chunked.version, whole.version);
        assert_eq!(chunked.body.to_any(), whole.body.to_any());
        assert_eq!(whole.body.to_any().value, bytes);
    }

    #[test]
    fn bodies_of_other_types_or_bytes_differ() {
        let a = Resource::from_chunks("a", ENDPOINT, vec![Bytes::from_static(b"ab")]);
        let b = Resource::from_chunks("a", CLUSTER, vec![Bytes::from_static(b"ab")]);
        let c = Resource::from_chunks("a", ENDPOINT, vec![Bytes::from_static(b"ac")]);
        assert_ne!(a.body, b.body);
        assert_ne!(a.body, c.body);
    }
}
