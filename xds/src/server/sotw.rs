//! State-of-the-world ADS (`StreamAggregatedResources`).
//!
//! Rules (<https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol>):
//! - A request whose `response_nonce` is not the last nonce sent for its type is stale and
//!   ignored entirely: the client will repeat its subscription with the newer nonce.
//! - With the current nonce, `error_detail` makes it a NACK (recorded, not answered), otherwise
//!   an ACK of the last response, unless the client already rejected it (Envoy's next request
//!   repeats the nonce without `error_detail`). Either may also change the subscription.
//! - A request with an empty nonce (a new subscription) and a subscription that gains names are
//!   answered; a subscription that only shrinks is not.
//! - CDS and LDS responses carry every subscribed resource; EDS and RDS what differs from what
//!   the client last acknowledged (the client keeps the rest), so one endpoint change sends one
//!   `ClusterLoadAssignment`, and the response after a NACK carries what was rejected too: its
//!   version is then true of everything the client holds once it accepts it.
//! - Responses are computed when the stream has room for them ([`Protocol::next_response`]),
//!   from the latest snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use xxhash_rust::xxh3::Xxh3;

use crate::cache::Subscription;
use crate::resource::{SNAPSHOT_TYPES, SYNCZ};
use crate::server::grpc::Prepared;
use crate::server::state::{TypeState, child_type, is_full_state, known_type};
use crate::server::status::StreamKind;
use crate::server::stream::{Protocol, StreamCtx, StreamError};

/// The SotW half of a stream: per type, its state.
#[derive(Debug, Default)]
pub(super) struct Sotw {
    /// Per snapshot type the client asked for.
    types: HashMap<&'static str, SotwType>,
}

#[derive(Debug, Default)]
struct SotwType {
    state: TypeState,
    /// Hash of the last `resource_names` list: ACKs repeat the list, and comparing a hash is
    /// cheaper than rebuilding a set of 10,000 names on every ACK.
    names_digest: Option<u128>,
    /// The client has named resources of this type. From then on an empty list unsubscribes
    /// from everything: legacy wildcard is only a first request without names (xDS protocol,
    /// "How the client specifies what resources to return").
    named: bool,
}

impl Protocol for Sotw {
    type Request = DiscoveryRequest;
    type Response = Prepared;
    const KIND: StreamKind = StreamKind::Sotw;

    fn node(req: &DiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }

    fn resource_count(req: &DiscoveryRequest) -> usize {
        req.resource_names.len()
    }

    fn size(response: &Prepared) -> usize {
        response.encoded_len()
    }

    fn type_url(response: &Prepared) -> &str {
        &response.message.type_url
    }

    fn on_request(
        &mut self,
        ctx: &mut StreamCtx,
        req: DiscoveryRequest,
    ) -> Result<Option<Prepared>, StreamError> {
        ctx.server.metrics.request();
        if req.type_url == SYNCZ {
            return self.on_syncz(ctx, &req);
        }
        let Some(ty) = known_type(&req.type_url) else {
            // Envoy never asks for a type its bootstrap does not name; tolerate, count, and
            // keep the stream (an error status would end every type's subscription).
            tracing::warn!(node = %ctx.node.id, type_url = %req.type_url, "unknown type requested");
            ctx.server.metrics.unknown_type();
            return Ok(None);
        };
        self.on_typed_request(ctx, ty, &req);
        Ok(None)
    }

    fn next_response(&mut self, ctx: &mut StreamCtx) -> Option<Prepared> {
        for ty in SNAPSHOT_TYPES {
            let Some(t) = self.types.get_mut(ty) else {
                continue;
            };
            if !t.state.has_work(ty, &ctx.current) {
                t.state.settle(&ctx.current);
                continue;
            }
            let (response, changed) = respond(ctx, ty, &mut t.state);
            // A changed cluster (listener) is warmed again by Envoy, which needs its load
            // assignment (route configuration) after it.
            if let Some(child) = child_type(ty)
                && let Some(c) = self.types.get_mut(child)
            {
                let sub = &c.state.subscription;
                let names: Vec<_> = changed
                    .into_iter()
                    .filter(|n| sub.matches(child, n))
                    .collect();
                c.state.owe(names, false);
            }
            return Some(response);
        }
        None
    }
}

impl Sotw {
    fn on_typed_request(&mut self, ctx: &mut StreamCtx, ty: &'static str, req: &DiscoveryRequest) {
        let t = self.types.entry(ty).or_default();
        let initial = req.response_nonce.is_empty();
        if !initial {
            if !t.state.is_current_nonce(&req.response_nonce) {
                tracing::debug!(node = %ctx.node.id, r#type = ty, nonce = %req.response_nonce, "stale nonce");
                ctx.server.metrics.stale_nonce();
                return;
            }
            t.state.acknowledge(ctx, ty, req.error_detail.as_ref());
        }
        let added = t.resubscribe(ty, &req.resource_names, ctx);
        if initial {
            t.state.restart();
        }
        if let Some(added) = added {
            let answer = !added.is_empty();
            // CDS and LDS responses carry every subscribed resource anyway.
            let owed = if is_full_state(ty) { Vec::new() } else { added };
            t.state.owe(owed, answer);
        }
    }

    /// `istio.io/debug/syncz`: every client's sync status, answered on this stream. An ACK of
    /// a syncz response (non-empty nonce) is not answered again.
    fn on_syncz(
        &mut self,
        ctx: &mut StreamCtx,
        req: &DiscoveryRequest,
    ) -> Result<Option<Prepared>, StreamError> {
        if !req.response_nonce.is_empty() {
            return Ok(None);
        }
        let resources = ctx.syncz()?.into_iter().map(|(_, any)| any).collect();
        let message = DiscoveryResponse {
            resources,
            type_url: SYNCZ.to_owned(),
            nonce: ctx.next_nonce(),
            control_plane: Some(ctx.control_plane()),
            ..Default::default()
        };
        Ok(Some(Prepared {
            message,
            bodies: Vec::new(),
        }))
    }
}

impl SotwType {
    /// Applies a request's `resource_names`. Returns `None` if the subscription did not change,
    /// else the newly subscribed names (all of them if the wildcard was just turned on).
    fn resubscribe(
        &mut self,
        ty: &str,
        names: &[String],
        ctx: &StreamCtx,
    ) -> Option<Vec<Arc<str>>> {
        let digest = names_digest(names);
        if self.names_digest == Some(digest) {
            return None;
        }
        self.names_digest = Some(digest);
        let new = if names.is_empty() && self.named {
            Subscription::default()
        } else {
            Subscription::from_names(ty, names, &ctx.current)
        };
        self.named |= !names.is_empty();
        let old = std::mem::replace(&mut self.state.subscription, new);
        let new = &self.state.subscription;
        if new == &old {
            return None;
        }
        let mut added: Vec<Arc<str>> = new.names.difference(&old.names).cloned().collect();
        if new.wildcard && !old.wildcard {
            let wildcard = Subscription::wildcard();
            let all = ctx.current.resources(ty, &wildcard);
            added.extend(all.iter().map(|r| Arc::from(r.name.as_str())));
        }
        Some(added)
    }
}

/// The response for `ty`: for CDS and LDS every subscribed resource, for EDS and RDS those
/// the client does not hold yet. Returns it and, for CDS and LDS, the names the client will
/// update.
fn respond(
    ctx: &mut StreamCtx,
    ty: &'static str,
    state: &mut TypeState,
) -> (Prepared, Vec<Arc<str>>) {
    let plan = state.plan(ty, &ctx.current);
    let (resources, changed) = if is_full_state(ty) {
        let names = plan.names();
        (ctx.current.resources(ty, &state.subscription), names)
    } else {
        (plan.upserts, Vec::new())
    };
    let nonce = state.record_sent(ctx, ty);
    tracing::debug!(node = %ctx.node.id, r#type = ty, count = resources.len(), %nonce, "push");
    let message = DiscoveryResponse {
        version_info: ctx.current.version(ty).to_owned(),
        type_url: ty.to_owned(),
        nonce,
        control_plane: Some(ctx.control_plane()),
        ..Default::default()
    };
    // The bodies stay the cache's until they are written into the gRPC frame.
    let response = Prepared {
        message,
        bodies: resources,
    };
    (response, changed)
}

fn names_digest(names: &[String]) -> u128 {
    let mut h = Xxh3::new();
    for n in names {
        h.update(n.as_bytes());
        h.update(&[0]);
    }
    h.digest128()
}
