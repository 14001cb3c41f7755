//! Test builders: `cluster("east-1").region("us-east").zone("us-east-1a").into()`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

pub struct ClusterFixture(pub Cluster);

pub fn cluster(name: &str) -> ClusterFixture {
    ClusterFixture(Cluster {
        api_version: "meshfleet.io/v1alpha1".to_owned(),
        metadata: meta(None, name),
        spec: ClusterSpec::default(),
        status: ClusterStatus::default(),
    })
}

impl ClusterFixture {
    pub fn region(mut self, region: &str) -> Self {
        self.0.spec.region = Some(region.to_owned());
        self
    }
    pub fn zone(mut self, zone: &str) -> Self {
        self.0.spec.zone = Some(zone.to_owned());
        self
    }
    pub fn subzone(mut self, subzone: &str) -> Self {
        self.0.spec.subzone = Some(subzone.to_owned());
        self
    }
    pub fn network(mut self, network: &str) -> Self {
        self.0.spec.network = Some(network.to_owned());
        self
    }
    pub fn gateway(mut self, address: &str, port: u32) -> Self {
        self.0.spec.east_west_gateway = Some(EastWestGateway {
            address: address.to_owned(),
            port,
        });
        self
    }
    pub fn annotate(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .annotations
            .insert(key.to_owned(), value.to_owned());
        self
    }
    pub fn ready(mut self) -> Self {
        self.0.status.conditions.push(Condition {
            type_: "Ready".to_owned(),
            status: "True".to_owned(),
            reason: None,
            message: None,
            last_transition_time: None,
        });
        self
    }
    /// Ready condition `False` since `since` (RFC 3339).
    pub fn not_ready_since(mut self, since: &str) -> Self {
        self.0.status.conditions.push(Condition {
            type_: "Ready".to_owned(),
            status: "False".to_owned(),
            reason: Some("ClusterNotReachable".to_owned()),
            message: None,
            last_transition_time: Some(since.to_owned()),
        });
        self
    }
    pub fn zones(mut self, zones: &[&str]) -> Self {
        self.0.spec.zones = zones.iter().map(|z| (*z).to_owned()).collect();
        self
    }
    pub fn provider(mut self, provider: &str) -> Self {
        self.0.spec.provider = Some(provider.to_owned());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .labels
            .insert(key.to_owned(), value.to_owned());
        self
    }
    pub fn taint(mut self, key: &str, value: Option<&str>, effect: &str) -> Self {
        self.0.spec.taints.push(Taint {
            key: key.to_owned(),
            value: value.map(str::to_owned),
            effect: effect.to_owned(),
            time_added: None,
        });
        self
    }
    /// `status.resourceSummary`: allocatable and allocated, as Kubernetes quantities
    /// (`[("cpu", "8"), ("memory", "32Gi"), ("pods", "110")]`).
    pub fn capacity(mut self, allocatable: &[(&str, &str)], allocated: &[(&str, &str)]) -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect()
        };
        self.0.status.resource_summary = Some(ResourceSummary {
            allocatable: map(allocatable),
            allocated: map(allocated),
            allocating: BTreeMap::new(),
        });
        self
    }
    pub fn build(self) -> Cluster {
        self.0
    }
    pub fn arc(self) -> Arc<Cluster> {
        Arc::new(self.0)
    }
}

impl From<ClusterFixture> for Object {
    fn from(f: ClusterFixture) -> Self {
        Self::Cluster(Arc::new(f.0))
    }
}

pub struct ServiceFixture(pub Service);

/// A Service template (`namespace` "" = none written); `.observed_in(cluster)` makes it a member
/// cluster's copy.
pub fn service(namespace: &str, name: &str) -> ServiceFixture {
    ServiceFixture(Service {
        api_version: "v1".to_owned(),
        metadata: meta(Some(namespace).filter(|ns| !ns.is_empty()), name),
        spec: ServiceSpec::default(),
        raw: None,
    })
}

impl ServiceFixture {
    pub fn port(mut self, name: &str, port: u32) -> Self {
        self.0.spec.ports.push(ServicePortSpec {
            name: (!name.is_empty()).then(|| name.to_owned()),
            port,
            target_port: None,
            protocol: None,
            app_protocol: None,
        });
        self
    }
    pub fn app_protocol(mut self, app_protocol: &str) -> Self {
        let last = self.0.spec.ports.last_mut().expect("a port first");
        last.app_protocol = Some(app_protocol.to_owned());
        self
    }
    pub fn udp(mut self) -> Self {
        let last = self.0.spec.ports.last_mut().expect("a port first");
        last.protocol = Some("UDP".to_owned());
        self
    }
    pub fn global(self) -> Self {
        self.annotate(ANNOTATION_GLOBAL, "true")
    }
    pub fn annotate(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .annotations
            .insert(key.to_owned(), value.to_owned());
        self
    }
    pub fn observed_in(mut self, cluster: &str) -> Self {
        self.0
            .metadata
            .labels
            .insert(LABEL_SOURCE_CLUSTER.to_owned(), cluster.to_owned());
        self
    }
}

impl From<ServiceFixture> for Object {
    fn from(f: ServiceFixture) -> Self {
        Self::Service(Arc::new(f.0))
    }
}

pub struct SliceFixture(pub EndpointSlice);

/// An IPv4 EndpointSlice of `service` observed in `cluster`.
pub fn slice(namespace: &str, name: &str, service: &str, cluster: &str) -> SliceFixture {
    let mut metadata = meta(Some(namespace), name);
    metadata
        .labels
        .insert(LABEL_SERVICE_NAME.to_owned(), service.to_owned());
    if !cluster.is_empty() {
        metadata
            .labels
            .insert(LABEL_SOURCE_CLUSTER.to_owned(), cluster.to_owned());
    }
    SliceFixture(EndpointSlice {
        api_version: "discovery.k8s.io/v1".to_owned(),
        metadata,
        address_type: "IPv4".to_owned(),
        endpoints: Vec::new(),
        ports: Vec::new(),
    })
}

impl SliceFixture {
    pub fn address_type(mut self, address_type: &str) -> Self {
        self.0.address_type = address_type.to_owned();
        self
    }
    /// An endpoint with `conditions.ready` absent (= ready).
    pub fn endpoint(mut self, address: &str) -> Self {
        self.0.endpoints.push(SliceEndpoint {
            addresses: vec![address.to_owned()],
            ..Default::default()
        });
        self
    }
    pub fn endpoint_ready(mut self, address: &str, ready: bool) -> Self {
        self.0.endpoints.push(SliceEndpoint {
            addresses: vec![address.to_owned()],
            conditions: EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            },
            ..Default::default()
        });
        self
    }
    /// An endpoint on a node in `zone` (the slice's `endpoints[].zone`).
    pub fn endpoint_in_zone(mut self, address: &str, zone: &str) -> Self {
        self.0.endpoints.push(SliceEndpoint {
            addresses: vec![address.to_owned()],
            zone: Some(zone.to_owned()),
            ..Default::default()
        });
        self
    }
    /// An endpoint of pod `pod` (its `targetRef`, in the slice's namespace).
    pub fn endpoint_of_pod(mut self, address: &str, pod: &str) -> Self {
        let namespace = self.0.metadata.namespace.clone().unwrap_or_default();
        self.0.endpoints.push(SliceEndpoint {
            addresses: vec![address.to_owned()],
            target_ref: Some(EndpointTargetRef {
                kind: "Pod".to_owned(),
                namespace,
                name: pod.to_owned(),
            }),
            ..Default::default()
        });
        self
    }
    pub fn endpoint_without_address(mut self) -> Self {
        self.0.endpoints.push(SliceEndpoint::default());
        self
    }
    pub fn port(mut self, name: &str, port: u32) -> Self {
        self.0.ports.push(EndpointPort {
            name: (!name.is_empty()).then(|| name.to_owned()),
            port: Some(port),
            ..Default::default()
        });
        self
    }
    /// The last port added is UDP.
    pub fn udp(mut self) -> Self {
        let last = self.0.ports.last_mut().expect("a port first");
        last.protocol = Some("UDP".to_owned());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .labels
            .insert(key.to_owned(), value.to_owned());
        self
    }
    pub fn annotate(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .annotations
            .insert(key.to_owned(), value.to_owned());
        self
    }
}

impl From<SliceFixture> for Object {
    fn from(f: SliceFixture) -> Self {
        Self::EndpointSlice(Arc::new(f.0))
    }
}

pub fn service_export(namespace: &str, name: &str) -> Object {
    Object::ServiceExport(Arc::new(ServiceExport {
        api_version: "multicluster.x-k8s.io/v1alpha1".to_owned(),
        metadata: meta(Some(namespace), name),
        raw: None,
    }))
}

pub struct RuleFixture(pub DestinationRule);

pub fn rule(namespace: &str, name: &str, host: &str) -> RuleFixture {
    RuleFixture(DestinationRule {
        api_version: "networking.istio.io/v1".to_owned(),
        metadata: meta(Some(namespace), name),
        spec: DestinationRuleSpec {
            host: host.to_owned(),
            traffic_policy: None,
            export_to: Vec::new(),
        },
        raw: None,
    })
}

impl RuleFixture {
    fn policy(&mut self) -> &mut TrafficPolicy {
        self.0
            .spec
            .traffic_policy
            .get_or_insert_with(Default::default)
    }
    pub fn locality_lb(mut self, setting: LocalityLbSetting) -> Self {
        self.policy().load_balancer = Some(LoadBalancer {
            locality_lb_setting: Some(setting),
        });
        self
    }
    pub fn outlier(mut self, outlier: OutlierDetection) -> Self {
        self.policy().outlier_detection = Some(outlier);
        self
    }
    pub fn export_to(mut self, namespaces: &[&str]) -> Self {
        self.0.spec.export_to = namespaces.iter().map(|n| (*n).to_owned()).collect();
        self
    }
}

impl From<RuleFixture> for Object {
    fn from(f: RuleFixture) -> Self {
        Self::DestinationRule(Arc::new(f.0))
    }
}

/// `distribute: [{from, to}]`.
pub fn distribute(from: &str, to: &[(&str, u32)]) -> Distribute {
    Distribute {
        from: from.to_owned(),
        to: to.iter().map(|(l, w)| ((*l).to_owned(), *w)).collect(),
    }
}

pub fn failover(from: &str, to: &str) -> Failover {
    Failover {
        from: from.to_owned(),
        to: to.to_owned(),
    }
}

/// The object without a template's copy of its document, to compare with fixtures.
pub fn without_raw(object: Object) -> Object {
    match object {
        Object::Service(service) if service.raw.is_some() => {
            let mut service = (*service).clone();
            service.raw = None;
            Object::Service(Arc::new(service))
        }
        Object::ServiceExport(export) if export.raw.is_some() => {
            let mut export = (*export).clone();
            export.raw = None;
            Object::ServiceExport(Arc::new(export))
        }
        Object::DestinationRule(rule) if rule.raw.is_some() => {
            let mut rule = (*rule).clone();
            rule.raw = None;
            Object::DestinationRule(Arc::new(rule))
        }
        other => other,
    }
}
