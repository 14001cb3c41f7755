use std::sync::Arc;

use meshfleet_model::{
    Endpoint, Locality, LocalityPolicy, NamedEndpoint, Protocol, ServiceDns, ServicePort,
    TierWeights,
};

use super::*;

fn endpoint(address: &str, ready: bool) -> Endpoint {
    Endpoint {
        address: address.to_owned(),
        additional_addresses: Box::default(),
        port: 8080,
        locality: Arc::new(Locality::parse("us-east/us-east-1a")),
        network: Arc::from(""),
        cluster: Arc::from("east-1"),
        weight: 1,
        ready,
        gateway: None,
        labels: Default::default(),
    }
}

fn service(
    name: &str,
    namespace: &str,
    dns: ServiceDns,
    endpoints: Vec<Endpoint>,
) -> GlobalService {
    GlobalService {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        host: format!("{name}.{namespace}.global"),
        aliases: vec![format!("{name}.{namespace}.svc.clusterset.local")],
        ports: vec![
            ServicePort {
                name: "http".to_owned(),
                port: 80,
                protocol: Protocol::Http,
                endpoints: endpoints.clone(),
            },
            ServicePort {
                name: String::new(),
                port: 9000,
                protocol: Protocol::Tcp,
                endpoints,
            },
        ],
        locality: LocalityPolicy::Tiers(TierWeights::default()),
        outlier_detection: None,
        dns,
    }
}

fn mesh(services: Vec<GlobalService>) -> Mesh {
    Mesh {
        services: services
            .into_iter()
            .map(|s| (s.host.clone(), Arc::new(s)))
            .collect(),
    }
}

/// A service's virtual IPs, as the catalog would have set them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vips {
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
}

/// The table of `mesh`, its ClusterSetIP services given virtual IPs first (one per service,
/// in host order); returns them by host.
pub(crate) fn table(mesh: &Mesh) -> (NameTable, BTreeMap<String, Vips>) {
    let mut vips = BTreeMap::new();
    let mut with_vips = Mesh::default();
    for (i, (host, svc)) in mesh.services.iter().enumerate() {
        let mut svc = GlobalService::clone(svc);
        if !svc.dns.headless {
            let n = u8::try_from(i + 1).unwrap();
            svc.dns.vip = svc.dns.ipv4.then(|| Ipv4Addr::new(240, 240, 0, n));
            svc.dns.vip6 = svc
                .dns
                .ipv6
                .then(|| Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, u16::from(n)));
            vips.insert(
                host.clone(),
                Vips {
                    v4: svc.dns.vip,
                    v6: svc.dns.vip6,
                },
            );
        }
        with_vips.services.insert(host.clone(), Arc::new(svc));
    }
    (NameTable::build(&with_vips), vips)
}

/// The answer's records as text (`A 1.2.3.4`, `SRV 0 50 80 target.`), sorted.
fn texts(answer: &Answer) -> Vec<String> {
    let Answer::Records(records) = answer else {
        panic!("records expected: {answer:?}")
    };
    let mut out: Vec<String> = records
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    out.sort();
    out
}

pub(crate) fn two_services() -> Mesh {
    let dual = ServiceDns {
        ipv6: true,
        ..ServiceDns::default()
    };
    let headless = ServiceDns {
        headless: true,
        named: vec![NamedEndpoint {
            cluster: "east-1".to_owned(),
            hostname: "db-0".to_owned(),
            addresses: vec!["10.0.0.5".to_owned()],
        }],
        ..ServiceDns::default()
    };
    mesh(vec![
        service("echo", "demo", dual, vec![endpoint("10.0.0.1", true)]),
        service(
            "db",
            "shop",
            headless,
            vec![
                endpoint("10.0.0.5", true),
                endpoint("10.0.0.6", true),
                endpoint("10.0.0.7", false),
            ],
        ),
    ])
}

#[test]
fn cluster_set_ip_services_answer_their_virtual_ips_under_both_names() {
    let mesh = two_services();
    let (table, vips) = table(&mesh);
    let v = vips["echo.demo.global"];
    let (v4, v6) = (v.v4.unwrap(), v.v6.unwrap());
    for name in [
        "echo.demo.svc.clusterset.local.",
        "ECHO.demo.global",
        "echo.demo.global.",
    ] {
        assert_eq!(
            texts(&table.lookup(name, RecordType::A, None)),
            [format!("A {v4}")],
            "{name}"
        );
        assert_eq!(
            texts(&table.lookup(name, RecordType::AAAA, None)),
            [format!("AAAA {v6}")],
            "{name}"
        );
    }
    assert_eq!(
        texts(&table.lookup(
            "_http._tcp.echo.demo.svc.clusterset.local.",
            RecordType::SRV,
            None
        )),
        ["SRV 0 50 80 echo.demo.svc.clusterset.local."]
    );
    // Only named ports have SRV records.
    assert!(matches!(
        table.lookup(
            "_9000._tcp.echo.demo.svc.clusterset.local.",
            RecordType::SRV,
            None
        ),
        Answer::NxDomain { .. }
    ));
}

#[test]
fn headless_services_answer_ready_endpoints_and_named_hosts() {
    let mesh = two_services();
    let (table, vips) = table(&mesh);
    assert!(
        !vips.contains_key("db.shop.global"),
        "no VIP for a headless service"
    );
    assert_eq!(
        texts(&table.lookup("db.shop.svc.clusterset.local.", RecordType::A, None)),
        ["A 10.0.0.5", "A 10.0.0.6"]
    );
    assert_eq!(
        texts(&table.lookup(
            "db-0.east-1.db.shop.svc.clusterset.local.",
            RecordType::A,
            None
        )),
        ["A 10.0.0.5"]
    );
    assert_eq!(
        texts(&table.lookup(
            "_http._tcp.db.shop.svc.clusterset.local.",
            RecordType::SRV,
            None
        )),
        ["SRV 0 50 80 db-0.east-1.db.shop.svc.clusterset.local."]
    );
    assert!(matches!(
        table.lookup("db.shop.svc.clusterset.local.", RecordType::AAAA, None),
        Answer::NoData { .. }
    ));
}

#[test]
fn nxdomain_and_nodata_as_the_specification_says() {
    let (table, _) = table(&two_services());
    for (name, ty) in [
        ("missing.demo.svc.clusterset.local.", RecordType::A),
        ("echo.other.svc.clusterset.local.", RecordType::A),
        ("x.echo.demo.svc.clusterset.local.", RecordType::A),
        ("nothing.global.", RecordType::A),
    ] {
        let answer = table.lookup(name, ty, None);
        let Answer::NxDomain { soa } = &answer else {
            panic!("{name}: {answer:?}")
        };
        assert_eq!(soa.record_type(), RecordType::SOA);
    }
    for (name, ty) in [
        ("echo.demo.svc.clusterset.local.", RecordType::TXT),
        ("demo.svc.clusterset.local.", RecordType::A),
        ("svc.clusterset.local.", RecordType::A),
        ("clusterset.local.", RecordType::A),
        ("demo.global.", RecordType::A),
        ("_tcp.echo.demo.svc.clusterset.local.", RecordType::SRV),
        ("east-1.db.shop.svc.clusterset.local.", RecordType::A),
    ] {
        assert!(
            matches!(table.lookup(name, ty, None), Answer::NoData { .. }),
            "{name} {ty}"
        );
    }
    assert_eq!(
        texts(&table.lookup("clusterset.local.", RecordType::SOA, None)).len(),
        1,
        "the apex has its SOA"
    );
    assert_eq!(
        table.lookup("example.com.", RecordType::A, None),
        Answer::NotOurs
    );
    assert_eq!(table.lookup("local.", RecordType::A, None), Answer::NotOurs);
    assert_eq!(
        table.lookup("xclusterset.local.", RecordType::A, None),
        Answer::NotOurs
    );
}

#[test]
fn two_instances_build_the_same_table() {
    let (a, _) = table(&two_services());
    let (b, _) = table(&two_services());
    assert_eq!(a, b);
    let (other, _) = table(&mesh(vec![]));
    assert_ne!(a.serial, other.serial, "the serial follows the content");
}

fn zoned_endpoint(address: &str, zone: &str) -> Endpoint {
    Endpoint {
        locality: Arc::new(Locality::parse(&format!("r/{zone}"))),
        ..endpoint(address, true)
    }
}

#[test]
fn headless_answers_put_the_clients_zone_first_or_alone() {
    let headless = |local_only| ServiceDns {
        headless: true,
        local_only,
        ..ServiceDns::default()
    };
    let endpoints = vec![
        zoned_endpoint("10.0.0.1", "zone-a"),
        zoned_endpoint("10.0.0.2", "zone-b"),
        zoned_endpoint("10.0.0.3", "zone-a"),
    ];
    let (table, _) = table(&mesh(vec![
        service("db", "shop", headless(false), endpoints.clone()),
        service("cache", "shop", headless(true), endpoints),
        service(
            "echo",
            "demo",
            ServiceDns::default(),
            vec![endpoint("10.0.0.9", true)],
        ),
    ]));
    let order = |name: &str, zone: Option<&str>| -> Vec<String> {
        let Answer::Records(records) = table.lookup(name, RecordType::A, zone) else {
            panic!("{name}")
        };
        records.iter().map(|r| r.data.to_string()).collect()
    };
    let db = "db.shop.svc.clusterset.local.";
    assert_eq!(order(db, None), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(
        order(db, Some("zone-b")),
        ["10.0.0.2", "10.0.0.1", "10.0.0.3"]
    );
    assert_eq!(
        order(db, Some("zone-a")),
        ["10.0.0.1", "10.0.0.3", "10.0.0.2"]
    );
    assert_eq!(
        order(db, Some("zone-c")),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    let cache = "cache.shop.global.";
    assert_eq!(order(cache, Some("zone-b")), ["10.0.0.2"]);
    assert_eq!(
        order(cache, None),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
        "unknown zone: all"
    );
    assert!(
        matches!(
            table.lookup(cache, RecordType::A, Some("zone-c")),
            Answer::NoData { .. }
        ),
        "local-only in a zone without endpoints: nothing"
    );
    // A virtual IP is everyone's.
    assert_eq!(order("echo.demo.global.", Some("zone-b")).len(), 1);
}

#[test]
fn only_what_dns_answers_counts_as_a_change() {
    let vip_service = service(
        "echo",
        "demo",
        ServiceDns::default(),
        vec![endpoint("10.0.0.1", true)],
    );
    let moved = service(
        "echo",
        "demo",
        ServiceDns::default(),
        vec![endpoint("10.0.0.2", true)],
    );
    assert!(
        same_answers(&vip_service, &moved),
        "a VIP does not follow its endpoints"
    );
    let headless = ServiceDns {
        headless: true,
        ..ServiceDns::default()
    };
    let a = service(
        "db",
        "shop",
        headless.clone(),
        vec![endpoint("10.0.0.1", true)],
    );
    let b = service(
        "db",
        "shop",
        headless.clone(),
        vec![endpoint("10.0.0.2", true)],
    );
    let not_ready = service(
        "db",
        "shop",
        headless,
        vec![endpoint("10.0.0.1", true), endpoint("10.0.0.9", false)],
    );
    assert!(!same_answers(&a, &b));
    assert!(
        same_answers(&a, &not_ready),
        "a not-ready endpoint is not answered"
    );
}
