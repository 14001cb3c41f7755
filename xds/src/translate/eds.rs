//! EDS encoded once per network, assembled per client key from shared chunks.
//!
//! A `ClusterLoadAssignment` differs between two clients of one network only in each
//! locality's `load_balancing_weight` and `priority`: the localities and their endpoints are
//! the same. So [`ServiceEndpoints`] encodes, once per service and network, each locality's
//! `locality` and `lb_endpoints` fields into one [`Bytes`] buffer, and
//! [`ServiceEndpoints::load_assignments`] writes a key's load assignment as a rope of those
//! buffers and a few bytes of its own:
//!
//! ```text
//!  GlobalService ──groups(network)──> per port, per locality: EncodedGroup
//!                                       bytes = [locality (field 1)][lb_endpoints (field 2)...]
//!  ClientKey ──locality::assign over weight-only markers──> weight, priority per locality
//!  Resource body = [own: cluster_name, endpoints tag+len] [shared: bytes of l1]
//!                  [own: weight, priority; endpoints tag+len] [shared: bytes of l2] [own: ...]
//! ```
//!
//! Protobuf encodes a message's fields in tag order and accepts a field written as bytes, so
//! the rope is byte for byte what encoding the whole `ClusterLoadAssignment` gives, and so is
//! its version.
//!
//! # Markers
//! [`locality::assign`] only reads endpoint weights (and, for Istio's `failoverPriority`,
//! labels): it is given one marker endpoint per locality carrying the locality's weight, or,
//! when labels matter, one marker per endpoint whose `health_status` holds the endpoint's index
//! so that the endpoints of each split part can be found again. Those split parts are the only
//! endpoint bytes a key copies.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3::{LbEndpoint, LocalityLbEndpoints};
use envoy_types::pb::google::protobuf::UInt32Value;
use prost::Message;
use prost::encoding::{self, WireType};

use super::endpoints::{self, Group};
use super::unique_ports;
use crate::locality::{self, Labels, LocalityGroup};
use crate::model::{ClientKey, GlobalService, Locality};
use crate::resource::{self, Resource};

/// `ClusterLoadAssignment.cluster_name`.
const CLUSTER_NAME_FIELD: u32 = 1;
/// `ClusterLoadAssignment.endpoints`.
const ENDPOINTS_FIELD: u32 = 2;
/// `LocalityLbEndpoints.lb_endpoints`.
const LB_ENDPOINTS_FIELD: u32 = 2;

/// One service's endpoints as the clients of one network see them, encoded; shared by every
/// key on that network.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceEndpoints {
    /// Per unique port, in port order (as the service's clusters).
    ports: Vec<PortEndpoints>,
}

/// One port's locality groups.
#[derive(Clone, Debug, PartialEq)]
struct PortEndpoints {
    /// The cluster name: the load assignment's name and `cluster_name`.
    name: String,
    /// In locality order.
    groups: Vec<EncodedGroup>,
}

/// One locality's endpoints, encoded.
#[derive(Clone, Debug, PartialEq)]
struct EncodedGroup {
    /// Where the endpoints run; matched against what [`locality::assign`] returns.
    locality: Locality,
    /// Sum of the endpoint weights, saturating: what the policy weighs the locality by.
    weight: u32,
    /// `LocalityLbEndpoints` fields `locality` then `lb_endpoints`, encoded.
    bytes: Bytes,
    /// Length of the `locality` field at the start of `bytes`.
    locality_len: usize,
    /// Per-endpoint detail, kept only when Istio's `failoverPriority` may split the locality.
    split: Option<Box<Split>>,
}

/// What splitting a locality by endpoint labels needs.
#[derive(Clone, Debug, PartialEq)]
struct Split {
    /// End offset in `bytes` of each endpoint's encoding.
    ends: Vec<usize>,
    /// Each endpoint's weight.
    weights: Vec<u32>,
    /// Each endpoint's labels.
    labels: Vec<Arc<Labels>>,
}

impl ServiceEndpoints {
    /// Groups and encodes the endpoints of every port of `svc` for clients on `network`.
    pub fn new(svc: &GlobalService, network: &str) -> Self {
        let outlier = svc.outlier_detection.is_some();
        let with_labels = locality::needs_labels(&svc.locality, outlier);
        let ports = unique_ports(svc)
            .into_values()
            .map(|port| PortEndpoints {
                name: svc.cluster_name(port.port),
                groups: endpoints::groups(&port.endpoints, network, with_labels)
                    .into_iter()
                    .map(|g| EncodedGroup::new(g, with_labels))
                    .collect(),
            })
            .collect();
        Self { ports }
    }

    /// EDS for the clients of `key`: one `ClusterLoadAssignment` per port, in port order.
    /// `self` must have been built from `svc` for `key.network`.
    pub fn load_assignments(&self, svc: &GlobalService, key: &ClientKey) -> Vec<Resource> {
        self.ports
            .iter()
            .map(|port| port.load_assignment(svc, key))
            .collect()
    }

    /// Every shared buffer, for tests that check sharing.
    #[cfg(test)]
    pub(crate) fn buffers(&self) -> impl Iterator<Item = &Bytes> {
        self.ports
            .iter()
            .flat_map(|p| p.groups.iter().map(|g| &g.bytes))
    }
}

impl EncodedGroup {
    fn new(group: Group<'_>, with_labels: bool) -> Self {
        let head = LocalityLbEndpoints {
            locality: Some(locality::to_proto(group.locality)),
            ..Default::default()
        };
        let head = head.encode_to_vec();
        let locality_len = head.len();
        let size = encoding::message::encoded_len_repeated(LB_ENDPOINTS_FIELD, &group.endpoints);
        let mut buf = Vec::with_capacity(locality_len + size);
        buf.extend_from_slice(&head);
        let mut ends = Vec::with_capacity(if with_labels {
            group.endpoints.len()
        } else {
            0
        });
        let mut weights = Vec::with_capacity(ends.capacity());
        let mut weight = 0u32;
        for ep in &group.endpoints {
            encoding::message::encode(LB_ENDPOINTS_FIELD, ep, &mut buf);
            let w = ep.load_balancing_weight.map_or(1, |w| w.value);
            weight = weight.saturating_add(w);
            if with_labels {
                ends.push(buf.len());
                weights.push(w);
            }
        }
        Self {
            locality: group.locality.clone(),
            weight,
            bytes: Bytes::from(buf),
            locality_len,
            split: with_labels.then(|| {
                Box::new(Split {
                    ends,
                    weights,
                    labels: group.labels,
                })
            }),
        }
    }

    /// What [`locality::assign`] is given for this locality (see the module docs).
    fn markers(&self) -> LocalityGroup<'_> {
        let Some(split) = &self.split else {
            return LocalityGroup {
                locality: &self.locality,
                endpoints: vec![marker(self.weight, 0)],
                labels: Vec::new(),
            };
        };
        let endpoints = split
            .weights
            .iter()
            .enumerate()
            .map(|(i, w)| marker(*w, i))
            .collect();
        LocalityGroup {
            locality: &self.locality,
            endpoints,
            labels: split.labels.iter().map(|l| Cow::Borrowed(&**l)).collect(),
        }
    }

    /// Whether `assigned` is this group's locality.
    fn is(&self, assigned: Option<&core::Locality>) -> bool {
        assigned.is_some_and(|l| {
            l.region == self.locality.region
                && l.zone == self.locality.zone
                && l.sub_zone == self.locality.subzone
        })
    }

    /// Byte range of endpoint `i` in `bytes`.
    fn endpoint_range(&self, split: &Split, i: usize) -> Range<usize> {
        let start = i
            .checked_sub(1)
            .map_or(self.locality_len, |prev| split.ends[prev]);
        start..split.ends[i]
    }
}

/// A weight-only endpoint standing for endpoint `index` (or a whole locality).
fn marker(weight: u32, index: usize) -> LbEndpoint {
    LbEndpoint {
        load_balancing_weight: Some(UInt32Value { value: weight }),
        health_status: i32::try_from(index).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

impl PortEndpoints {
    fn load_assignment(&self, svc: &GlobalService, key: &ClientKey) -> Resource {
        let outlier = svc.outlier_detection.is_some();
        let markers = self.groups.iter().map(EncodedGroup::markers).collect();
        let assigned = locality::assign(&svc.locality, outlier, markers, key);
        let mut rope = Rope::default();
        encoding::string::encode(CLUSTER_NAME_FIELD, &self.name, &mut rope.own);
        let mut cursor = 0;
        for out in assigned {
            let Some(found) = self.groups[cursor..]
                .iter()
                .position(|g| g.is(out.locality.as_ref()))
            else {
                continue; // never: assign returns the localities it was given, in order
            };
            cursor += found;
            append_locality(&mut rope, &self.groups[cursor], out);
        }
        Resource::from_chunks(self.name.clone(), resource::ENDPOINT, rope.finish())
    }
}

/// Appends `ClusterLoadAssignment.endpoints` entry `out` of `group` to `rope`.
fn append_locality(rope: &mut Rope, group: &EncodedGroup, mut out: LocalityLbEndpoints) {
    let markers = std::mem::take(&mut out.lb_endpoints);
    out.locality = None;
    // What is left is the key's own: load_balancing_weight and priority.
    let trailer = out.encode_to_vec();
    let body = Chunk::of(group, &markers);
    encoding::encode_key(ENDPOINTS_FIELD, WireType::LengthDelimited, &mut rope.own);
    encoding::encode_varint((body.len() + trailer.len()) as u64, &mut rope.own);
    match body {
        Chunk::Shared(bytes) => rope.shared(bytes),
        Chunk::Part(group, split, indices) => {
            rope.shared(group.bytes.slice(..group.locality_len));
            for i in indices {
                let range = group.endpoint_range(split, i);
                rope.own.extend_from_slice(&group.bytes[range]);
            }
        }
    }
    rope.own.extend_from_slice(&trailer);
}

/// The `locality` and `lb_endpoints` bytes of one assigned locality.
enum Chunk<'a> {
    /// Shared with every key: the whole group, or its locality alone.
    Shared(Bytes),
    /// Some of the group's endpoints (a `failoverPriority` split part), by index.
    Part(&'a EncodedGroup, &'a Split, Vec<usize>),
}

impl<'a> Chunk<'a> {
    fn of(group: &'a EncodedGroup, markers: &[LbEndpoint]) -> Self {
        if markers.is_empty() {
            return Self::Shared(group.bytes.slice(..group.locality_len));
        }
        let Some(split) = &group.split else {
            return Self::Shared(group.bytes.clone());
        };
        let indices: Vec<usize> = markers
            .iter()
            .map(|m| usize::try_from(m.health_status).unwrap_or_default())
            .collect();
        if indices.iter().copied().eq(0..split.ends.len()) {
            return Self::Shared(group.bytes.clone());
        }
        Self::Part(group, split, indices)
    }

    fn len(&self) -> usize {
        match self {
            Self::Shared(bytes) => bytes.len(),
            Self::Part(group, split, indices) => {
                let endpoints = indices
                    .iter()
                    .map(|&i| group.endpoint_range(split, i).len());
                group.locality_len + endpoints.sum::<usize>()
            }
        }
    }
}

/// A body being written: runs of the key's own bytes between shared chunks.
#[derive(Default)]
struct Rope {
    /// The key's own bytes, all runs in one buffer.
    own: Vec<u8>,
    /// Chunks so far; own runs are ranges of `own`.
    parts: Vec<Part>,
    /// Start of the own run being written.
    run_start: usize,
}

enum Part {
    /// A run of the key's own bytes: a range of `Rope::own`.
    Own(Range<usize>),
    /// A chunk shared with other keys.
    Shared(Bytes),
}

impl Rope {
    fn shared(&mut self, bytes: Bytes) {
        self.close_run();
        self.parts.push(Part::Shared(bytes));
    }

    fn close_run(&mut self) {
        if self.run_start < self.own.len() {
            self.parts.push(Part::Own(self.run_start..self.own.len()));
            self.run_start = self.own.len();
        }
    }

    fn finish(mut self) -> Vec<Bytes> {
        self.close_run();
        let own = Bytes::from(self.own);
        self.parts
            .into_iter()
            .map(|p| match p {
                Part::Own(range) => own.slice(range),
                Part::Shared(bytes) => bytes,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
