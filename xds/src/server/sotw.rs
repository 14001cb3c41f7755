//! State-of-the-world ADS (`StreamAggregatedResources`).
//!
//! Rules (<https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol>):
//! - A request whose `response_nonce` is not the last nonce sent for its type is stale and
//!   ignored entirely: the client will repeat its subscription with the newer nonce.
//! - With the current nonce, `error_detail` makes it a NACK (recorded, not answered), otherwise
//!   an ACK of `version_info`. Either may also change the subscription.
//! - A request with an empty nonce (a new subscription) and a subscription that gains names are
//!   answered at once; a subscription that only shrinks is not.
//! - CDS and LDS responses carry every subscribed resource; EDS and RDS only what changed (the
//!   client keeps the rest), so one endpoint change sends one `ClusterLoadAssignment`.

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use xxhash_rust::xxh3::Xxh3;

use crate::cache::Subscription;
use crate::resource::{SNAPSHOT_TYPES, SYNCZ};
use crate::server::grpc::Prepared;
use crate::server::state::{TypeState, is_full_state, known_type, parent_type};
use crate::server::status::StreamKind;
use crate::server::stream::{Protocol, StreamCtx};

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

    fn on_request(&mut self, ctx: &mut StreamCtx, req: DiscoveryRequest) -> Vec<Prepared> {
        ctx.server.metrics.request();
        if req.type_url == SYNCZ {
            return self.on_syncz(ctx, &req).into_iter().collect();
        }
        let Some(ty) = known_type(&req.type_url) else {
            // Envoy never asks for a type its bootstrap does not name; tolerate, count, and
            // keep the stream (an error status would end every type's subscription).
            tracing::warn!(node = %ctx.node.id, type_url = %req.type_url, "unknown type requested");
            ctx.server.metrics.unknown_type();
            return Vec::new();
        };
        self.on_typed_request(ctx, ty, &req).into_iter().collect()
    }

    fn on_snapshot(&mut self, ctx: &mut StreamCtx) -> Vec<Prepared> {
        let mut changed: HashMap<&str, Vec<Arc<str>>> = HashMap::new();
        let mut out = Vec::new();
        for ty in SNAPSHOT_TYPES {
            let Some(t) = self.types.get_mut(ty) else {
                continue;
            };
            if t.state.sent.is_none() {
                continue;
            }
            let forced = parent_type(ty)
                .and_then(|p| changed.get(p))
                .cloned()
                .unwrap_or_default();
            let (response, names) = respond(ctx, ty, &mut t.state, &forced, false);
            changed.insert(ty, names);
            out.extend(response);
        }
        out
    }
}

impl Sotw {
    fn on_typed_request(
        &mut self,
        ctx: &mut StreamCtx,
        ty: &'static str,
        req: &DiscoveryRequest,
    ) -> Option<Prepared> {
        let t = self.types.entry(ty).or_default();
        let initial = req.response_nonce.is_empty();
        if !initial {
            if !t.state.is_current_nonce(&req.response_nonce) {
                tracing::debug!(node = %ctx.node.id, r#type = ty, nonce = %req.response_nonce, "stale nonce");
                ctx.server.metrics.stale_nonce();
                return None;
            }
            t.state
                .acknowledge(ctx, ty, &req.version_info, req.error_detail.as_ref());
        }
        let added = t.resubscribe(ty, &req.resource_names, ctx);
        if initial {
            t.state.sent = None;
        }
        match added {
            Some(added) if initial || !added.is_empty() => {
                respond(ctx, ty, &mut t.state, &added, true).0
            }
            None if initial => respond(ctx, ty, &mut t.state, &[], true).0,
            _ => None,
        }
    }

    /// `istio.io/debug/syncz`: every client's sync status, answered on this stream. An ACK of
    /// a syncz response (non-empty nonce) is not answered again.
    fn on_syncz(&mut self, ctx: &mut StreamCtx, req: &DiscoveryRequest) -> Option<Prepared> {
        if !req.response_nonce.is_empty() {
            return None;
        }
        let resources = ctx.syncz().into_iter().map(|(_, any)| any).collect();
        let message = DiscoveryResponse {
            resources,
            type_url: SYNCZ.to_owned(),
            nonce: ctx.next_nonce(),
            control_plane: Some(ctx.control_plane()),
            ..Default::default()
        };
        Some(Prepared {
            message,
            bodies: Vec::new(),
        })
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

/// The response for `ty` after a change: for CDS and LDS every subscribed resource if any of
/// them changed, for EDS and RDS the changed ones. `always` answers even if nothing changed (a
/// request must be answered). Returns the response, if any, and for CDS and LDS the names
/// that changed.
fn respond(
    ctx: &mut StreamCtx,
    ty: &'static str,
    state: &mut TypeState,
    forced: &[Arc<str>],
    always: bool,
) -> (Option<Prepared>, Vec<Arc<str>>) {
    let plan = state.plan(ty, &ctx.current, forced);
    // Only parents' changes are read (to force their children's resources).
    let names = if is_full_state(ty) {
        plan.names()
    } else {
        Vec::new()
    };
    if plan.is_empty() && !always {
        state.sent = Some(ctx.current.clone());
        return (None, names);
    }
    let resources = if is_full_state(ty) {
        ctx.current.resources(ty, &state.subscription)
    } else {
        plan.upserts
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
    (Some(response), names)
}

fn names_digest(names: &[String]) -> u128 {
    let mut h = Xxh3::new();
    for n in names {
        h.update(n.as_bytes());
        h.update(&[0]);
    }
    h.digest128()
}
