//! Per-type stream state shared by SotW and Delta: subscription, what was sent, ACK / NACK.

use std::collections::HashSet;
use std::sync::Arc;

use envoy_types::pb::google::rpc::Status as RpcStatus;

use crate::cache::{Snapshot, Subscription};
use crate::resource::{CLUSTER, ENDPOINT, LISTENER, ROUTE, Resource, SNAPSHOT_TYPES};
use crate::server::status::{Nack, TypeStatus};
use crate::server::stream::StreamCtx;

/// The snapshot type URL equal to `type_url`, as a `&'static str`.
pub(super) fn known_type(type_url: &str) -> Option<&'static str> {
    SNAPSHOT_TYPES.iter().copied().find(|t| *t == type_url)
}

/// CDS and LDS responses carry every subscribed resource (the xDS spec's "state of the world"
/// rule for those two types); EDS and RDS responses may carry only what changed.
pub(super) fn is_full_state(type_url: &str) -> bool {
    type_url == CLUSTER || type_url == LISTENER
}

/// The type whose resources name the resources of `type_url`: a changed cluster makes Envoy
/// warm it again, which needs its endpoints; likewise a listener its route configuration.
pub(super) fn parent_type(type_url: &str) -> Option<&'static str> {
    match type_url {
        ENDPOINT => Some(CLUSTER),
        ROUTE => Some(LISTENER),
        _ => None,
    }
}

/// What one stream knows about one resource type.
#[derive(Debug, Default)]
pub(super) struct TypeState {
    /// What the client asked for.
    pub subscription: Subscription,
    /// The snapshot the last response of this type was computed from: the client holds (or
    /// rejected) exactly its versions of the subscribed resources. `None` = nothing sent yet.
    pub sent: Option<Arc<Snapshot>>,
    /// Nonces and versions sent and acknowledged, and the last NACK; published for status.
    pub status: TypeStatus,
}

/// The resources one response carries.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Subscribed resources that are new or changed (or forced).
    pub upserts: Vec<Arc<Resource>>,
    /// Subscribed names whose resource was removed since the last response.
    pub removals: Vec<Arc<str>>,
}

impl Plan {
    pub(super) fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }

    /// Every name the plan touches.
    pub(super) fn names(&self) -> Vec<Arc<str>> {
        let upserted = self.upserts.iter().map(|r| Arc::from(r.name.as_str()));
        upserted.chain(self.removals.iter().cloned()).collect()
    }
}

impl TypeState {
    /// Subscribed resources of `ty` that changed between the last response and `current`,
    /// plus the subscribed ones among `forced` that exist. Everything subscribed if nothing
    /// was sent yet.
    pub(super) fn plan(&self, ty: &str, current: &Snapshot, forced: &[Arc<str>]) -> Plan {
        let Some(sent) = &self.sent else {
            let upserts = current.resources(ty, &self.subscription);
            return Plan {
                upserts,
                removals: Vec::new(),
            };
        };
        let mut plan = Plan::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for change in current.changes_since(sent, ty) {
            if !self.subscription.matches(ty, change.name) {
                continue;
            }
            seen.insert(change.name);
            match change.now {
                Some(res) => plan.upserts.push(res.clone()),
                None => plan.removals.push(change.name.clone()),
            }
        }
        for name in forced {
            if seen.insert(name) && self.subscription.matches(ty, name) {
                plan.upserts.extend(current.get(ty, name).cloned());
            }
        }
        plan
    }

    /// Whether `nonce` answers the last response of this type.
    pub(super) fn is_current_nonce(&self, nonce: &str) -> bool {
        nonce == self.status.nonce_sent
    }

    /// Records the client's answer to the last response: an ACK of `version`, or a NACK when
    /// `error` is set. A NACK is kept for status and is not answered: the rejected version is
    /// not sent again, only the next change is.
    pub(super) fn acknowledge(
        &mut self,
        ctx: &StreamCtx,
        ty: &str,
        version: &str,
        error: Option<&RpcStatus>,
    ) {
        match error {
            // The same rejection again (a client repeating its NACK of one response): counted
            // and recorded once, with the message it first gave.
            Some(_)
                if self
                    .status
                    .last_nack
                    .as_ref()
                    .is_some_and(|n| n.nonce == self.status.nonce_sent) =>
            {
                return;
            }
            Some(err) => {
                tracing::warn!(node = %ctx.node.id, r#type = ty, version = %self.status.version_sent,
                    message = %err.message, "client rejected config");
                ctx.server.metrics.nack(ty);
                self.status.last_nack = Some(Nack {
                    version: self.status.version_sent.clone(),
                    nonce: self.status.nonce_sent.clone(),
                    message: err.message.clone(),
                    at: ctx.now(),
                });
            }
            None => {
                self.status.version_acked = version.to_owned();
                self.status.nonce_acked = self.status.nonce_sent.clone();
            }
        }
        ctx.publish(ty, &self.status);
    }

    /// Records a response of `ty` computed from the stream's current snapshot; returns its
    /// nonce.
    pub(super) fn record_sent(&mut self, ctx: &mut StreamCtx, ty: &str) -> String {
        let nonce = ctx.next_nonce();
        self.sent = Some(ctx.current.clone());
        self.status.nonce_sent = nonce.clone();
        self.status.version_sent = ctx.current.version(ty).to_owned();
        ctx.server.metrics.push(ty);
        ctx.publish(ty, &self.status);
        nonce
    }
}
