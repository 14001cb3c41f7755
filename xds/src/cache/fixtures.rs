//! Builders for small meshes in tests: `service("echo").http(80).endpoint("10.0.0.1", "r/z/s")`.

use std::sync::Arc;

use crate::model::{
    ClientKey, Endpoint, GlobalService, Locality, LocalityLbSetting, LocalityPolicy, Mesh,
    OutlierDetection, Protocol, ServicePort,
};

/// A global service `<name>.default.global` under construction.
pub(crate) struct ServiceBuilder(GlobalService);

pub(crate) fn service(name: &str) -> ServiceBuilder {
    ServiceBuilder(GlobalService {
        name: name.to_owned(),
        namespace: "default".to_owned(),
        host: host(name),
        aliases: vec![format!("{name}.default.svc.clusterset.local")],
        ports: Vec::new(),
        locality: LocalityPolicy::default(),
        outlier_detection: Some(OutlierDetection::default()),
        dns: Default::default(),
    })
}

/// The `.global` host of [`service`]`(name)`.
pub(crate) fn host(name: &str) -> String {
    format!("{name}.default.global")
}

/// The cluster (and load assignment) name of port `port` of [`service`]`(name)`.
pub(crate) fn cluster(name: &str, port: u32) -> String {
    format!("outbound|{port}||{}", host(name))
}

impl ServiceBuilder {
    pub(crate) fn http(self, port: u32) -> Self {
        self.port(port, Protocol::Http)
    }

    pub(crate) fn tcp(self, port: u32) -> Self {
        self.port(port, Protocol::Tcp)
    }

    fn port(mut self, port: u32, protocol: Protocol) -> Self {
        self.0.ports.push(ServicePort {
            name: format!("p{port}"),
            port,
            protocol,
            endpoints: Vec::new(),
        });
        self
    }

    /// Adds a ready endpoint in `locality` (`region/zone/subzone`) to every port.
    pub(crate) fn endpoint(self, address: &str, locality: &str) -> Self {
        self.endpoint_with(address, locality, true)
    }

    /// Adds an endpoint that is not ready (translation leaves it out).
    pub(crate) fn not_ready(self, address: &str, locality: &str) -> Self {
        self.endpoint_with(address, locality, false)
    }

    fn endpoint_with(mut self, address: &str, locality: &str, ready: bool) -> Self {
        for port in &mut self.0.ports {
            port.endpoints.push(Endpoint {
                address: address.to_owned(),
                additional_addresses: Box::default(),
                port: 8080,
                locality: Arc::new(Locality::parse(locality)),
                network: Arc::from(""),
                cluster: Arc::from("c1"),
                weight: 1,
                ready,
                gateway: None,
                labels: Default::default(),
            });
        }
        self
    }

    /// Adds a ready endpoint on network `network`, behind the east-west gateway `gateway`.
    pub(crate) fn remote_endpoint(mut self, address: &str, network: &str, gateway: &str) -> Self {
        self = self.endpoint(address, "us-west/us-west-2a/");
        for port in &mut self.0.ports {
            let ep = port.endpoints.last_mut().expect("just added");
            ep.network = Arc::from(network);
            ep.gateway = Some(Arc::new(crate::model::Gateway {
                address: gateway.to_owned(),
                port: 15443,
                ..Default::default()
            }));
        }
        self
    }

    /// A ClusterSetIP service with virtual IP `vip`.
    pub(crate) fn vip(mut self, vip: &str) -> Self {
        self.0.dns.vip = Some(vip.parse().expect("an IPv4 address"));
        self
    }

    /// A headless service (`clusterIP: None`).
    pub(crate) fn headless(mut self) -> Self {
        self.0.dns.headless = true;
        self
    }

    /// An Istio `localityLbSetting` with `failoverPriority` over `labels`.
    pub(crate) fn failover_priority(mut self, labels: &[&str]) -> Self {
        self.0.locality = LocalityPolicy::Istio(LocalityLbSetting {
            failover_priority: labels.iter().map(|l| (*l).to_owned()).collect(),
            ..Default::default()
        });
        self
    }

    pub(crate) fn build(self) -> Arc<GlobalService> {
        Arc::new(self.0)
    }
}

pub(crate) fn mesh(services: impl IntoIterator<Item = Arc<GlobalService>>) -> Mesh {
    Mesh {
        services: services.into_iter().map(|s| (s.host.clone(), s)).collect(),
    }
}

/// The mesh with `svc` added or replaced.
pub(crate) fn with(mesh: &Mesh, svc: Arc<GlobalService>) -> Mesh {
    let mut mesh = mesh.clone();
    mesh.services.insert(svc.host.clone(), svc);
    mesh
}

/// The mesh without `name`'s service.
pub(crate) fn without(mesh: &Mesh, name: &str) -> Mesh {
    let mut mesh = mesh.clone();
    mesh.services.remove(&host(name));
    mesh
}

/// A client key in `locality` with the default listener port.
pub(crate) fn key(locality: &str) -> ClientKey {
    ClientKey {
        locality: Locality::parse(locality),
        listener_port: 15001,
        ..Default::default()
    }
}

/// Two services in two zones, HTTP port 80 each (and a TCP port on `db`).
pub(crate) fn two_services() -> Mesh {
    mesh([
        service("echo")
            .http(80)
            .endpoint("10.0.1.1", "us-east/us-east-1a/")
            .endpoint("10.0.2.1", "us-west/us-west-2a/")
            .build(),
        service("db")
            .tcp(5432)
            .endpoint("10.0.1.2", "us-east/us-east-1a/")
            .build(),
    ])
}
