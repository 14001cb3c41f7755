use std::collections::BTreeMap;

use meshfleet_model::{
    Distribute, Endpoint, Gateway, LocalityLbSetting, Protocol, ServiceDns, ServicePort,
};

use super::*;
use meshfleet_api::fixtures::*;
use meshfleet_api::{self as api, Object};
use meshfleet_index::{Contents, Document, Origin};

/// What a file of `objects` holds, in order.
fn contents(objects: Vec<Object>) -> Contents {
    let documents = objects
        .into_iter()
        .enumerate()
        .map(|(index, object)| Document { index, object })
        .collect();
    Contents {
        documents,
        ..Contents::default()
    }
}

fn index_of(objects: Vec<Object>) -> Index {
    let mut index = Index::default();
    index.reset(&Origin::file("fixture.yaml"), contents(objects));
    index
}

/// Two clusters on network `net-east` (one with the gateway), one on `net-west`.
fn fleet() -> Vec<Object> {
    vec![
        cluster("east-1")
            .region("us-east")
            .zone("us-east-1a")
            .network("net-east")
            .gateway("192.0.2.1", 15443)
            .ready()
            .into(),
        cluster("east-2")
            .region("us-east")
            .zone("us-east-1b")
            .network("net-east")
            .into(),
        cluster("west-1")
            .region("us-west")
            .zone("us-west-2a")
            .subzone("rack-7")
            .network("net-west")
            .annotate(api::ANNOTATION_EAST_WEST_GATEWAY, "192.0.2.10")
            .into(),
    ]
}

fn with_fleet(objects: Vec<Object>) -> Index {
    index_of(fleet().into_iter().chain(objects).collect())
}

/// The endpoint the fleet's `cluster` gives an address of Service `api`'s slice.
fn ep(cluster: &str, address: &str, port: u32) -> Endpoint {
    let (region, zone, subzone, network, gateway) = match cluster {
        "east-1" | "east-2" => (
            "us-east",
            if cluster == "east-1" {
                "us-east-1a"
            } else {
                "us-east-1b"
            },
            "",
            "net-east",
            Some(Gateway {
                address: "192.0.2.1".to_owned(),
                port: 15443,
                ..Default::default()
            }),
        ),
        "west-1" => (
            "us-west",
            "us-west-2a",
            "rack-7",
            "net-west",
            Some(Gateway {
                address: "192.0.2.10".to_owned(),
                port: 15443,
                ..Default::default()
            }),
        ),
        other => panic!("no cluster {other} in the fleet"),
    };
    let mut labels = BTreeMap::from([
        ("kubernetes.io/service-name", "api"),
        ("multicluster.kubernetes.io/source-cluster", cluster),
        ("topology.kubernetes.io/region", region),
        ("topology.kubernetes.io/zone", zone),
        ("topology.istio.io/network", network),
        ("topology.istio.io/cluster", cluster),
    ]);
    if !subzone.is_empty() {
        labels.insert("topology.istio.io/subzone", subzone);
    }
    Endpoint {
        address: address.to_owned(),
        additional_addresses: Box::default(),
        port,
        locality: Arc::new(Locality::new(region, zone, subzone)),
        network: Arc::from(network),
        cluster: Arc::from(cluster),
        weight: 1,
        ready: true,
        gateway: gateway.map(Arc::new),
        labels: Arc::new(
            labels
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ),
    }
}

fn port(name: &str, number: u32, protocol: Protocol, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        name: name.to_owned(),
        port: number,
        protocol,
        endpoints,
    }
}

/// `api` in `team-a` as the catalog serves it by default, with `ports`.
fn global_api(ports: Vec<ServicePort>) -> GlobalService {
    GlobalService {
        name: "api".to_owned(),
        namespace: "team-a".to_owned(),
        host: "api.team-a.global".to_owned(),
        aliases: vec!["api.team-a.svc.clusterset.local".to_owned()],
        ports,
        locality: LocalityPolicy::default(),
        outlier_detection: Some(OutlierDetection::default()),
        dns: ServiceDns {
            // The only ClusterSetIP service: its first candidate in Istio's range.
            vip: match vip::DEFAULT_V4
                .parse::<vip::Range>()
                .unwrap()
                .allocate(["api.team-a.global"])["api.team-a.global"]
            {
                std::net::IpAddr::V4(ip) => Some(ip),
                std::net::IpAddr::V6(_) => None,
            },
            ..ServiceDns::default()
        },
    }
}

fn only_service(catalog: &Catalog) -> &CatalogService {
    assert_eq!(catalog.services.len(), 1, "{:#?}", catalog.services);
    &catalog.services[0]
}

/// The source of an object as it prints: `Kind name`, `Kind ns/name`, `... (cluster c)`.
fn source(text: &str) -> Source {
    let (object, cluster) = match text
        .strip_suffix(')')
        .and_then(|t| t.split_once(" (cluster "))
    {
        Some((object, cluster)) => (object, Some(cluster)),
        None => (text, None),
    };
    let (kind, name) = object.split_once(' ').expect("Kind name");
    let (namespace, name) = name.split_once('/').unwrap_or(("", name));
    let source = Source::object(kind, namespace, name);
    match cluster {
        Some(cluster) => source.in_cluster(cluster),
        None => source,
    }
}

fn problem(text: &str, field: Option<&str>, message: &str) -> Problem {
    Problem {
        source: source(text),
        field: field.map(str::to_owned),
        message: message.to_owned(),
    }
}

mod incremental;
mod output;
mod policy;
mod services;
