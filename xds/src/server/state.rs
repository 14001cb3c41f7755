//! Per-type stream state shared by SotW and Delta: subscription, what was sent, ACK / NACK.

use std::collections::HashSet;
use std::sync::Arc;

use envoy_types::pb::google::rpc::Status as RpcStatus;

use crate::cache::{Snapshot, Subscription};
use crate::resource::{CLUSTER, ENDPOINT, LISTENER, NAME_TABLE, ROUTE, Resource, SNAPSHOT_TYPES};
use crate::server::status::{Nack, TypeStatus};
use crate::server::stream::StreamCtx;

/// The snapshot type URL equal to `type_url`, as a `&'static str`.
pub(super) fn known_type(type_url: &str) -> Option<&'static str> {
    SNAPSHOT_TYPES.iter().copied().find(|t| *t == type_url)
}

/// CDS and LDS responses carry every subscribed resource (the xDS spec's "state of the world"
/// rule for those two types), as does the name table (one resource); EDS and RDS responses may
/// carry only what changed.
pub(super) fn is_full_state(type_url: &str) -> bool {
    type_url == CLUSTER || type_url == LISTENER || type_url == NAME_TABLE
}

/// The type whose resources a resource of `type_url` names: a changed cluster makes Envoy
/// warm it again, which needs its endpoints; likewise a listener its route configuration.
pub(super) fn child_type(type_url: &str) -> Option<&'static str> {
    match type_url {
        CLUSTER => Some(ENDPOINT),
        LISTENER => Some(ROUTE),
        _ => None,
    }
}

/// What one stream knows about one resource type.
///
/// # Guarantees
/// - A response's version is the version of the snapshot it was computed from, and the
///   response carries every subscribed resource whose version differs from what the client
///   last acknowledged (`acked`), not merely what changed since the last response (`sent`):
///   once the client acknowledges it, it holds exactly that snapshot's versions. A rejected
///   response's resources are not assumed held.
/// - Whether there is anything to send is decided against `sent`: a rejected version is not
///   sent again until something it covers changes (DESIGN.md: a NACK is state).
#[derive(Debug, Default)]
pub(super) struct TypeState {
    /// What the client asked for.
    pub subscription: Subscription,
    /// The snapshot the last response of this type was computed from, or a later one that
    /// changed nothing subscribed. `None` = nothing sent yet.
    pub sent: Option<Arc<Snapshot>>,
    /// The snapshot whose versions of the subscribed resources the client holds: that of the
    /// last response it acknowledged. `None` = it holds nothing of ours.
    acked: Option<Arc<Snapshot>>,
    /// Names to send with the next response whatever their version: newly subscribed, asked
    /// for again, or whose parent resource changed. Their presence is a reason to respond.
    owed: Vec<Arc<str>>,
    /// Names sent as `owed` since the last acknowledgement: carried by every response until
    /// one is acknowledged, since the client may have rejected the one that carried them.
    unconfirmed: Vec<Arc<str>>,
    /// A request waits for its answer: the next response is sent even if empty.
    answer: bool,
    /// Nonces and versions sent and acknowledged, and the last NACK; published for status.
    pub status: TypeStatus,
}

/// The resources one response carries.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Subscribed resources that differ from what the client holds (or are owed).
    pub upserts: Vec<Arc<Resource>>,
    /// Subscribed names the client holds whose resource is gone.
    pub removals: Vec<Arc<str>>,
}

impl Plan {
    /// Every name the plan touches.
    pub(super) fn names(&self) -> Vec<Arc<str>> {
        let upserted = self.upserts.iter().map(|r| Arc::from(r.name.as_str()));
        upserted.chain(self.removals.iter().cloned()).collect()
    }
}

impl TypeState {
    /// Whether the next response of `ty` has a reason to be sent: a request waits for it,
    /// names are owed, or a subscribed resource changed since the last response.
    pub(super) fn has_work(&self, ty: &str, current: &Snapshot) -> bool {
        if self.answer || !self.owed.is_empty() {
            return true;
        }
        match &self.sent {
            None => false,
            Some(sent) => current
                .changes_since(sent, ty)
                .iter()
                .any(|c| self.subscription.matches(ty, c.name)),
        }
    }

    /// Nothing to send for `ty`: `current` changes nothing subscribed, so the client is as
    /// current as it was.
    pub(super) fn settle(&mut self, current: &Arc<Snapshot>) {
        let synced = match (&self.acked, &self.sent) {
            (Some(a), Some(s)) => Arc::ptr_eq(a, s),
            _ => false,
        };
        if self.sent.is_some() {
            self.sent = Some(current.clone());
        }
        if synced {
            self.acked = Some(current.clone());
        }
    }

    /// Asks for `names` to be sent with the next response; `answer` also makes a request wait
    /// for one.
    pub(super) fn owe(&mut self, names: impl IntoIterator<Item = Arc<str>>, answer: bool) {
        self.owed.extend(names);
        self.answer |= answer;
    }

    /// Starts over: a first request of the type on this stream holds nothing of ours.
    pub(super) fn restart(&mut self) {
        self.sent = None;
        self.acked = None;
        self.unconfirmed.clear();
        self.answer = true;
    }

    /// Names owed or unconfirmed, which the next response carries whatever their version.
    pub(super) fn forced(&self) -> impl Iterator<Item = &Arc<str>> {
        self.owed.iter().chain(&self.unconfirmed)
    }

    /// Subscribed resources of `ty` whose version in `current` differs from what the client
    /// holds or from the last response (which the client may yet accept), plus the owed and
    /// unconfirmed names that exist. Everything subscribed if the client holds nothing.
    pub(super) fn plan<'a>(&'a self, ty: &str, current: &'a Snapshot) -> Plan {
        let mut plan = Plan::default();
        let mut seen: HashSet<&'a str> = HashSet::new();
        let Some(acked) = &self.acked else {
            // Every subscribed resource, the owed ones among them.
            plan.upserts = current.resources(ty, &self.subscription);
            return plan;
        };
        let since_sent = self.sent.as_ref().filter(|s| !Arc::ptr_eq(s, acked));
        let changes = current.changes_since(acked, ty).into_iter();
        let changes = changes.chain(
            since_sent
                .into_iter()
                .flat_map(|s| current.changes_since(s, ty)),
        );
        for change in changes {
            if !self.subscription.matches(ty, change.name) || !seen.insert(change.name) {
                continue;
            }
            match change.now {
                Some(res) => plan.upserts.push(res.clone()),
                None => plan.removals.push(change.name.clone()),
            }
        }
        self.add_forced(ty, current, &mut seen, &mut plan);
        plan
    }

    fn add_forced<'a>(
        &'a self,
        ty: &str,
        current: &'a Snapshot,
        seen: &mut HashSet<&'a str>,
        plan: &mut Plan,
    ) {
        for name in self.forced() {
            if seen.insert(name) && self.subscription.matches(ty, name) {
                plan.upserts.extend(current.get(ty, name).cloned());
            }
        }
    }

    /// Whether `nonce` answers the last response of this type.
    pub(super) fn is_current_nonce(&self, nonce: &str) -> bool {
        nonce == self.status.nonce_sent
    }

    /// Records the client's answer to the last response: an ACK, or a NACK when `error` is
    /// set. A NACK is kept for status and is not answered: the rejected version is not sent
    /// again, only the next change is, together with what the client rejected.
    pub(super) fn acknowledge(&mut self, ctx: &StreamCtx, ty: &str, error: Option<&RpcStatus>) {
        let nacked = self
            .status
            .last_nack
            .as_ref()
            .is_some_and(|n| n.nonce == self.status.nonce_sent);
        match error {
            // The same rejection again (a client repeating its NACK of one response): counted
            // and recorded once, with the message it first gave.
            Some(_) if nacked => return,
            // A later request answering a rejected response (Envoy clears `error_detail` once
            // sent) changes the subscription; it does not acknowledge what was rejected.
            None if nacked => return,
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
                self.acked = self.sent.clone();
                self.unconfirmed.clear();
                self.status.version_acked = self.status.version_sent.clone();
                self.status.nonce_acked = self.status.nonce_sent.clone();
            }
        }
        ctx.publish(ty, &self.status);
    }

    /// Records a response of `ty` computed from the stream's current snapshot; returns its
    /// nonce.
    pub(super) fn record_sent(&mut self, ctx: &mut StreamCtx, ty: &str) -> String {
        let nonce = ctx.next_nonce();
        // A response no request waits for pushes a change: its convergence is measured.
        ctx.pushed_change = if self.answer {
            None
        } else {
            ctx.current.changed_at()
        };
        self.sent = Some(ctx.current.clone());
        let owed = std::mem::take(&mut self.owed);
        self.unconfirmed.extend(owed);
        self.answer = false;
        self.status.nonce_sent = nonce.clone();
        self.status.version_sent = ctx.current.version(ty).to_owned();
        ctx.server.metrics.push(ty);
        ctx.publish(ty, &self.status);
        nonce
    }
}
