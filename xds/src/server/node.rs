//! What a client's `Node` says about it: its locality, network, listener port and labels.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

use crate::cache::restrict_labels;
use crate::model::{ClientKey, Locality};

/// Node metadata keys meshfleet reads.
pub const META_NETWORK: &str = "NETWORK";
pub const META_LISTENER_PORT: &str = "MESHFLEET_LISTENER_PORT";
pub const META_LABELS: &str = "LABELS";
/// istio-agent's name for the cluster a proxy runs in, and for its Kubernetes node.
pub(super) const META_CLUSTER_ID: &str = "CLUSTER_ID";
pub(super) const META_NODE_NAME: &str = "NODE_NAME";
/// Istio's capture mode: `REDIRECT` (the default), `TPROXY` or `NONE` (no capture).
pub(super) const META_INTERCEPTION_MODE: &str = "INTERCEPTION_MODE";

/// `meshfleet_outbound` listens here unless the node says otherwise.
pub const DEFAULT_LISTENER_PORT: u32 = 15001;

/// Node metadata that cannot be used; the stream is refused with `invalid_argument`.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node metadata {META_LISTENER_PORT}: {value} is not a port number")]
    ParseListenerPort { value: String },
    #[error("node metadata {META_NETWORK}: expected a string")]
    ParseNetwork,
    #[error("node metadata {META_LABELS}: expected a struct of strings")]
    ParseLabels,
}

/// A client as its first request describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInfo {
    /// `node.id`; empty if the client sent none.
    pub id: String,
    pub locality: Locality,
    pub network: String,
    pub listener_port: u32,
    /// All labels from `LABELS`, with those Istio derives from the locality, cluster, node
    /// and network (its `AugmentLabels`); the key keeps only those some `failoverPriority`
    /// names.
    pub labels: BTreeMap<String, String>,
    /// Set by the stream when the transport verified the client and SDS serves it.
    pub secure: bool,
    /// `INTERCEPTION_MODE: NONE`: nothing captures the client's connections, so the listeners
    /// of virtual IPs bind their addresses. Any other value is capture, as Istio reads it
    /// (`Proxy.GetInterceptionMode`: an unknown mode is `REDIRECT`).
    pub bind_vips: bool,
}

impl NodeInfo {
    pub fn parse(node: &Node) -> Result<Self, NodeError> {
        let empty = Struct::default();
        let meta = node.metadata.as_ref().unwrap_or(&empty);
        let locality = node.locality.as_ref().map_or_else(Locality::default, |l| {
            Locality::new(&l.region, &l.zone, &l.sub_zone)
        });
        let network = network(meta.fields.get(META_NETWORK))?;
        let mut labels = labels(meta.fields.get(META_LABELS))?;
        let text = |key: &str| match meta.fields.get(key).and_then(|v| v.kind.as_ref()) {
            Some(Kind::StringValue(s)) => s.clone(),
            _ => String::new(),
        };
        augment_labels(
            &mut labels,
            &locality,
            &text(META_CLUSTER_ID),
            &text(META_NODE_NAME),
            &network,
        );
        Ok(Self {
            id: node.id.clone(),
            locality,
            network,
            listener_port: listener_port(meta.fields.get(META_LISTENER_PORT))?,
            labels,
            secure: false,
            bind_vips: text(META_INTERCEPTION_MODE) == "NONE",
        })
    }

    /// The cache key of this client, given the label keys the mesh currently cares about.
    pub fn key(&self, label_keys: &BTreeSet<String>) -> ClientKey {
        ClientKey {
            locality: self.locality.clone(),
            network: self.network.clone(),
            listener_port: self.listener_port,
            labels: restrict_labels(&self.labels, label_keys),
            secure: self.secure,
            bind_vips: self.bind_vips,
        }
    }
}

/// Istio's `AugmentLabels` (`pilot/pkg/serviceregistry/util/label`): a client that sends only
/// its locality still matches `failoverPriority` on the topology labels. The locality, cluster
/// and node replace labels of the same name; the network is added only when no label gives it.
fn augment_labels(
    labels: &mut BTreeMap<String, String>,
    locality: &Locality,
    cluster: &str,
    node: &str,
    network: &str,
) {
    let mut set = |key: &str, value: &str| {
        if !value.is_empty() {
            labels.insert(key.to_owned(), value.to_owned());
        }
    };
    set("topology.kubernetes.io/region", &locality.region);
    set("topology.kubernetes.io/zone", &locality.zone);
    set("topology.istio.io/subzone", &locality.subzone);
    set("topology.istio.io/cluster", cluster);
    set("kubernetes.io/hostname", node);
    if !network.is_empty()
        && labels
            .get("topology.istio.io/network")
            .is_none_or(String::is_empty)
    {
        labels.insert("topology.istio.io/network".to_owned(), network.to_owned());
    }
}

fn network(value: Option<&Value>) -> Result<String, NodeError> {
    match value.and_then(|v| v.kind.as_ref()) {
        None | Some(Kind::NullValue(_)) => Ok(String::new()),
        Some(Kind::StringValue(s)) => Ok(s.clone()),
        Some(_) => Err(NodeError::ParseNetwork),
    }
}

/// `MESHFLEET_LISTENER_PORT`: a string or a number in 1..=65535; absent = 15001.
fn listener_port(value: Option<&Value>) -> Result<u32, NodeError> {
    let invalid = |value: String| NodeError::ParseListenerPort { value };
    let port = match value.and_then(|v| v.kind.as_ref()) {
        None | Some(Kind::NullValue(_)) => return Ok(DEFAULT_LISTENER_PORT),
        Some(Kind::StringValue(s)) => s
            .trim()
            .parse::<u32>()
            .map_err(|_| invalid(format!("{s:?}")))?,
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && *n >= 0.0 && *n <= 65535.0 => *n as u32,
        Some(Kind::NumberValue(n)) => return Err(invalid(n.to_string())),
        Some(other) => return Err(invalid(format!("{other:?}"))),
    };
    if port == 0 || port > 65535 {
        return Err(invalid(port.to_string()));
    }
    Ok(port)
}

fn labels(value: Option<&Value>) -> Result<BTreeMap<String, String>, NodeError> {
    let fields = match value.and_then(|v| v.kind.as_ref()) {
        None | Some(Kind::NullValue(_)) => return Ok(BTreeMap::new()),
        Some(Kind::StructValue(s)) => &s.fields,
        Some(_) => return Err(NodeError::ParseLabels),
    };
    fields
        .iter()
        .map(|(k, v)| match &v.kind {
            Some(Kind::StringValue(s)) => Ok((k.clone(), s.clone())),
            _ => Err(NodeError::ParseLabels),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::Locality as PbLocality;

    fn value(kind: Kind) -> Value {
        Value { kind: Some(kind) }
    }

    fn node(meta: &[(&str, Kind)]) -> Node {
        Node {
            id: "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local".into(),
            locality: Some(PbLocality {
                region: "us-east".into(),
                zone: "us-east-1a".into(),
                sub_zone: "rack1".into(),
            }),
            metadata: Some(Struct {
                fields: meta
                    .iter()
                    .map(|(k, v)| (k.to_string(), value(v.clone())))
                    .collect(),
            }),
            ..Default::default()
        }
    }

    fn labels_struct(pairs: &[(&str, &str)]) -> Kind {
        Kind::StructValue(Struct {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), value(Kind::StringValue(v.to_string()))))
                .collect(),
        })
    }

    #[test]
    fn labels_are_derived_from_the_locality_cluster_node_and_network_as_istio_does() {
        let info = NodeInfo::parse(&node(&[
            (META_NETWORK, Kind::StringValue("net-a".into())),
            (META_CLUSTER_ID, Kind::StringValue("east-1".into())),
            (META_NODE_NAME, Kind::StringValue("node-7".into())),
            (
                META_LABELS,
                labels_struct(&[("app", "a"), ("topology.kubernetes.io/zone", "stale")]),
            ),
        ]))
        .unwrap();
        let expected: BTreeMap<String, String> = [
            ("app", "a"),
            ("kubernetes.io/hostname", "node-7"),
            ("topology.istio.io/cluster", "east-1"),
            ("topology.istio.io/network", "net-a"),
            ("topology.istio.io/subzone", "rack1"),
            ("topology.kubernetes.io/region", "us-east"),
            ("topology.kubernetes.io/zone", "us-east-1a"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(info.labels, expected);
        // A network label of the proxy's own wins over its NETWORK metadata.
        let info = NodeInfo::parse(&node(&[
            (META_NETWORK, Kind::StringValue("net-a".into())),
            (
                META_LABELS,
                labels_struct(&[("topology.istio.io/network", "net-b")]),
            ),
        ]))
        .unwrap();
        assert_eq!(info.labels["topology.istio.io/network"], "net-b");
        // failoverPriority on the zone: a client that sends only its locality is keyed by it.
        let keys = BTreeSet::from(["topology.kubernetes.io/zone".to_owned()]);
        let key = NodeInfo::parse(&node(&[])).unwrap().key(&keys);
        assert_eq!(
            key.labels,
            BTreeMap::from([(
                "topology.kubernetes.io/zone".to_owned(),
                "us-east-1a".to_owned()
            )])
        );
    }

    #[test]
    fn reads_locality_network_port_and_labels() {
        let n = node(&[
            (META_NETWORK, Kind::StringValue("net-a".into())),
            (META_LISTENER_PORT, Kind::StringValue("18080".into())),
            (
                META_LABELS,
                labels_struct(&[("app", "a"), ("tier", "gold")]),
            ),
        ]);
        let info = NodeInfo::parse(&n).unwrap();
        let keys = BTreeSet::from(["tier".to_owned()]);
        assert_eq!(
            info.key(&keys),
            ClientKey {
                locality: Locality::new("us-east", "us-east-1a", "rack1"),
                network: "net-a".into(),
                listener_port: 18080,
                labels: BTreeMap::from([("tier".to_owned(), "gold".to_owned())]),
                secure: false,
                bind_vips: false,
            }
        );
        assert_eq!(info.id, n.id);
    }

    #[test]
    fn defaults_without_metadata_or_node_id() {
        let info = NodeInfo::parse(&Node::default()).unwrap();
        assert_eq!(info.id, "");
        assert_eq!(info.listener_port, DEFAULT_LISTENER_PORT);
        assert_eq!(
            info.key(&BTreeSet::new()),
            ClientKey {
                listener_port: 15001,
                ..Default::default()
            }
        );
    }

    #[test]
    fn port_may_be_a_number() {
        let n = node(&[(META_LISTENER_PORT, Kind::NumberValue(15002.0))]);
        assert_eq!(NodeInfo::parse(&n).unwrap().listener_port, 15002);
    }

    #[test]
    fn bad_metadata_names_the_field() {
        for bad in [
            Kind::StringValue("http".into()),
            Kind::StringValue("0".into()),
            Kind::NumberValue(70000.0),
            Kind::NumberValue(1.5),
            Kind::BoolValue(true),
        ] {
            let err = NodeInfo::parse(&node(&[(META_LISTENER_PORT, bad)])).unwrap_err();
            assert!(err.to_string().contains(META_LISTENER_PORT), "{err}");
        }
        let err = NodeInfo::parse(&node(&[(META_NETWORK, Kind::NumberValue(1.0))])).unwrap_err();
        assert!(err.to_string().contains(META_NETWORK));
        let err =
            NodeInfo::parse(&node(&[(META_LABELS, Kind::StringValue("a=b".into()))])).unwrap_err();
        assert!(err.to_string().contains(META_LABELS));
    }
}
