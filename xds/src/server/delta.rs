//! Incremental ADS (`DeltaAggregatedResources`).
//!
//! Rules (<https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds>):
//! - The first request of a type sets the subscription (empty or `*` = wildcard for CDS and
//!   LDS) and says which versions the client already has (`initial_resource_versions`); later
//!   ones subscribe and unsubscribe names.
//! - Subscription changes are applied whatever the nonce. With the last nonce sent,
//!   `error_detail` makes the request a NACK (recorded, not answered), otherwise an ACK; an
//!   older nonce is stale for ACK purposes only.
//! - Responses carry only new or changed resources, with their versions, and the names of
//!   removed ones in `removed_resources`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource as PbResource,
};

use crate::cache::Subscription;
use crate::resource::{Resource, SNAPSHOT_TYPES, SYNCZ};
use crate::server::state::{Plan, TypeState, known_type, parent_type};
use crate::server::status::StreamKind;
use crate::server::stream::{Protocol, StreamCtx};

/// The Delta half of a stream: per type, its state.
#[derive(Debug, Default)]
pub(super) struct Delta {
    /// Per snapshot type the client asked for.
    types: HashMap<&'static str, TypeState>,
}

impl Protocol for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const KIND: StreamKind = StreamKind::Delta;

    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }

    fn resource_count(req: &DeltaDiscoveryRequest) -> usize {
        req.resource_names_subscribe.len()
            + req.resource_names_unsubscribe.len()
            + req.initial_resource_versions.len()
    }

    fn on_request(
        &mut self,
        ctx: &mut StreamCtx,
        req: DeltaDiscoveryRequest,
    ) -> Vec<DeltaDiscoveryResponse> {
        ctx.server.metrics.request();
        if req.type_url == SYNCZ {
            return on_syncz(ctx, &req).into_iter().collect();
        }
        let Some(ty) = known_type(&req.type_url) else {
            tracing::warn!(node = %ctx.node.id, type_url = %req.type_url, "unknown type requested");
            ctx.server.metrics.unknown_type();
            return Vec::new();
        };
        match self.types.get_mut(ty) {
            None => {
                let state = self.types.entry(ty).or_default();
                Some(initial(ctx, ty, state, &req))
            }
            Some(state) => update(ctx, ty, state, &req),
        }
        .into_iter()
        .collect()
    }

    fn on_snapshot(&mut self, ctx: &mut StreamCtx) -> Vec<DeltaDiscoveryResponse> {
        let mut changed: HashMap<&str, Vec<Arc<str>>> = HashMap::new();
        let mut out = Vec::new();
        for ty in SNAPSHOT_TYPES {
            let Some(state) = self.types.get_mut(ty) else {
                continue;
            };
            let forced = parent_type(ty)
                .and_then(|p| changed.get(p))
                .cloned()
                .unwrap_or_default();
            let plan = state.plan(ty, &ctx.current, &forced);
            if parent_type(ty).is_none() {
                changed.insert(ty, plan.names());
            }
            out.extend(send(ctx, ty, state, plan));
        }
        out
    }
}

/// The first request of a type: subscribe, then send what the client does not have yet.
fn initial(
    ctx: &mut StreamCtx,
    ty: &'static str,
    state: &mut TypeState,
    req: &DeltaDiscoveryRequest,
) -> DeltaDiscoveryResponse {
    state.subscription = Subscription::from_names(ty, &req.resource_names_subscribe, &ctx.current);
    let known = &req.initial_resource_versions;
    let mut plan = state.plan(ty, &ctx.current, &[]);
    plan.upserts
        .retain(|r| known.get(&r.name) != Some(&r.version));
    // Resources the client holds that are gone, and names it asks for that do not exist: both
    // are `removed_resources`, so the client need not wait out its does-not-exist timer.
    let asked = req.resource_names_subscribe.iter().filter(|n| *n != "*");
    plan.removals = known
        .keys()
        .chain(asked)
        .filter(|name| ctx.current.get(ty, name).is_none())
        .map(|name| Arc::from(name.as_str()))
        .collect();
    plan.removals.sort_unstable();
    // The first request is always answered, even with nothing: Envoy waits for it to finish
    // initialization.
    response(ctx, ty, state, plan)
}

/// A later request: ACK / NACK, then subscription changes.
fn update(
    ctx: &mut StreamCtx,
    ty: &'static str,
    state: &mut TypeState,
    req: &DeltaDiscoveryRequest,
) -> Option<DeltaDiscoveryResponse> {
    if !req.response_nonce.is_empty() {
        if state.is_current_nonce(&req.response_nonce) {
            let version = state.status.version_sent.clone();
            state.acknowledge(ctx, ty, &version, req.error_detail.as_ref());
        } else {
            ctx.server.metrics.stale_nonce();
        }
    }
    let mut forced = subscribe(
        ctx,
        ty,
        &mut state.subscription,
        &req.resource_names_subscribe,
    );
    forced.extend(unsubscribe(
        ctx,
        ty,
        &mut state.subscription,
        &req.resource_names_unsubscribe,
    ));
    if forced.is_empty() {
        return None;
    }
    let mut plan = state.plan(ty, &ctx.current, &forced);
    // A name asked for that does not exist is answered as removed, not left unanswered.
    plan.removals.extend(
        forced
            .iter()
            .filter(|name| ctx.current.get(ty, name).is_none())
            .cloned(),
    );
    // Every subscription change is answered, even by an empty response.
    Some(response(ctx, ty, state, plan))
}

/// Adds `names` (`*` = wildcard) to `sub`; returns the names to send: those newly covered, and
/// those asked for again (a client asks again for what it wants sent again).
fn subscribe(ctx: &StreamCtx, ty: &str, sub: &mut Subscription, names: &[String]) -> Vec<Arc<str>> {
    let mut added = Vec::new();
    for name in names {
        if name == "*" {
            if !sub.wildcard && Subscription::has_wildcard(ty) {
                sub.wildcard = true;
                let all = ctx.current.resources(ty, &Subscription::wildcard());
                added.extend(all.iter().map(|r| Arc::from(r.name.as_str())));
            }
        } else {
            let name = ctx.current.intern(ty, name);
            sub.names.insert(name.clone());
            added.push(name);
        }
    }
    added
}

/// Removes `names` (`*` = wildcard) from `sub`; returns those still covered by the wildcard,
/// which the client dropped when it unsubscribed and must be sent again.
fn unsubscribe(
    ctx: &StreamCtx,
    ty: &str,
    sub: &mut Subscription,
    names: &[String],
) -> Vec<Arc<str>> {
    let mut still = Vec::new();
    for name in names {
        if name == "*" {
            sub.wildcard = false;
        } else {
            sub.names.remove(name.as_str());
            if sub.matches(ty, name) && ctx.current.get(ty, name).is_some() {
                still.push(ctx.current.intern(ty, name));
            }
        }
    }
    still
}

/// Sends `plan` for `ty` unless it is empty; either way the client now holds the current
/// snapshot's versions of everything subscribed.
fn send(
    ctx: &mut StreamCtx,
    ty: &'static str,
    state: &mut TypeState,
    plan: Plan,
) -> Option<DeltaDiscoveryResponse> {
    if plan.is_empty() {
        state.sent = Some(ctx.current.clone());
        return None;
    }
    Some(response(ctx, ty, state, plan))
}

fn response(
    ctx: &mut StreamCtx,
    ty: &'static str,
    state: &mut TypeState,
    plan: Plan,
) -> DeltaDiscoveryResponse {
    let nonce = state.record_sent(ctx, ty);
    tracing::debug!(node = %ctx.node.id, r#type = ty, upserts = plan.upserts.len(),
        removals = plan.removals.len(), %nonce, "delta push");
    DeltaDiscoveryResponse {
        system_version_info: ctx.current.version(ty).to_owned(),
        resources: plan.upserts.iter().map(|r| to_pb(r)).collect(),
        type_url: ty.to_owned(),
        removed_resources: dedup(plan.removals),
        nonce,
        control_plane: Some(ctx.control_plane()),
        ..Default::default()
    }
}

fn to_pb(r: &Resource) -> PbResource {
    PbResource {
        name: r.name.clone(),
        version: r.version.clone(),
        resource: Some(r.body.to_any()),
        ..Default::default()
    }
}

fn dedup(names: Vec<Arc<str>>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .map(|n| n.to_string())
        .collect()
}

/// `istio.io/debug/syncz` on a Delta stream: the same `ClientConfig`s, named by node id.
fn on_syncz(ctx: &mut StreamCtx, req: &DeltaDiscoveryRequest) -> Option<DeltaDiscoveryResponse> {
    if !req.response_nonce.is_empty() {
        return None;
    }
    let resources = ctx
        .syncz()
        .into_iter()
        .map(|(name, any)| PbResource {
            name,
            resource: Some(any),
            ..Default::default()
        })
        .collect();
    Some(DeltaDiscoveryResponse {
        resources,
        type_url: SYNCZ.to_owned(),
        nonce: ctx.next_nonce(),
        control_plane: Some(ctx.control_plane()),
        ..Default::default()
    })
}
