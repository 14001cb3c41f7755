use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::fixtures::*;
use super::*;
use crate::resource::{CLUSTER, ENDPOINT, LISTENER, NAME_TABLE, ROUTE, SNAPSHOT_TYPES};
use crate::translate::OUTBOUND;

fn names(snapshot: &Snapshot, ty: &str) -> BTreeSet<String> {
    snapshot.iter(ty).map(|r| r.name.clone()).collect()
}

fn versions(snapshot: &Snapshot) -> Vec<String> {
    SNAPSHOT_TYPES
        .iter()
        .map(|t| snapshot.version(t).to_owned())
        .collect()
}

fn changed<'a>(now: &'a Snapshot, before: &'a Snapshot, ty: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = now
        .changes_since(before, ty)
        .into_iter()
        .map(|c| (c.name.to_string(), c.now.is_some()))
        .collect();
    out.sort();
    out
}

#[test]
fn type_indexes_follow_snapshot_types() {
    assert_eq!(type_index(CLUSTER), Some(TYPE_CLUSTER));
    assert_eq!(type_index(ENDPOINT), Some(TYPE_ENDPOINT));
    assert_eq!(type_index(LISTENER), Some(TYPE_LISTENER));
    assert_eq!(type_index(ROUTE), Some(TYPE_ROUTE));
    assert_eq!(type_index(NAME_TABLE), Some(TYPE_NAME_TABLE));
    assert_eq!(type_index("istio.io/debug/syncz"), None);
}

#[test]
fn first_watch_translates_the_whole_mesh() {
    let cache = SnapshotCache::new();
    cache.set_mesh(two_services());
    let rx = cache.watch(&key("us-east/us-east-1a/"));
    let snap = rx.borrow().clone();
    let clusters = BTreeSet::from([cluster("echo", 80), cluster("db", 5432)]);
    assert_eq!(names(&snap, CLUSTER), clusters);
    assert_eq!(names(&snap, ENDPOINT), clusters);
    assert!(names(&snap, LISTENER).contains(OUTBOUND));
    assert!(names(&snap, ROUTE).contains(OUTBOUND));
    assert_eq!(snap.generation(), 1);
    assert!(versions(&snap).iter().all(|v| v.len() == 16));
}

#[test]
fn equal_input_gives_equal_versions_on_every_instance() {
    let (a, b) = (SnapshotCache::new(), SnapshotCache::new());
    a.set_mesh(two_services());
    let ra = a.watch(&key("us-east/us-east-1a/"));
    // b reaches the same mesh another way: empty, one service, then both.
    let rb = b.watch(&key("us-east/us-east-1a/"));
    b.set_mesh(mesh([service("db").tcp(5432).build()]));
    b.set_mesh(two_services());
    assert_eq!(versions(&ra.borrow()), versions(&rb.borrow()));
    let other = a.watch(&key("us-west/us-west-2a/"));
    assert_ne!(
        ra.borrow().version(ENDPOINT),
        other.borrow().version(ENDPOINT)
    );
    assert_eq!(
        ra.borrow().version(CLUSTER),
        other.borrow().version(CLUSTER)
    );
}

#[test]
fn keys_share_every_resource_but_load_assignments_and_the_outbound_listener() {
    let cache = SnapshotCache::new();
    cache.set_mesh(two_services());
    let east = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    let other = ClientKey {
        listener_port: 18000,
        ..key("us-west/us-west-2a/")
    };
    let west = cache.watch(&other).borrow().clone();
    for ty in [CLUSTER, LISTENER, ROUTE] {
        for r in east
            .iter(ty)
            .filter(|r| !(ty == LISTENER && r.name == OUTBOUND))
        {
            assert!(
                Arc::ptr_eq(r, west.get(ty, &r.name).unwrap()),
                "{ty} {}",
                r.name
            );
        }
    }
    let echo = cluster("echo", 80);
    assert_ne!(east.get(ENDPOINT, &echo), west.get(ENDPOINT, &echo));
    assert_ne!(east.get(LISTENER, OUTBOUND), west.get(LISTENER, OUTBOUND));
}

#[test]
fn keys_that_see_a_service_alike_share_its_load_assignment() {
    let cache = SnapshotCache::new();
    let m = two_services();
    cache.set_mesh(m.clone());
    let mut eu = cache.watch(&key("eu/eu-1a/"));
    let mut ap = cache.watch(&key("ap/ap-1a/"));
    let east = cache.watch(&key("us-east/us-east-1a/"));
    let (db, echo) = (cluster("db", 5432), cluster("echo", 80));
    let shared = |a: &Snapshot, b: &Snapshot, name: &str| {
        Arc::ptr_eq(
            a.get(ENDPOINT, name).unwrap(),
            b.get(ENDPOINT, name).unwrap(),
        )
    };
    let same = |a: &Snapshot, b: &Snapshot| shared(a, b, &db) && shared(a, b, &echo);
    assert!(same(&eu.borrow(), &ap.borrow()), "first watch");
    assert!(
        !shared(&eu.borrow(), &east.borrow(), &echo),
        "zone weights differ"
    );
    let moved = service("db")
        .tcp(5432)
        .endpoint("10.0.1.3", "us-east/us-east-1a/")
        .build();
    cache.set_mesh(with(&m, moved));
    assert!(eu.has_changed().unwrap() && ap.has_changed().unwrap());
    assert!(
        same(&eu.borrow_and_update(), &ap.borrow_and_update()),
        "after a change"
    );
}

#[test]
fn endpoint_change_touches_only_that_load_assignment() {
    let cache = SnapshotCache::new();
    let before_mesh = two_services();
    cache.set_mesh(before_mesh.clone());
    let mut rx = cache.watch(&key("us-east/us-east-1a/"));
    let before = rx.borrow_and_update().clone();
    let echo = service("echo")
        .http(80)
        .endpoint("10.0.1.1", "us-east/us-east-1a/")
        .endpoint("10.0.1.9", "us-east/us-east-1a/")
        .endpoint("10.0.2.1", "us-west/us-west-2a/")
        .build();
    assert!(cache.set_mesh(with(&before_mesh, echo)));
    assert!(rx.has_changed().unwrap());
    let after = rx.borrow_and_update().clone();
    assert_eq!(after.generation(), before.generation() + 1);
    assert_eq!(
        changed(&after, &before, ENDPOINT),
        [(cluster("echo", 80), true)]
    );
    for ty in [CLUSTER, LISTENER, ROUTE] {
        assert_eq!(changed(&after, &before, ty), [], "{ty}");
        assert_eq!(after.version(ty), before.version(ty));
    }
    assert_ne!(after.version(ENDPOINT), before.version(ENDPOINT));
    let db = cluster("db", 5432);
    assert!(Arc::ptr_eq(
        after.get(ENDPOINT, &db).unwrap(),
        before.get(ENDPOINT, &db).unwrap()
    ));
}

#[test]
fn unchanged_mesh_notifies_nobody() {
    let cache = SnapshotCache::new();
    let m = two_services();
    cache.set_mesh(m.clone());
    let mut rx = cache.watch(&key("us-east/us-east-1a/"));
    rx.borrow_and_update();
    assert!(!cache.set_mesh(m.clone()), "same Arcs");
    assert!(!cache.set_mesh(two_services()), "equal values in new Arcs");
    // A different service value that translates to the same resources.
    let echo = service("echo")
        .http(80)
        .endpoint("10.0.1.1", "us-east/us-east-1a/")
        .endpoint("10.0.2.1", "us-west/us-west-2a/")
        .not_ready("10.0.3.1", "us-west/us-west-2a/")
        .build();
    assert!(cache.set_mesh(with(&m, echo)));
    assert!(!rx.has_changed().unwrap());
}

#[test]
fn removed_service_leaves_every_type_and_the_route() {
    let cache = SnapshotCache::new();
    let m = two_services();
    cache.set_mesh(m.clone());
    let mut rx = cache.watch(&key("us-east/us-east-1a/"));
    let before = rx.borrow_and_update().clone();
    cache.set_mesh(without(&m, "echo"));
    let after = rx.borrow_and_update().clone();
    let echo = cluster("echo", 80);
    assert_eq!(changed(&after, &before, CLUSTER), [(echo.clone(), false)]);
    assert_eq!(changed(&after, &before, ENDPOINT), [(echo, false)]);
    assert_eq!(
        changed(&after, &before, ROUTE).len(),
        1 + before.len(ROUTE) - after.len(ROUTE)
    );
    assert!(changed(&after, &before, ROUTE).contains(&(OUTBOUND.to_owned(), true)));
    assert_eq!(
        names(&after, LISTENER),
        BTreeSet::from([OUTBOUND.to_owned()])
    );
    assert_eq!(after.len(CLUSTER), 1);
}

#[test]
fn only_keys_whose_snapshot_changed_are_notified() {
    let cache = SnapshotCache::new();
    let m = two_services();
    cache.set_mesh(m.clone());
    let mut east = cache.watch(&key("us-east/us-east-1a/"));
    let mut other_port = cache.watch(&ClientKey {
        listener_port: 18000,
        ..key("us-east/us-east-1a/")
    });
    east.borrow_and_update();
    other_port.borrow_and_update();
    assert_eq!(cache.key_count(), 2);
    let db = service("db")
        .tcp(5432)
        .endpoint("10.0.1.3", "us-east/us-east-1a/")
        .build();
    cache.set_mesh(with(&m, db));
    assert!(east.has_changed().unwrap() && other_port.has_changed().unwrap());
    assert_ne!(
        east.borrow().version(LISTENER),
        other_port.borrow().version(LISTENER)
    );
}

#[test]
fn keys_without_streams_are_dropped() {
    let cache = SnapshotCache::new();
    cache.set_mesh(two_services());
    let a = cache.watch(&key("us-east/us-east-1a/"));
    let a2 = cache.watch(&key("us-east/us-east-1a/"));
    let b = cache.watch(&key("us-west/us-west-2a/"));
    assert_eq!(cache.key_count(), 2);
    drop(a);
    drop(b);
    cache.set_mesh(mesh([]));
    assert_eq!(cache.key_count(), 1, "a2 still watches");
    drop(a2);
    let _c = cache.watch(&key("eu/eu-1a/"));
    assert_eq!(cache.key_count(), 1);
}

#[test]
fn subscriptions_select_by_type_rules() {
    let cache = SnapshotCache::new();
    cache.set_mesh(two_services());
    let snap = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
    let names_of = |ty: &str, sub: &Subscription| -> Vec<String> {
        snap.resources(ty, sub)
            .iter()
            .map(|r| r.name.clone())
            .collect()
    };
    let all = Subscription::wildcard();
    assert_eq!(names_of(CLUSTER, &all).len(), 2);
    assert_eq!(names_of(LISTENER, &all), [OUTBOUND]);
    assert_eq!(names_of(ENDPOINT, &all), Vec::<String>::new());
    let api = snap
        .iter(LISTENER)
        .find(|r| r.name != OUTBOUND)
        .expect("an API listener")
        .name
        .clone();
    let named = Subscription::from_names(LISTENER, &[api.as_str(), "nope:1"], &snap);
    assert_eq!(names_of(LISTENER, &named), [api.as_str()]);
    let both = Subscription::from_names(LISTENER, &["*", api.as_str()], &snap);
    assert!(both.wildcard && both.matches(LISTENER, OUTBOUND) && both.matches(LISTENER, &api));
    let eds = Subscription::from_names::<&str>(ENDPOINT, &[], &snap);
    assert!(!eds.wildcard);
    let interned = Subscription::from_names(ENDPOINT, &[cluster("db", 5432)], &snap);
    let stored = snap.get(ENDPOINT, &cluster("db", 5432)).unwrap();
    assert_eq!(
        &**interned.names.iter().next().unwrap(),
        stored.name.as_str()
    );
}

#[test]
fn failover_label_keys_follow_the_mesh() {
    let cache = SnapshotCache::new();
    let mut keys = cache.label_keys();
    assert!(keys.borrow_and_update().is_empty());
    let rule = service("echo")
        .http(80)
        .failover_priority(&["tier", "topology.istio.io/network=net1"]);
    cache.set_mesh(mesh([rule.build()]));
    assert!(keys.has_changed().unwrap());
    let expected = BTreeSet::from(["tier".to_owned(), "topology.istio.io/network".to_owned()]);
    assert_eq!(**keys.borrow_and_update(), expected);
    let labels = BTreeMap::from([
        ("tier".to_owned(), "gold".to_owned()),
        ("app".to_owned(), "x".to_owned()),
    ]);
    assert_eq!(
        restrict_labels(&labels, &expected),
        BTreeMap::from([("tier".to_owned(), "gold".to_owned())])
    );
    cache.set_mesh(two_services());
    assert!(keys.borrow_and_update().is_empty());
}

/// Chunks of `a`'s body that are the very allocations of chunks of `b`'s.
fn common_chunks(a: &Resource, b: &Resource) -> usize {
    let same = |c: &bytes::Bytes, d: &bytes::Bytes| c.as_ptr() == d.as_ptr() && c.len() == d.len();
    let theirs = b.body.chunks();
    let common = a
        .body
        .chunks()
        .iter()
        .filter(|c| theirs.iter().any(|d| same(c, d)));
    common.count()
}

#[test]
fn keys_share_the_encoded_endpoints_of_their_load_assignments() {
    let cache = SnapshotCache::new();
    let m = two_services();
    cache.set_mesh(m.clone());
    let (east_key, west_key) = (key("us-east/us-east-1a/"), key("us-west/us-west-2a/"));
    let east = cache.watch(&east_key);
    let west = cache.watch(&west_key);
    let echo = cluster("echo", 80);
    let changed = with(
        &m,
        service("echo")
            .http(80)
            .endpoint("10.0.1.1", "us-east/us-east-1a/")
            .endpoint("10.0.1.5", "us-east/us-east-1a/")
            .endpoint("10.0.2.1", "us-west/us-west-2a/")
            .build(),
    );
    for mesh in [m, changed] {
        cache.set_mesh(mesh.clone());
        let (e, w) = (east.borrow().clone(), west.borrow().clone());
        let (a, b) = (
            e.get(ENDPOINT, &echo).unwrap(),
            w.get(ENDPOINT, &echo).unwrap(),
        );
        assert_ne!(a.version, b.version, "weights differ");
        assert_eq!(common_chunks(a, b), 2, "each locality's endpoints, once");
        let (eds_name, cds_name) = (e.intern(ENDPOINT, &echo), w.intern(CLUSTER, &echo));
        assert!(Arc::ptr_eq(&eds_name, &cds_name), "names shared with CDS");
        let svc = &mesh.services[&host("echo")];
        assert_eq!(**a, crate::translate::load_assignments(svc, &east_key)[0]);
        assert_eq!(**b, crate::translate::load_assignments(svc, &west_key)[0]);
    }
}

#[test]
fn a_key_on_another_network_gets_that_network_s_endpoints() {
    let cache = SnapshotCache::new();
    // Every endpoint on net-a: a key on net-b reaches none of them (no gateway), a key
    // without a network reaches all.
    let mut m = two_services();
    for svc in m.services.values_mut() {
        for port in &mut Arc::make_mut(svc).ports {
            for ep in &mut port.endpoints {
                ep.network = Arc::from("net-a");
            }
        }
    }
    cache.set_mesh(m.clone());
    let net_key = ClientKey {
        network: "net-b".to_owned(),
        ..key("us-east/us-east-1a/")
    };
    let local = cache.watch(&key("us-east/us-east-1a/"));
    let remote = cache.watch(&net_key);
    let echo = cluster("echo", 80);
    let svc = &m.services[&host("echo")];
    let expected = crate::translate::load_assignments(svc, &net_key);
    assert_eq!(**remote.borrow().get(ENDPOINT, &echo).unwrap(), expected[0]);
    assert_ne!(
        remote.borrow().get(ENDPOINT, &echo),
        local.borrow().get(ENDPOINT, &echo)
    );
    drop(remote);
    // The network's encoded endpoints go with its last key, and come back with the next.
    cache.set_mesh(without(&m, "db"));
    let again = cache.watch(&net_key);
    assert_eq!(**again.borrow().get(ENDPOINT, &echo).unwrap(), expected[0]);
}

#[test]
fn updating_hosts_equals_setting_the_whole_mesh() {
    let (whole, updated) = (SnapshotCache::new(), SnapshotCache::new());
    let key = key("us-east/us-east-1a/");
    let (rw, ru) = (whole.watch(&key), updated.watch(&key));
    let mesh = two_services();
    whole.set_mesh(mesh.clone());
    let all = || mesh.services.clone().into_iter().map(|(h, s)| (h, Some(s)));
    assert!(updated.update(all()));
    assert_eq!(versions(&rw.borrow()), versions(&ru.borrow()));
    assert!(!updated.update(all()), "the same services again");

    // One service changes, one goes: only those hosts are handed over.
    let mut next = mesh.clone();
    let (changed_host, gone_host) = {
        let mut hosts = next.services.keys().cloned();
        (hosts.next().unwrap(), hosts.next().unwrap())
    };
    let svc = Arc::make_mut(next.services.get_mut(&changed_host).unwrap());
    svc.ports[0].endpoints.truncate(1);
    let changed = next.services[&changed_host].clone();
    next.services.remove(&gone_host);
    whole.set_mesh(next);
    assert!(updated.update([(changed_host, Some(changed)), (gone_host, None)]));
    assert_eq!(versions(&rw.borrow()), versions(&ru.borrow()));
    assert_eq!(names(&rw.borrow(), ENDPOINT), names(&ru.borrow(), ENDPOINT));
}

/// Clients with a verified identity get the clusters that reach gateways with mTLS; plaintext
/// clients keep theirs, and both follow changes.
#[test]
fn secure_keys_get_the_secure_clusters() {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use prost::Message;
    let cache = SnapshotCache::new();
    let local = service("echo")
        .http(80)
        .endpoint("10.0.0.1", "us-east/us-east-1a/");
    cache.set_mesh(mesh([local.build()]));
    let plain = key("us-east/us-east-1a/");
    let secure = ClientKey {
        secure: true,
        ..plain.clone()
    };
    let (plain_rx, secure_rx) = (cache.watch(&plain), cache.watch(&secure));
    let tls_matches = |rx: &watch::Receiver<Arc<Snapshot>>| {
        let snapshot = rx.borrow().clone();
        let r = snapshot.get(CLUSTER, &cluster("echo", 80)).unwrap().clone();
        Cluster::decode(r.body.to_vec().as_slice())
            .unwrap()
            .transport_socket_matches
            .len()
    };
    assert_eq!((tls_matches(&plain_rx), tls_matches(&secure_rx)), (0, 0));
    assert_eq!(
        plain_rx.borrow().version(CLUSTER),
        secure_rx.borrow().version(CLUSTER),
        "nothing to secure: the same clusters"
    );

    let remote = service("echo")
        .http(80)
        .endpoint("10.0.0.1", "us-east/us-east-1a/")
        .remote_endpoint("10.1.0.1", "net-west", "192.0.2.1");
    cache.set_mesh(mesh([remote.build()]));
    assert_eq!((tls_matches(&plain_rx), tls_matches(&secure_rx)), (0, 1));

    cache.set_mesh(mesh([]));
    assert!(
        secure_rx
            .borrow()
            .get(CLUSTER, &cluster("echo", 80))
            .is_none()
    );
}

fn name_table(snapshot: &Snapshot) -> BTreeMap<String, Vec<String>> {
    use prost::Message;
    let r = snapshot
        .get(NAME_TABLE, "")
        .expect("every snapshot has a name table");
    let table = crate::translate::NameTable::decode(&*r.body.to_vec()).unwrap();
    table.table.into_iter().map(|(k, v)| (k, v.ips)).collect()
}

#[test]
fn the_name_table_changes_only_with_what_it_answers() {
    let cache = SnapshotCache::new();
    let echo = || service("echo").http(80).vip("240.240.0.1");
    let db = || service("db").headless().tcp(5432);
    cache.set_mesh(mesh([
        echo().endpoint("10.0.0.1", "r/z/").build(),
        db().endpoint("10.0.1.1", "r/z/").build(),
    ]));
    let rx = cache.watch(&key("r/z/"));
    let first = rx.borrow().clone();
    assert_eq!(first.len(NAME_TABLE), 1);
    let table = name_table(&first);
    assert_eq!(table["echo.default.global"], vec!["240.240.0.1"]);
    assert_eq!(table["db.default.svc.clusterset.local"], vec!["10.0.1.1"]);

    // An endpoint of the ClusterSetIP service moves: EDS changes, the name table does not.
    cache.set_mesh(mesh([
        echo().endpoint("10.0.0.2", "r/z/").build(),
        db().endpoint("10.0.1.1", "r/z/").build(),
    ]));
    let second = rx.borrow().clone();
    assert!(second.generation() > first.generation());
    assert_eq!(second.version(NAME_TABLE), first.version(NAME_TABLE));
    assert!(changed(&second, &first, NAME_TABLE).is_empty());

    // The headless service's endpoint moves: the table follows.
    cache.set_mesh(mesh([
        echo().endpoint("10.0.0.2", "r/z/").build(),
        db().endpoint("10.0.1.2", "r/z/").build(),
    ]));
    let third = rx.borrow().clone();
    assert_eq!(
        changed(&third, &second, NAME_TABLE),
        vec![(String::new(), true)]
    );
    assert_eq!(name_table(&third)["db.default.global"], vec!["10.0.1.2"]);

    // Gone: its names leave the table.
    cache.set_mesh(mesh([echo().endpoint("10.0.0.2", "r/z/").build()]));
    let fourth = rx.borrow().clone();
    assert!(!name_table(&fourth).contains_key("db.default.global"));
    assert_eq!(name_table(&fourth).len(), 2);
}

#[test]
fn keys_on_one_network_share_one_name_table() {
    let cache = SnapshotCache::new();
    cache.set_mesh(mesh([service("echo").http(80).vip("240.240.0.1").build()]));
    let a = cache.watch(&key("r/z/")).borrow().clone();
    let b = cache.watch(&key("r/y/")).borrow().clone();
    let (ta, tb) = (
        a.get(NAME_TABLE, "").unwrap(),
        b.get(NAME_TABLE, "").unwrap(),
    );
    assert!(Arc::ptr_eq(ta, tb));
}

#[test]
fn listeners_of_virtual_ips_are_bound_only_for_keys_without_capture() {
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use prost::Message;
    let cache = SnapshotCache::new();
    let db = || service("db").tcp(5432).vip("240.240.0.3");
    cache.set_mesh(mesh([db().endpoint("10.0.0.1", "r/z/").build()]));
    let captured = cache.watch(&key("r/z/")).borrow().clone();
    let unbound = ClientKey {
        bind_vips: true,
        ..key("r/z/")
    };
    let rx = cache.watch(&unbound);
    let bound = rx.borrow().clone();
    let freebind = |s: &Snapshot| {
        let r = s
            .get(LISTENER, "240.240.0.3_5432")
            .expect("the VIP's listener");
        Listener::decode(&*r.body.to_vec()).unwrap().freebind
    };
    assert_eq!(freebind(&captured), None);
    assert!(freebind(&bound).is_some_and(|b| b.value));
    let wildcard: BTreeSet<String> = bound
        .resources(LISTENER, &Subscription::wildcard())
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        wildcard,
        BTreeSet::from([OUTBOUND.to_owned(), "240.240.0.3_5432".to_owned()])
    );

    // The service goes: its listener leaves both variants.
    cache.set_mesh(mesh([]));
    let after = rx.borrow().clone();
    assert!(after.get(LISTENER, "240.240.0.3_5432").is_none());
    let captured = cache.watch(&key("r/z/")).borrow().clone();
    assert!(captured.get(LISTENER, "240.240.0.3_5432").is_none());
}
