//! Leader election among the replicas in one gateway cluster, on a `coordination.k8s.io/v1`
//! Lease, as client-go's leader election does it: every replica serves xDS and DNS; only the
//! holder writes (applies to members, writes status back).
//!
//! - A replica takes a Lease nobody holds, or one whose holder has not renewed it for
//!   `leaseDurationSeconds` as *this* replica observed it (its own clock, never the holder's
//!   timestamps: clocks differ).
//! - The holder renews every [`RETRY`]. A holder that could not renew for [`RENEW_DEADLINE`]
//!   stops writing, before the Lease can expire for the others ([`DURATION`]): a replica that
//!   loses its Lease stops writing before another starts.
//! - A holder that sees another holder in the Lease stops writing at once.
//! - Every write of the Lease carries the `resourceVersion` it read: an API server refuses it
//!   (409) when another replica wrote in between.

use std::time::{Duration, Instant, SystemTime};

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::objects::LEASES;

/// How long a Lease holds without renewal (client-go's default).
pub const DURATION: Duration = Duration::from_secs(15);
/// How long the holder may fail to renew before it stops writing.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the Lease is renewed or tried.
pub const RETRY: Duration = Duration::from_secs(2);

/// One replica's part in the election.
pub struct Elector {
    api: Api<DynamicObject>,
    name: String,
    identity: String,
    duration: Duration,
    renew_deadline: Duration,
    retry: Duration,
    /// The Lease as last observed (holder, renewTime, resourceVersion) and when it last changed.
    observed: Option<(Value, Instant)>,
    /// When the request of this replica's last successful renewal was sent (not answered:
    /// the Lease counts from when the API server may have written it).
    renewed: Option<Instant>,
    /// When the attempt under way started.
    attempt_started: Instant,
}

impl Elector {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: LEASES.api(&client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration: DURATION,
            renew_deadline: RENEW_DEADLINE,
            retry: RETRY,
            observed: None,
            renewed: None,
            attempt_started: Instant::now(),
        }
    }

    /// Shorter periods (for tests); `renew_deadline` must stay below `duration`.
    pub fn with_periods(
        mut self,
        duration: Duration,
        renew_deadline: Duration,
        retry: Duration,
    ) -> Self {
        assert!(
            renew_deadline < duration,
            "the renew deadline must be shorter than the lease"
        );
        self.duration = duration;
        self.renew_deadline = renew_deadline;
        self.retry = retry;
        self
    }

    /// Takes part until aborted, saying through `leader` whether this replica may write.
    pub async fn run(mut self, leader: watch::Sender<bool>) {
        loop {
            // One attempt, bounded by the retry period: with the sleep after it, leadership is
            // judged at least every two retry periods, so a holder whose renewals hang stops
            // writing by renewed + renew deadline + 2 × retry, before the Lease can expire
            // for the others (2/3 + 2/7 of its duration).
            self.attempt_started = Instant::now();
            let holds = match tokio::time::timeout(self.retry, self.try_once()).await {
                Ok(holds) => holds,
                Err(_) => {
                    tracing::debug!("the leader Lease did not answer in time");
                    self.renewed.is_some()
                }
            };
            let lost = self
                .renewed
                .is_none_or(|at| at.elapsed() >= self.renew_deadline);
            let now = holds && !lost;
            if *leader.borrow() != now {
                if now {
                    tracing::info!(identity = %self.identity, lease = %self.name, "this replica holds the leader Lease and writes");
                } else {
                    tracing::warn!(identity = %self.identity, lease = %self.name, "this replica does not hold the leader Lease: it stops writing");
                }
                leader.send_replace(now);
            }
            tokio::time::sleep(self.retry).await;
        }
    }

    /// One attempt to take or renew the Lease. Returns whether this replica holds it now.
    async fn try_once(&mut self) -> bool {
        let now = micro_time(SystemTime::now());
        let lease = match self.api.get(&self.name).await {
            Ok(lease) => serde_json::to_value(&lease).unwrap_or(Value::Null),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return self.create(&now).await;
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read the leader Lease");
                // Holding on to what we had until the renew deadline says otherwise.
                return self.renewed.is_some();
            }
        };
        let spec = &lease["spec"];
        let holder = spec["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let record = json!([
            holder,
            spec["renewTime"],
            lease["metadata"]["resourceVersion"]
        ]);
        if self.observed.as_ref().is_none_or(|(r, _)| *r != record) {
            self.observed = Some((record, Instant::now()));
        }
        let observed_at = self.observed.as_ref().map(|(_, at)| *at).expect("observed");
        let duration = spec["leaseDurationSeconds"]
            .as_u64()
            .map_or(self.duration, Duration::from_secs);
        let transitions = spec["leaseTransitions"].as_u64().unwrap_or(0);
        let version = lease["metadata"]["resourceVersion"].clone();
        if holder == self.identity {
            let patch = json!({
                "metadata": {"resourceVersion": version},
                "spec": {"renewTime": now, "leaseDurationSeconds": seconds(self.duration)},
            });
            return self.write(&patch).await;
        }
        let expired = holder.is_empty() || observed_at.elapsed() >= duration;
        if !expired {
            self.renewed = None;
            return false;
        }
        let patch = json!({
            "metadata": {"resourceVersion": version},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": seconds(self.duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": transitions + 1,
            },
        });
        self.write(&patch).await
    }

    async fn create(&mut self, now: &str) -> bool {
        let lease: DynamicObject = match serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": seconds(self.duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        })) {
            Ok(lease) => lease,
            Err(_) => return false,
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => {
                self.renewed = Some(self.attempt_started);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "cannot create the leader Lease");
                false
            }
        }
    }

    async fn write(&mut self, patch: &Value) -> bool {
        let params = PatchParams::default();
        match self
            .api
            .patch(&self.name, &params, &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                self.renewed = Some(self.attempt_started);
                true
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                // Another replica wrote first.
                self.renewed = None;
                false
            }
            Err(error) => {
                tracing::debug!(%error, "cannot write the leader Lease");
                self.renewed.is_some()
            }
        }
    }
}

/// Whole seconds, rounded up: a Lease's `leaseDurationSeconds` never says less than meant.
fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A Lease's MicroTime: RFC 3339 with microseconds, UTC.
pub fn micro_time(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// This replica's identity: the pod's name (`POD_NAME`, from the downward API) or the host's,
/// with the process id, so that two replicas never share one.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "meshfleet".to_owned());
    format!("{host}_{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_never_says_less_than_meant() {
        assert_eq!(seconds(Duration::from_secs(15)), 15);
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert!(super::super::parse_lease_duration("500ms").is_err());
        assert_eq!(
            super::super::parse_lease_duration("3s"),
            Ok(Duration::from_secs(3))
        );
    }
}
