//! The incremental catalog against a full build, over random sequences of changes as sources
//! make them: watch events (apply, delete) and file reloads (reset, forget).

use meshfleet_api::ObjectKey;
use meshfleet_index::Origin;

use super::*;

/// A small deterministic generator (xorshift64*): the same seed gives the same sequence.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const CLUSTERS: [&str; 4] = ["east-1", "east-2", "west-1", "nowhere"];
const SERVICES: [&str; 4] = ["api", "web", "db", "cache"];
const NAMESPACES: [&str; 2] = ["team-a", "team-b"];

/// One random object of any kind the catalog reads.
fn object(rng: &mut Random) -> Object {
    let ns = rng.pick(&NAMESPACES);
    let svc = rng.pick(&SERVICES);
    let in_cluster = rng.pick(&CLUSTERS);
    match rng.below(6) {
        0 => {
            let c = in_cluster;
            let mut fixture = cluster(c);
            if rng.below(5) > 0 {
                fixture = fixture.region(rng.pick(&["us-east", "us-west"]));
            }
            fixture = fixture.zone(rng.pick(&["z1", "z2"]));
            if rng.below(2) == 0 {
                fixture = fixture.network(rng.pick(&["net-a", "net-b"]));
            }
            if rng.below(3) == 0 {
                fixture = fixture.gateway(rng.pick(&["10.9.0.1", "10.9.0.2", "gw.example"]), 15443);
            }
            fixture.into()
        }
        1 | 2 => {
            let mut fixture = service(ns, svc).port("http", 80 + rng.below(2) as u32);
            match rng.below(4) {
                0 => fixture = fixture.global(),
                1 => fixture = fixture.annotate(ANNOTATION_GLOBAL, "yes"),
                _ => {}
            }
            if rng.below(3) == 0 {
                let weights = rng.pick(&["local=50,remote=50", "local=99", "zone=80,remote=20"]);
                fixture = fixture.annotate(ANNOTATION_LOCALITY_WEIGHTS, weights);
            }
            if rng.below(2) == 0 {
                fixture = fixture.observed_in(in_cluster);
            }
            fixture.into()
        }
        3 => service_export(ns, svc),
        4 => {
            let name = format!("{svc}-{}", rng.below(3));
            let mut fixture = slice(ns, &name, rng.pick(&SERVICES), in_cluster).port("http", 8080);
            for i in 0..rng.below(3) {
                let address = format!("10.{}.0.{}", rng.below(4), i + 1);
                fixture = fixture.endpoint_ready(&address, rng.below(4) > 0);
            }
            fixture.into()
        }
        _ => {
            let host = format!("{svc}.{ns}.global");
            let name = format!("dr-{}", rng.below(2));
            let setting = meshfleet_api::LocalityLbSetting {
                distribute: vec![distribute(
                    "us-east/*",
                    &[("us-east/*", 70), ("us-west/*", 30)],
                )],
                ..Default::default()
            };
            let mut fixture = rule(ns, &name, &host);
            if rng.below(3) > 0 {
                fixture = fixture.locality_lb(setting);
            }
            fixture.into()
        }
    }
}

#[test]
fn the_incremental_catalog_equals_a_full_build_after_every_change() {
    // How many steps saw endpoints, Istio's policy and problems: the sequences reach them all.
    let (mut with_endpoints, mut with_rules, mut with_problems) = (0, 0, 0);
    for seed in 1..=20u64 {
        let mut rng = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut index = Index::default();
        let mut incremental = Incremental::default();
        let mut keys: Vec<(Origin, ObjectKey)> = Vec::new();
        for step in 0..150 {
            let watch = Origin::cluster(rng.pick(&["gateway", "east-1"]));
            let file = Origin::file(rng.pick(&["a.yaml", "b.yaml"]));
            match rng.below(10) {
                0..=5 => {
                    let object = object(&mut rng);
                    keys.push((watch.clone(), object.key()));
                    index.apply(&watch, object);
                }
                6 if !keys.is_empty() => {
                    let (origin, key) = keys.swap_remove(rng.below(keys.len()));
                    index.delete(&origin, &key);
                }
                7 => {
                    let objects: Vec<Object> =
                        (0..rng.below(5)).map(|_| object(&mut rng)).collect();
                    index.reset(&file, contents(objects));
                }
                8 => {
                    index.forget(&file);
                }
                _ => {
                    // Nothing changed: the next build has nothing to do.
                }
            }
            if rng.below(4) == 0 {
                // Now and then, the log is trimmed behind the catalog, as the runtime does.
                if let Some(seen) = incremental.generation() {
                    index.trim_changes(seen);
                }
            }
            let work = incremental.collect(&index);
            let updated = incremental.build(work);
            let full = Catalog::build(&index);
            assert_eq!(updated, full, "seed {seed}, step {step}");
            with_endpoints += usize::from(updated.services.iter().any(|s| s.endpoint_count() > 0));
            with_rules += usize::from(
                updated
                    .services
                    .iter()
                    .any(|s| matches!(s.policy_source, PolicySource::DestinationRule { .. })),
            );
            with_problems += usize::from(!updated.problems.is_empty());
        }
    }
    assert!(
        with_endpoints > 300 && with_rules > 100 && with_problems > 300,
        "{with_endpoints} {with_rules} {with_problems}"
    );
}

#[test]
fn a_changed_slice_rebuilds_only_its_service() {
    let mut index = Index::default();
    let gateway = Origin::cluster("gateway");
    index.apply(
        &gateway,
        cluster("east-1").region("us-east").zone("z1").into(),
    );
    for name in ["api", "web", "db"] {
        index.apply(
            &gateway,
            service("team-a", name).port("http", 80).global().into(),
        );
        index.apply(
            &gateway,
            slice("team-a", &format!("{name}-1"), name, "east-1")
                .port("http", 8080)
                .endpoint("10.0.0.1")
                .into(),
        );
    }
    let mut incremental = Incremental::default();
    let work = incremental.collect(&index);
    assert_eq!(work.len(), 3);
    incremental.build(work);

    assert!(incremental.collect(&index).is_empty(), "nothing changed");
    index.apply(
        &gateway,
        slice("team-a", "web-1", "web", "east-1")
            .port("http", 8080)
            .endpoint("10.0.0.2")
            .into(),
    );
    let work = incremental.collect(&index);
    assert_eq!(work.len(), 1, "{work:?}");
    let catalog = incremental.build(work);
    assert_eq!(catalog, Catalog::build(&index));
}

#[test]
fn the_changes_name_each_changed_host_once() {
    let mut index = Index::default();
    let gateway = Origin::cluster("gateway");
    index.apply(
        &gateway,
        cluster("east-1").region("us-east").zone("z1").into(),
    );
    for name in ["api", "web"] {
        index.apply(
            &gateway,
            service("team-a", name).port("http", 80).global().into(),
        );
    }
    let mut incremental = Incremental::default();
    let work = incremental.collect(&index);
    incremental.build(work);
    let hosts = |changes: Vec<(String, Option<Arc<GlobalService>>)>| {
        changes
            .into_iter()
            .map(|(host, svc)| (host, svc.is_some()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hosts(incremental.take_changes()),
        [
            ("api.team-a.global".to_owned(), true),
            ("web.team-a.global".to_owned(), true)
        ]
    );
    assert_eq!(hosts(incremental.take_changes()), []);

    index.delete(&gateway, &Object::from(service("team-a", "web")).key());
    let work = incremental.collect(&index);
    incremental.build(work);
    assert_eq!(
        hosts(incremental.take_changes()),
        [("web.team-a.global".to_owned(), false)]
    );
}

/// Virtual IPs: one per ClusterSetIP service, none for a headless one; another service's
/// arrival or departure leaves them where they are (barring a hash collision, which these
/// names do not have), and only the services whose address changed are reported changed.
#[test]
fn virtual_ips_follow_the_set_of_services_and_nothing_else() {
    let mut index = Index::default();
    let gateway = Origin::cluster("gateway");
    index.apply(
        &gateway,
        cluster("east-1").region("us-east").zone("z1").into(),
    );
    for name in ["api", "web"] {
        index.apply(
            &gateway,
            service("team-a", name).port("http", 80).global().into(),
        );
    }
    let mut incremental = Incremental::default();
    let work = incremental.collect(&index);
    let catalog = incremental.build(work);
    incremental.take_changes();
    let vip = |catalog: &Catalog, host: &str| {
        catalog
            .services
            .iter()
            .find(|s| s.service.host == host)
            .and_then(|s| s.service.dns.vip)
    };
    let (api, web) = (
        vip(&catalog, "api.team-a.global"),
        vip(&catalog, "web.team-a.global"),
    );
    assert!(api.is_some() && web.is_some() && api != web);

    // A third service: its own address; the others keep theirs and are not changed.
    index.apply(
        &gateway,
        service("team-a", "db").port("tcp", 5432).global().into(),
    );
    let work = incremental.collect(&index);
    let catalog = incremental.build(work);
    assert_eq!(vip(&catalog, "api.team-a.global"), api);
    assert_eq!(vip(&catalog, "web.team-a.global"), web);
    assert!(vip(&catalog, "db.team-a.global").is_some());
    let changed: Vec<String> = incremental
        .take_changes()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(changed, ["db.team-a.global"]);
    assert_eq!(catalog, Catalog::build(&index), "as a full build allocates");
}

#[test]
fn a_gateway_hostname_takes_the_addresses_it_resolved_to() {
    let mut index = Index::default();
    let origin = Origin::cluster("gateway");
    index.apply(
        &origin,
        cluster("east-1")
            .region("us-east")
            .zone("z1")
            .network("net-a")
            .into(),
    );
    index.apply(
        &origin,
        cluster("west-1")
            .region("us-west")
            .zone("z2")
            .network("net-b")
            .gateway("GW.Example.", 15443)
            .into(),
    );
    index.apply(
        &origin,
        service("team-a", "api").port("http", 80).global().into(),
    );
    index.apply(
        &origin,
        slice("team-a", "api-1", "api", "west-1")
            .port("http", 8080)
            .endpoint("10.1.0.1")
            .into(),
    );
    assert_eq!(
        gateway_hostnames(index.clusters()),
        BTreeSet::from(["gw.example".to_owned()]),
        "lowercase, without the trailing dot"
    );
    let gateway_of = |catalog: &Catalog| {
        catalog.services[0].service.ports[0].endpoints[0]
            .gateway
            .as_deref()
            .cloned()
    };
    let mut incremental = Incremental::default();
    let work = incremental.collect(&index);
    let catalog = incremental.build(work);
    assert_eq!(gateway_of(&catalog), None, "not resolved yet");
    assert!(
        catalog
            .problems
            .iter()
            .any(|p| p.to_string().contains("\"GW.Example.\" has no address yet")),
        "{:?}",
        catalog.problems
    );

    let resolved = |ips: &[&str]| {
        GatewayAddresses::from([(
            "gw.example".to_owned(),
            ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        )])
    };
    assert!(incremental.set_gateway_addresses(resolved(&["192.0.2.7", "2001:db8::7"])));
    assert!(!incremental.set_gateway_addresses(resolved(&["192.0.2.7", "2001:db8::7"])));
    let work = incremental.collect(&index);
    assert!(!work.is_empty(), "the topology is read again");
    let catalog = incremental.build(work);
    assert_eq!(
        gateway_of(&catalog),
        Some(Gateway {
            address: "192.0.2.7".to_owned(),
            port: 15443,
            additional_addresses: vec!["2001:db8::7".to_owned()].into(),
        })
    );
    assert!(
        incremental
            .take_changes()
            .iter()
            .any(|(h, _)| h == "api.team-a.global")
    );

    // Resolved to nothing (the name is gone): no gateway again.
    incremental.set_gateway_addresses(resolved(&[]));
    let work = incremental.collect(&index);
    assert_eq!(gateway_of(&incremental.build(work)), None);
}
