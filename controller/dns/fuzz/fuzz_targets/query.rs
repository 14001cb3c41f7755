//! Any datagram through meshfleet's DNS query path as the UDP loop takes it: the table's
//! answer in place (`udp::answer_from_table`), else the handler's (`server::answer_datagram`:
//! hickory's decoding, the handler, the encoding), against a table with a ClusterSetIP
//! dual-stack service and a headless one with named endpoints. It must not panic; a response
//! must decode, carry the query's id, and fit the UDP size it was encoded for.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use meshfleet_dns::NameTable;
use meshfleet_dns::server::{DnsHandler, answer_datagram};
use meshfleet_dns::udp::answer_from_table;
use meshfleet_dns::zones::ClientZones;
use meshfleet_model::{
    Endpoint, GlobalService, Locality, Mesh, NamedEndpoint, Protocol, ServiceDns, ServicePort,
};

fn endpoint(address: &str, zone: &str, ready: bool) -> Endpoint {
    Endpoint {
        address: address.to_owned(),
        additional_addresses: Box::default(),
        port: 8080,
        locality: Arc::new(Locality::new("us-east", zone, "")),
        network: Arc::from(""),
        cluster: Arc::from("east-1"),
        weight: 1,
        ready,
        gateway: None,
        labels: Default::default(),
    }
}

fn service(name: &str, dns: ServiceDns, endpoints: Vec<Endpoint>) -> Arc<GlobalService> {
    Arc::new(GlobalService {
        name: name.to_owned(),
        namespace: "demo".to_owned(),
        host: format!("{name}.demo.global"),
        aliases: vec![format!("{name}.demo.svc.clusterset.local")],
        ports: vec![ServicePort {
            name: "http".to_owned(),
            port: 80,
            protocol: Protocol::Http,
            endpoints,
        }],
        locality: Default::default(),
        outlier_detection: None,
        dns,
    })
}

static HANDLER: LazyLock<(tokio::runtime::Runtime, DnsHandler, Arc<NameTable>)> = LazyLock::new(|| {
    let echo = service(
        "echo",
        ServiceDns {
            ipv6: true,
            vip: Some(Ipv4Addr::new(240, 240, 0, 1)),
            vip6: Some(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1)),
            ..ServiceDns::default()
        },
        vec![endpoint("10.0.0.1", "us-east-1a", true)],
    );
    let db = service(
        "db",
        ServiceDns {
            headless: true,
            named: vec![NamedEndpoint {
                cluster: "east-1".to_owned(),
                hostname: "db-0".to_owned(),
                addresses: vec!["10.0.1.1".to_owned()],
            }],
            ..ServiceDns::default()
        },
        vec![
            endpoint("10.0.1.1", "us-east-1a", true),
            endpoint("10.0.1.2", "us-east-1b", true),
            endpoint("10.0.1.3", "us-east-1b", false),
        ],
    );
    let mesh = Mesh {
        services: [echo, db].into_iter().map(|s| (s.host.clone(), s)).collect(),
    };
    let table = Arc::new(NameTable::build(&mesh));
    let (tx, rx) = tokio::sync::watch::channel(table.clone());
    std::mem::forget(tx);
    let zones: ClientZones = "us-east-1a=127.0.0.0/8".parse().expect("zones");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    (runtime, DnsHandler::new(rx, None).with_zones(zones), table)
});

fuzz_target!(|data: &[u8]| {
    let (runtime, handler, table) = &*HANDLER;
    let src = SocketAddr::from(([127, 0, 0, 1], 5353));
    let in_place = answer_from_table(table, data, Some("us-east-1a"), false);
    let Some(bytes) = in_place.or_else(|| runtime.block_on(answer_datagram(handler, data, src)))
    else {
        return;
    };
    let response = Message::from_vec(&bytes).expect("meshfleet's response decodes");
    assert_eq!(&bytes[..2], &data[..2], "the response carries the query's id");
    assert!(bytes.len() <= 1232, "fits the largest UDP size meshfleet allows");
    assert!(response.answers.len() <= 8, "no more records than a name holds");
});
