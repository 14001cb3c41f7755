//! SDS: a verified client gets its own secrets, kept current; nobody gets anyone else's.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{GenericSecret, secret};

use super::*;
use crate::resource::Resource;

const ALICE: &str = "spiffe://cluster.local/ns/shop/sa/alice";
const BOB: &str = "spiffe://cluster.local/ns/shop/sa/bob";

/// Secrets per identity, renewed by hand.
#[derive(Default)]
struct FakeSecrets {
    senders: Mutex<HashMap<String, watch::Sender<Secrets>>>,
}

/// `default` (a "certificate" naming `identity` and `round`) and `ROOTCA`.
fn secrets_of(identity: &str, round: u32) -> Secrets {
    let secret = |name: &str, text: String| {
        let msg = Secret {
            name: name.to_owned(),
            r#type: Some(secret::Type::GenericSecret(GenericSecret {
                secret: Some(DataSource {
                    specifier: Some(Specifier::InlineString(text)),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        };
        Arc::new(Resource::new(name, SECRET, &msg))
    };
    Arc::from(vec![
        secret("default", format!("{identity} #{round}")),
        secret("ROOTCA", "root".to_owned()),
    ])
}

impl FakeSecrets {
    fn renew(&self, identity: &str, round: u32) {
        let senders = self.senders.lock().unwrap();
        senders[identity].send_replace(secrets_of(identity, round));
    }
}

impl SecretSource for FakeSecrets {
    fn watch(&self, peer: &Peer) -> Result<watch::Receiver<Secrets>, String> {
        if peer.cluster != "east-1" {
            return Err(format!("cluster {} has no CA", peer.cluster));
        }
        let mut senders = self.senders.lock().unwrap();
        let tx = senders
            .entry(peer.identity.clone())
            .or_insert_with(|| watch::Sender::new(secrets_of(&peer.identity, 1)));
        Ok(tx.subscribe())
    }
}

fn peer(identity: &str) -> Option<Peer> {
    Some(Peer {
        identity: identity.to_owned(),
        cluster: "east-1".to_owned(),
    })
}

fn with_secrets() -> (Arc<FakeSecrets>, AdsServer) {
    let (_cache, server) = server(two_services());
    let source = Arc::new(FakeSecrets::default());
    (source.clone(), server.with_secrets(source))
}

/// The text of the generic secret `default` in `resp`.
fn default_text(resp: &DiscoveryResponse) -> Option<String> {
    resp.resources.iter().find_map(|any| {
        let s = Secret::decode(any.value.as_slice()).unwrap();
        match (s.name.as_str(), s.r#type) {
            ("default", Some(secret::Type::GenericSecret(g))) => {
                match g.secret.and_then(|d| d.specifier) {
                    Some(Specifier::InlineString(t)) => Some(t),
                    _ => None,
                }
            }
            _ => None,
        }
    })
}

#[tokio::test]
async fn a_verified_client_gets_its_own_secrets_and_their_renewals() {
    let (source, server) = with_secrets();
    let mut c = SotwClient::connect_as(&server, east("envoy-1"), peer(ALICE));
    c.request(SECRET, &["default", "ROOTCA"]);
    let (sds, mut names) = c.recv_type(SECRET).await;
    names.sort();
    assert_eq!(names, ["ROOTCA", "default"]);
    assert_eq!(default_text(&sds).as_deref(), Some(&*format!("{ALICE} #1")));
    c.ack(&sds, &["default", "ROOTCA"]);
    c.expect_silence().await;

    source.renew(ALICE, 2);
    let (renewed, names) = c.recv_type(SECRET).await;
    assert_eq!(names, ["default"], "only what changed");
    assert_eq!(
        default_text(&renewed).as_deref(),
        Some(&*format!("{ALICE} #2"))
    );
    assert_ne!(renewed.version_info, sds.version_info);

    // Another client's renewal is not this one's business.
    let mut bob = SotwClient::connect_as(&server, east("envoy-2"), peer(BOB));
    bob.request(SECRET, &["default"]);
    let (bobs, _) = bob.recv_type(SECRET).await;
    assert_eq!(default_text(&bobs).as_deref(), Some(&*format!("{BOB} #1")));
    c.ack(&renewed, &["default", "ROOTCA"]);
    source.renew(BOB, 2);
    c.expect_silence().await;
}

#[tokio::test]
async fn without_a_verified_identity_sds_serves_nothing() {
    let (_source, server) = with_secrets();
    // The plaintext port: no peer.
    let mut c = SotwClient::connect(&server, east("envoy-1"));
    c.request(SECRET, &["default", "ROOTCA"]);
    let (sds, names) = c.recv_type(SECRET).await;
    assert!(names.is_empty(), "{names:?}");
    assert!(sds.resources.is_empty());

    // A verified client whose cluster has no CA gets none either, and keeps its stream.
    let stranger = Some(Peer {
        identity: ALICE.to_owned(),
        cluster: "nowhere".to_owned(),
    });
    let mut s = SotwClient::connect_as(&server, east("envoy-2"), stranger);
    s.request(SECRET, &["default"]);
    let (sds, _) = s.recv_type(SECRET).await;
    assert!(sds.resources.is_empty());
    s.request(CLUSTER, &[]);
    let (_, clusters) = s.recv_type(CLUSTER).await;
    assert_eq!(clusters.len(), 2);
}

#[tokio::test]
async fn another_identitys_secret_is_never_sent() {
    let (_source, server) = with_secrets();
    let mut c = DeltaClient::connect_as(&server, east("envoy-1"), peer(ALICE));
    // Secrets are named from the caller's point of view: asking by another identity's name
    // finds nothing.
    c.subscribe(SECRET, &["default", BOB]);
    let (resp, names, removed) = c.recv_type(SECRET).await;
    assert_eq!(names, ["default"]);
    assert_eq!(
        removed,
        [BOB],
        "a name that does not exist is removed at once"
    );
    let text = resp.resources.iter().find_map(|r| {
        let s = Secret::decode(r.resource.as_ref()?.value.as_slice()).ok()?;
        match s.r#type? {
            secret::Type::GenericSecret(g) => match g.secret?.specifier? {
                Specifier::InlineString(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    });
    assert_eq!(text.as_deref(), Some(&*format!("{ALICE} #1")));
}

#[tokio::test]
async fn the_verified_identity_is_shown_in_status() {
    let (_source, server) = with_secrets();
    let mut c = SotwClient::connect_as(&server, east("envoy-1"), peer(ALICE));
    c.request(CLUSTER, &[]);
    c.recv_type(CLUSTER).await;
    let mut p = SotwClient::connect(&server, east("envoy-2"));
    p.request(CLUSTER, &[]);
    p.recv_type(CLUSTER).await;
    let identities: Vec<_> = server.status().into_iter().map(|s| s.identity).collect();
    assert_eq!(identities, [Some(ALICE.to_owned()), None]);
}
