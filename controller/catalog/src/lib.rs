//! The NameService catalog: every exported service, merged over the member clusters that have it,
//! with its global names, ports, endpoints (each with its cluster's locality and network) and
//! locality policy. A pure function of the [`Index`]; [`Catalog::mesh`] hands it to xDS.
//!
//! ```text
//!  Index ──> exported services ─────────┬─> ports (template, else union of observed copies)
//!            (annotation, ServiceExport) ├─> endpoints (EndpointSlices × Cluster topology)
//!                                        └─> policy: DestinationRule localityLbSetting
//!                                                    > meshfleet.io/locality-weights > default
//! ```
//!
//! Whatever does not validate is a [`Problem`] in [`Catalog::problems`]; the rest is built.
#![forbid(unsafe_code)]

mod endpoints;
mod incremental;
mod istio;
mod ports;
mod table;
mod tiers;
mod topology;
pub mod vip;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meshfleet_model::{
    GlobalService, Locality, LocalityPolicy, Mesh, NamedEndpoint, OutlierDetection, ServiceDns,
    ServicePort, TierWeights,
};
use serde::Serialize;

use meshfleet_api::{
    ANNOTATION_DNS_ANSWERS, ANNOTATION_GLOBAL, ANNOTATION_LOCALITY_WEIGHTS, DestinationRule,
    EndpointSlice, ObjectKey, Service, ServiceSpec,
};
use meshfleet_index::Index;
use meshfleet_model::problem::{Problem, Source};

pub use incremental::{Incremental, ServiceKey, Work};
pub use tiers::{DEFAULT_TIERS, TierWeightsError, format_tier_weights, parse_tier_weights};
pub use topology::{GatewayAddresses, gateway_hostnames};

/// The catalog at one moment. Serializes as `{"services": [...], "problems": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Catalog {
    /// Exported services, sorted by host; shared with the catalog that follows, when unchanged.
    pub services: Vec<Arc<CatalogService>>,
    /// What did not validate while building, in a stable order.
    pub problems: Vec<Problem>,
}

/// One exported service: the model xDS serves, and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CatalogService {
    #[serde(flatten)]
    pub service: Arc<GlobalService>,
    /// Why it is exported.
    pub exported_by: BTreeSet<ExportReason>,
    /// Member clusters with an observed copy of the Service or endpoints for it, by name.
    pub clusters: Vec<String>,
    /// Where `service.locality` came from.
    pub policy_source: PolicySource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExportReason {
    /// `meshfleet.io/global: "true"` on the template or an observed copy.
    Annotation,
    /// A ServiceExport of the same namespace and name.
    ServiceExport,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "camelCase")]
pub enum PolicySource {
    /// `local=99,remote=1`.
    Default,
    /// `meshfleet.io/locality-weights` on this Service (`Service ns/name`, maybe with a cluster).
    Annotation { object: String },
    /// The `localityLbSetting` of this DestinationRule.
    DestinationRule { namespace: String, name: String },
}

impl CatalogService {
    /// Endpoints over all ports (an endpoint serving two ports counts twice).
    pub fn endpoint_count(&self) -> usize {
        self.service.ports.iter().map(|p| p.endpoints.len()).sum()
    }

    /// Ready endpoints over all ports.
    pub fn ready_endpoint_count(&self) -> usize {
        self.service
            .ports
            .iter()
            .map(|p| p.endpoints.iter().filter(|e| e.ready).count())
            .sum()
    }

    /// Localities that have endpoints.
    pub fn localities(&self) -> BTreeSet<&Locality> {
        self.service
            .ports
            .iter()
            .flat_map(|p| &p.endpoints)
            .map(|e| &*e.locality)
            .collect()
    }
}

impl Catalog {
    /// Builds the catalog, its `problems` led by the index's own (parse errors, duplicates):
    /// everything a user has to fix, as `/debug/problems` and `meshfleet catalog` show it.
    pub fn build_reporting(index: &Index) -> Self {
        let mut catalog = Self::build(index);
        catalog.lead_with(index.problems());
        catalog
    }

    /// Puts `problems` (the sources': parse errors, duplicates) before the catalog's own.
    pub fn lead_with(&mut self, mut problems: Vec<Problem>) {
        problems.append(&mut self.problems);
        self.problems = problems;
    }

    /// Builds the catalog from the index. Deterministic: the same index gives the same catalog.
    /// To follow an index as it changes, keep an [`Incremental`] instead.
    pub fn build(index: &Index) -> Self {
        let mut incremental = Incremental::default();
        let work = incremental.collect(index);
        incremental.build(work)
    }

    /// The mesh for xDS: the same `Arc`s, no copy of any service.
    pub fn mesh(&self) -> Mesh {
        Mesh {
            services: self
                .services
                .iter()
                .map(|s| (s.service.host.clone(), s.service.clone()))
                .collect(),
        }
    }

    /// A table for people: one line per service (`meshfleet catalog -o table`).
    pub fn to_table(&self) -> String {
        table::render(self)
    }
}

/// One exported (namespace, name): its template, its observed copies, and why it is exported.
#[derive(Debug, Default)]
pub(crate) struct Export {
    /// The Service without a source cluster: when present, it alone defines the ports.
    template: Option<Arc<Service>>,
    /// Member clusters' copies, by source cluster name.
    observed: Vec<Arc<Service>>,
    /// Empty = not exported.
    reasons: BTreeSet<ExportReason>,
}

impl Export {
    /// Exported, and by something that exists: a reason and a Service to export.
    pub(crate) fn is_exported(&self) -> bool {
        !self.reasons.is_empty() && (self.template.is_some() || !self.observed.is_empty())
    }
}

/// `meshfleet.io/global`: `"true"` exports, `"false"` (or none) does not, anything else is reported.
pub(crate) fn global_annotation(service: &Service, problems: &mut Vec<Problem>) -> bool {
    match service.metadata.annotation(ANNOTATION_GLOBAL) {
        Some("true") => true,
        None | Some("false") => false,
        Some(other) => {
            problems.push(
                Problem::new(
                    object_name(service),
                    format!("{other:?} is not \"true\" or \"false\"; not exported by it"),
                )
                .at(format!("metadata.annotations[\"{ANNOTATION_GLOBAL}\"]")),
            );
            false
        }
    }
}

/// `Service team-a/api`, or `Service team-a/api (cluster east-1)` for an observed copy.
fn object_name(service: &Service) -> Source {
    Source::from(&ObjectKey::of(
        &service.api_version,
        "Service",
        &service.metadata,
    ))
}

/// What one service is built from, besides its Services.
pub(crate) struct Parts<'a> {
    pub slices: &'a [Arc<EndpointSlice>],
    pub rule: Option<&'a Arc<DestinationRule>>,
    pub topology: &'a topology::Topology,
}

/// One service and the problems found building it.
pub(crate) fn build_service(
    (namespace, name): &ServiceKey,
    export: &Export,
    parts: &Parts<'_>,
) -> (CatalogService, Vec<Problem>) {
    let mut problems = Vec::new();
    let ports = ports::service_ports(export.template.as_ref(), &export.observed, &mut problems);
    let found = endpoints::endpoints(&ports, parts.slices, parts.topology, &mut problems);
    let (locality, outlier_detection, policy_source) = policy(export, parts.rule, &mut problems);
    let mut clusters = found.clusters;
    clusters.extend(
        export
            .observed
            .iter()
            .filter_map(|s| s.source_cluster())
            .map(str::to_owned),
    );
    let service = GlobalService {
        host: format!("{name}.{namespace}.global"),
        aliases: vec![format!("{name}.{namespace}.svc.clusterset.local")],
        ports: ports
            .into_iter()
            .zip(found.per_port)
            .map(|(port, endpoints)| ServicePort {
                name: port.name,
                port: port.port,
                protocol: port.protocol,
                endpoints,
            })
            .collect(),
        locality,
        outlier_detection,
        dns: service_dns(export, parts.slices, &mut problems),
        name: name.to_string(),
        namespace: namespace.to_string(),
    };
    let entry = CatalogService {
        service: Arc::new(service),
        exported_by: export.reasons.clone(),
        clusters: clusters.into_iter().collect(),
        policy_source,
    };
    (entry, problems)
}

/// What DNS answers besides the ports: headless and families from the template (else the
/// first observed copy), and the ready endpoints that have a hostname, one per cluster and
/// hostname (a dual-stack pod's IPv4 and IPv6 slices merged).
fn service_dns(
    export: &Export,
    slices: &[Arc<EndpointSlice>],
    problems: &mut Vec<Problem>,
) -> ServiceDns {
    let spec = export
        .template
        .as_ref()
        .or_else(|| export.observed.first())
        .map(|s| &s.spec);
    let families = spec.map_or(&[][..], |s| s.ip_families.as_slice());
    let ipv6 = families.iter().any(|f| f == "IPv6");
    let mut named: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for slice in slices {
        let Some(cluster) = slice.metadata.source_cluster() else {
            continue;
        };
        for ep in &slice.endpoints {
            let (Some(hostname), true) = (&ep.hostname, ep.ready()) else {
                continue;
            };
            let addresses = named
                .entry((cluster.to_owned(), hostname.to_string()))
                .or_default();
            addresses.extend(ep.addresses.first().cloned());
        }
    }
    let annotated = export
        .template
        .iter()
        .chain(&export.observed)
        .find_map(|s| Some((s, s.metadata.annotation(ANNOTATION_DNS_ANSWERS)?)));
    let local_only = match annotated {
        None | Some((_, "local-first")) => false,
        Some((_, "local-only")) => true,
        Some((service, other)) => {
            problems.push(
                Problem::new(
                    object_name(service),
                    format!(
                        "{other:?} is not \"local-first\" or \"local-only\"; answering local-first"
                    ),
                )
                .at(format!(
                    "metadata.annotations[\"{ANNOTATION_DNS_ANSWERS}\"]"
                )),
            );
            false
        }
    };
    ServiceDns {
        headless: spec.is_some_and(ServiceSpec::is_headless),
        local_only,
        ipv4: !ipv6 || families.iter().any(|f| f == "IPv4"),
        ipv6,
        named: named
            .into_iter()
            .map(|((cluster, hostname), addresses)| NamedEndpoint {
                cluster,
                hostname,
                addresses,
            })
            .collect(),
        // Set once the whole catalog is known (`Incremental::build`).
        vip: None,
        vip6: None,
    }
}

/// A DestinationRule's valid `localityLbSetting` wins; else the annotation, else the default.
/// Outlier detection: the rule's when it has a valid one; else the default for tiers and none for
/// Istio's algorithm (Istio fails over only where the rule sets outlier detection).
fn policy(
    export: &Export,
    rule: Option<&Arc<DestinationRule>>,
    problems: &mut Vec<Problem>,
) -> (LocalityPolicy, Option<OutlierDetection>, PolicySource) {
    let from_rule = rule.map(|r| (r, istio::rule_policy(r, problems)));
    if let Some((
        rule,
        istio::RulePolicy {
            setting: Some(setting),
            outlier,
        },
    )) = from_rule.as_ref()
    {
        let source = PolicySource::DestinationRule {
            namespace: rule.metadata.namespace_or_default().to_owned(),
            name: rule.metadata.name.clone(),
        };
        return (
            LocalityPolicy::Istio(setting.clone()),
            outlier.clone(),
            source,
        );
    }
    let (tiers, source) = tier_policy(export, problems);
    let outlier = from_rule.and_then(|(_, p)| p.outlier).unwrap_or_default();
    (LocalityPolicy::Tiers(tiers), Some(outlier), source)
}

/// The annotation of the template, else of the first observed copy that has one.
fn tier_policy(export: &Export, problems: &mut Vec<Problem>) -> (TierWeights, PolicySource) {
    let annotated = export
        .template
        .iter()
        .chain(&export.observed)
        .find_map(|s| Some((s, s.metadata.annotation(ANNOTATION_LOCALITY_WEIGHTS)?)));
    let Some((service, value)) = annotated else {
        return (TierWeights::default(), PolicySource::Default);
    };
    match parse_tier_weights(value) {
        Ok(tiers) => (
            tiers,
            PolicySource::Annotation {
                object: object_name(service).to_string(),
            },
        ),
        Err(message) => {
            problems.push(
                Problem::new(
                    object_name(service),
                    format!("{message}; using {DEFAULT_TIERS}"),
                )
                .at(format!(
                    "metadata.annotations[\"{ANNOTATION_LOCALITY_WEIGHTS}\"]"
                )),
            );
            (TierWeights::default(), PolicySource::Default)
        }
    }
}

#[cfg(test)]
mod tests;
