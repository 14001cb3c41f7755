//! The shared-chunk load assignments against the direct way: build each key's
//! `ClusterLoadAssignment` message in full and encode it.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use super::*;
use crate::model::{
    Distribute, Endpoint, Failover, Gateway, LocalityLbSetting, LocalityPolicy, OutlierDetection,
    Protocol, ServicePort, TierWeights,
};

/// The load assignments of `svc` for `key`, each message built whole and then encoded.
fn encoded_whole(svc: &GlobalService, key: &ClientKey) -> Vec<Resource> {
    let outlier = svc.outlier_detection.is_some();
    let with_labels = locality::needs_labels(&svc.locality, outlier);
    unique_ports(svc)
        .into_values()
        .map(|port| {
            let groups = endpoints::groups(&port.endpoints, &key.network, with_labels);
            let groups = groups
                .into_iter()
                .map(|g| LocalityGroup {
                    locality: g.locality,
                    endpoints: g.endpoints,
                    labels: g.labels.iter().map(|l| Cow::Owned((**l).clone())).collect(),
                })
                .collect();
            let name = svc.cluster_name(port.port);
            let cla = ClusterLoadAssignment {
                cluster_name: name.clone(),
                endpoints: locality::assign(&svc.locality, outlier, groups, key),
                ..Default::default()
            };
            Resource::new(name, resource::ENDPOINT, &cla)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Arc<Labels> {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// An endpoint on `network` in `locality`, behind `network`'s gateway.
fn endpoint(ip: &str, locality: &str, network: &str, weight: u32) -> Endpoint {
    let parity = if weight.is_multiple_of(2) {
        "even"
    } else {
        "odd"
    };
    Endpoint {
        address: ip.to_owned(),
        additional_addresses: Box::default(),
        port: 8080,
        locality: Arc::new(Locality::parse(locality)),
        network: Arc::from(network),
        cluster: Arc::from(format!("{network}-c")),
        weight,
        ready: true,
        gateway: Some(Arc::new(Gateway {
            address: format!("gw-{network}"),
            port: 15443,
            ..Default::default()
        })),
        labels: labels(&[("topology.istio.io/network", network), ("app", parity)]),
    }
}

/// Two ports over localities in three regions and three networks (the third without gateway),
/// and one endpoint without a network, which every client reaches directly.
fn service(policy: LocalityPolicy) -> GlobalService {
    let mut eps = vec![
        endpoint("10.0.0.1", "r1/z1/s1", "net-a", 1),
        endpoint("10.0.0.2", "r1/z1/s1", "net-a", 4),
        endpoint("10.0.0.3", "r1/z1/s2", "net-a", 2),
        endpoint("10.0.1.1", "r1/z2/s1", "net-a", 3),
        endpoint("10.1.0.1", "r2/z1/s1", "net-b", 2),
        endpoint("10.1.0.2", "r2/z1/s1", "net-b", 5),
        endpoint("10.1.0.3", "r1/z1/s1", "net-b", 1),
        endpoint("10.2.0.1", "r3/z1/s1", "", 7),
    ];
    let mut unreachable = endpoint("10.3.0.1", "r3/z2/s1", "net-c", 1);
    unreachable.gateway = None;
    eps.push(unreachable);
    let mut not_ready = endpoint("10.0.0.9", "r1/z1/s1", "", 1);
    not_ready.ready = false;
    eps.push(not_ready);
    let port = |port: u32, endpoints: Vec<Endpoint>| ServicePort {
        name: format!("p{port}"),
        port,
        protocol: Protocol::Http,
        endpoints,
    };
    GlobalService {
        name: "echo".to_owned(),
        namespace: "demo".to_owned(),
        host: "echo.demo.global".to_owned(),
        aliases: Vec::new(),
        ports: vec![port(80, eps.clone()), port(9090, eps[2..6].to_vec())],
        locality: policy,
        outlier_detection: Some(OutlierDetection::default()),
        dns: Default::default(),
    }
}

fn key(locality: &str, network: &str, labels: &[(&str, &str)]) -> ClientKey {
    ClientKey {
        locality: Locality::parse(locality),
        network: network.to_owned(),
        listener_port: 15001,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        secure: false,
        bind_vips: false,
    }
}

fn keys() -> Vec<ClientKey> {
    let net = "topology.istio.io/network";
    vec![
        key("r1/z1/s1", "", &[]),
        key("r1/z1/s2", "net-a", &[(net, "net-a"), ("app", "even")]),
        key("r1/z2/s1", "net-a", &[(net, "net-b")]),
        key("r2/z1/s1", "net-b", &[(net, "net-b"), ("app", "odd")]),
        key("r3/z1/s1", "net-b", &[]),
        key("r9/z9/s9", "net-c", &[(net, "net-c")]),
    ]
}

fn policies() -> Vec<(&'static str, LocalityPolicy)> {
    let istio = |s: LocalityLbSetting| LocalityPolicy::Istio(s);
    vec![
        ("default tiers", LocalityPolicy::default()),
        (
            "four tiers",
            LocalityPolicy::Tiers(TierWeights::new(Some(80), Some(15), Some(4), Some(1))),
        ),
        (
            "failover tier",
            LocalityPolicy::Tiers(TierWeights::new(None, Some(100), None, None)),
        ),
        (
            "istio disabled",
            istio(LocalityLbSetting {
                enabled: Some(false),
                ..Default::default()
            }),
        ),
        (
            "istio distribute",
            istio(LocalityLbSetting {
                distribute: vec![Distribute {
                    from: "r1/*".to_owned(),
                    to: vec![("r1/z1/*".to_owned(), 70), ("r2/*".to_owned(), 30)],
                }],
                ..Default::default()
            }),
        ),
        (
            "istio failover",
            istio(LocalityLbSetting {
                failover: vec![Failover {
                    from: "r1".to_owned(),
                    to: "r3".to_owned(),
                }],
                ..Default::default()
            }),
        ),
        (
            "istio failoverPriority",
            istio(LocalityLbSetting {
                failover_priority: vec!["topology.istio.io/network".to_owned(), "app".to_owned()],
                failover: vec![Failover {
                    from: "r2".to_owned(),
                    to: "r1".to_owned(),
                }],
                ..Default::default()
            }),
        ),
        (
            "istio failoverPriority override",
            istio(LocalityLbSetting {
                failover_priority: vec!["app=even".to_owned()],
                ..Default::default()
            }),
        ),
    ]
}

#[test]
fn shared_chunks_encode_what_the_whole_message_encodes() {
    for (policy_name, policy) in policies() {
        let svc = service(policy);
        let mut views = BTreeMap::new();
        for key in keys() {
            let view = views
                .entry(key.network.clone())
                .or_insert_with(|| ServiceEndpoints::new(&svc, &key.network));
            let shared = view.load_assignments(&svc, &key);
            let whole = encoded_whole(&svc, &key);
            let ctx = format!("{policy_name}, key {key:?}");
            assert_eq!(shared.len(), 2, "{ctx}");
            for (s, w) in shared.iter().zip(&whole) {
                assert_eq!(s.body.to_vec(), w.body.to_vec(), "bytes, {ctx}");
                assert_eq!(s.version, w.version, "version, {ctx}");
                assert_eq!(s, w, "{ctx}");
                let decoded = ClusterLoadAssignment::decode(s.body.to_vec().as_slice());
                let expected = ClusterLoadAssignment::decode(w.body.to_vec().as_slice());
                assert_eq!(
                    decoded.expect("decodes"),
                    expected.expect("decodes"),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn the_fixture_covers_splits_cleared_localities_and_gateways() {
    // Guards the test above against a fixture that stopped exercising the interesting paths.
    let decode = |svc: &GlobalService, key: &ClientKey| {
        let r = &load_assignments_of(svc, key)[0];
        ClusterLoadAssignment::decode(r.body.to_vec().as_slice()).expect("decodes")
    };
    let by_name = |name: &str| policies().into_iter().find(|(n, _)| *n == name).unwrap().1;
    let keys = keys();
    let split = decode(&service(by_name("istio failoverPriority")), &keys[1]);
    assert!(split.endpoints.len() > 5, "localities split by labels");
    let distributed = decode(&service(by_name("istio distribute")), &keys[0]);
    assert!(
        distributed
            .endpoints
            .iter()
            .any(|l| l.lb_endpoints.is_empty())
    );
    let gateway = decode(&service(LocalityPolicy::default()), &keys[3]);
    let r1z1s1 = gateway.endpoints.iter().find(|l| {
        l.locality
            .as_ref()
            .is_some_and(|l| l.zone == "z1" && l.sub_zone == "s1" && l.region == "r1")
    });
    let r1z1s1 = r1z1s1.expect("r1/z1/s1 from net-b");
    assert_eq!(
        r1z1s1.lb_endpoints.len(),
        2,
        "direct, and merged at the gateway"
    );
}

fn load_assignments_of(svc: &GlobalService, key: &ClientKey) -> Vec<Resource> {
    ServiceEndpoints::new(svc, &key.network).load_assignments(svc, key)
}

#[test]
fn keys_share_the_encoded_endpoints() {
    let svc = service(LocalityPolicy::default());
    let view = ServiceEndpoints::new(&svc, "");
    let buffers: Vec<&Bytes> = view.buffers().collect();
    let a = view.load_assignments(&svc, &key("r1/z1/s1", "", &[]));
    let b = view.load_assignments(&svc, &key("r2/z1/s1", "", &[]));
    assert_ne!(a[0].version, b[0].version, "different weights");
    let shared = |r: &Resource| -> Vec<*const u8> {
        let chunks = r.body.chunks().iter();
        let inside = chunks.filter(|c| buffers.iter().any(|b| b.as_ptr() == c.as_ptr()));
        inside.map(|c| c.as_ptr()).collect()
    };
    for (a, b) in a.iter().zip(&b) {
        let (sa, sb) = (shared(a), shared(b));
        assert!(!sa.is_empty());
        assert_eq!(sa, sb, "same allocations, same order");
        let own: usize = a.body.len() - sa.len().min(a.body.len());
        assert!(own > 0);
    }
    // Endpoint bytes live in the shared buffers: what a key adds is a few bytes per locality.
    let shared_len: usize = a[0]
        .body
        .chunks()
        .iter()
        .filter(|c| buffers.iter().any(|b| b.as_ptr() == c.as_ptr()))
        .map(Bytes::len)
        .sum();
    let localities = 4;
    assert!(a[0].body.len() - shared_len < 16 * localities + 40);
}
