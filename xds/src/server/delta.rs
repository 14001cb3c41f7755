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
//!   removed ones in `removed_resources`; "changed" is against what the client last
//!   acknowledged, so the response after a NACK carries what was rejected too.
//! - Responses are computed when the stream has room for them ([`Protocol::next_response`]),
//!   from the latest snapshot; a subscription change is answered then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource as PbResource,
};

use crate::cache::Subscription;
use crate::resource::{Resource, SNAPSHOT_TYPES, SYNCZ};
use crate::server::state::{Plan, TypeState, child_type, known_type};
use crate::server::status::StreamKind;
use crate::server::stream::{Protocol, StreamCtx, StreamError};

/// The Delta half of a stream: per type, its state.
#[derive(Debug, Default)]
pub(super) struct Delta {
    /// Per snapshot type the client asked for.
    types: HashMap<&'static str, DeltaType>,
}

#[derive(Debug, Default)]
struct DeltaType {
    state: TypeState,
    /// The first request's `initial_resource_versions`, until the first response: what the
    /// client already holds is not sent, and what it holds that is gone is removed.
    known: Option<HashMap<String, String>>,
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

    fn size(response: &DeltaDiscoveryResponse) -> usize {
        prost::Message::encoded_len(response)
    }

    fn type_url(response: &DeltaDiscoveryResponse) -> &str {
        &response.type_url
    }

    fn on_request(
        &mut self,
        ctx: &mut StreamCtx,
        req: DeltaDiscoveryRequest,
    ) -> Result<Option<DeltaDiscoveryResponse>, StreamError> {
        ctx.server.metrics.request();
        if req.type_url == SYNCZ {
            return on_syncz(ctx, &req);
        }
        let Some(ty) = known_type(&req.type_url) else {
            tracing::warn!(node = %ctx.node.id, type_url = %req.type_url, "unknown type requested");
            ctx.server.metrics.unknown_type();
            return Ok(None);
        };
        match self.types.get_mut(ty) {
            None => {
                let t = self.types.entry(ty).or_default();
                initial(ctx, ty, t, req);
            }
            Some(t) => update(ctx, ty, &mut t.state, &req),
        }
        Ok(None)
    }

    fn next_response(&mut self, ctx: &mut StreamCtx) -> Option<DeltaDiscoveryResponse> {
        for ty in SNAPSHOT_TYPES {
            let Some(t) = self.types.get_mut(ty) else {
                continue;
            };
            if !t.state.has_work(ty, &ctx.current) {
                t.state.settle(&ctx.current);
                continue;
            }
            let plan = plan(ctx, ty, t);
            if let Some(child) = child_type(ty)
                && let Some(c) = self.types.get_mut(child)
            {
                let sub = &c.state.subscription;
                let names = plan.names().into_iter().filter(|n| sub.matches(child, n));
                c.state.owe(names.collect::<Vec<_>>(), false);
            }
            let t = self.types.get_mut(ty).expect("planned above");
            return Some(response(ctx, ty, &mut t.state, plan));
        }
        None
    }
}

/// The first request of a type: subscribe; the answer says what the client does not have yet.
fn initial(ctx: &StreamCtx, ty: &'static str, t: &mut DeltaType, req: DeltaDiscoveryRequest) {
    let state = &mut t.state;
    state.subscription = Subscription::from_names(ty, &req.resource_names_subscribe, &ctx.current);
    // Names asked for that do not exist are answered as removed, so the client need not wait
    // out its does-not-exist timer.
    let asked = req.resource_names_subscribe.iter().filter(|n| *n != "*");
    let asked: Vec<_> = asked.map(|n| ctx.current.intern(ty, n)).collect();
    // The first request is always answered, even with nothing: Envoy waits for it to finish
    // initialization.
    state.owe(asked, true);
    t.known = Some(req.initial_resource_versions);
}

/// What the next response of `ty` carries.
fn plan(ctx: &StreamCtx, ty: &'static str, t: &mut DeltaType) -> Plan {
    let current = &ctx.current;
    let state = &t.state;
    let mut plan = state.plan(ty, current);
    // A name asked for that does not exist is answered as removed, not left unanswered.
    let missing = state.forced().filter(|n| current.get(ty, n).is_none());
    plan.removals.extend(missing.cloned());
    if let Some(known) = t.known.take() {
        plan.upserts
            .retain(|r| known.get(&r.name) != Some(&r.version));
        // Resources the client holds that are gone.
        let gone = known.keys().filter(|name| current.get(ty, name).is_none());
        plan.removals
            .extend(gone.map(|name| Arc::from(name.as_str())));
    }
    plan.removals.sort_unstable();
    plan
}

/// A later request: ACK / NACK, then subscription changes, each answered.
fn update(ctx: &StreamCtx, ty: &'static str, state: &mut TypeState, req: &DeltaDiscoveryRequest) {
    if !req.response_nonce.is_empty() {
        if state.is_current_nonce(&req.response_nonce) {
            state.acknowledge(ctx, ty, req.error_detail.as_ref());
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
    if !forced.is_empty() {
        // Every subscription change is answered, even by an empty response.
        state.owe(forced, true);
    }
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
fn on_syncz(
    ctx: &mut StreamCtx,
    req: &DeltaDiscoveryRequest,
) -> Result<Option<DeltaDiscoveryResponse>, StreamError> {
    if !req.response_nonce.is_empty() {
        return Ok(None);
    }
    let resources = ctx
        .syncz()?
        .into_iter()
        .map(|(name, any)| PbResource {
            name,
            resource: Some(any),
            ..Default::default()
        })
        .collect();
    Ok(Some(DeltaDiscoveryResponse {
        resources,
        type_url: SYNCZ.to_owned(),
        nonce: ctx.next_nonce(),
        control_plane: Some(ctx.control_plane()),
        ..Default::default()
    }))
}
