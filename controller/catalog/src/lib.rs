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
mod istio;
mod ports;
mod table;
mod tiers;
mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use meshfleet_model::{
    GlobalService, Locality, LocalityPolicy, Mesh, OutlierDetection, ServicePort, TierWeights,
};
use serde::Serialize;

use meshfleet_api::{
    ANNOTATION_GLOBAL, ANNOTATION_LOCALITY_WEIGHTS, DestinationRule, EndpointSlice, ObjectKey,
    Service,
};
use meshfleet_index::Index;
use meshfleet_model::parallel;
use meshfleet_model::problem::{Problem, Source};

pub use tiers::{DEFAULT_TIERS, format_tier_weights, parse_tier_weights};

/// Below this many services per core the catalog is built on one thread.
const SERVICES_PER_THREAD: usize = 256;

/// The catalog at one moment. Serializes as `{"services": [...], "problems": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Catalog {
    /// Exported services, sorted by host.
    pub services: Vec<CatalogService>,
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
            .map(|e| &e.locality)
            .collect()
    }
}

impl Catalog {
    /// Builds the catalog, its `problems` led by the index's own (parse errors, duplicates):
    /// everything a user has to fix, as `/debug/problems` and `meshfleet catalog` show it.
    pub fn build_reporting(index: &Index) -> Self {
        let mut catalog = Self::build(index);
        let mut problems = index.problems();
        problems.append(&mut catalog.problems);
        catalog.problems = problems;
        catalog
    }

    /// Builds the catalog from the index. Deterministic: the same index gives the same catalog.
    pub fn build(index: &Index) -> Self {
        let mut problems = Vec::new();
        let topology = topology::Topology::new(index, &mut problems);
        let exported: Vec<_> = exported_services(index, &mut problems)
            .into_iter()
            .collect();
        let keys: BTreeSet<(String, String)> = exported.iter().map(|(k, _)| k.clone()).collect();
        let rules = istio::Rules::new(index, &keys, &mut problems);
        let slices = slices_by_service(index);
        // Services are independent of each other: build them on every core, problems in order.
        let built = parallel::map_ordered(&exported, SERVICES_PER_THREAD, |(key, export)| {
            let parts = Parts {
                slices: slices.get(key).map_or(&[], Vec::as_slice),
                rule: rules.get(&key.0, &key.1),
                topology: &topology,
            };
            build_service(key, export, &parts)
        });
        let mut services = Vec::with_capacity(built.len());
        for (service, service_problems) in built {
            services.push(service);
            problems.extend(service_problems);
        }
        services.sort_by(|a, b| a.service.host.cmp(&b.service.host));
        Self { services, problems }
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
struct Export {
    /// The Service without a source cluster: when present, it alone defines the ports.
    template: Option<Arc<Service>>,
    /// Member clusters' copies, by source cluster name.
    observed: Vec<Arc<Service>>,
    /// Empty = not exported.
    reasons: BTreeSet<ExportReason>,
}

fn exported_services(
    index: &Index,
    problems: &mut Vec<Problem>,
) -> BTreeMap<(String, String), Export> {
    let mut all: BTreeMap<(String, String), Export> = BTreeMap::new();
    // Services come by namespace, name, then cluster: the template first, copies in cluster order.
    for service in index.services() {
        let key = (
            service.metadata.namespace_or_default().to_owned(),
            service.metadata.name.clone(),
        );
        let export = all.entry(key).or_default();
        if global_annotation(service, problems) {
            export.reasons.insert(ExportReason::Annotation);
        }
        match service.source_cluster() {
            Some(_) => export.observed.push(service.clone()),
            None => export.template = Some(service.clone()),
        }
    }
    for service_export in index.service_exports() {
        let meta = &service_export.metadata;
        let key = (meta.namespace_or_default().to_owned(), meta.name.clone());
        let export = all.entry(key).or_default();
        let reported = export.reasons.contains(&ExportReason::ServiceExport);
        if export.template.is_none() && export.observed.is_empty() && !reported {
            problems.push(Problem::new(
                Source::object("ServiceExport", meta.namespace_or_default(), &meta.name),
                "no Service of that namespace and name; nothing exported",
            ));
        }
        export.reasons.insert(ExportReason::ServiceExport);
    }
    all.retain(|_, e| !e.reasons.is_empty() && (e.template.is_some() || !e.observed.is_empty()));
    all
}

/// `meshfleet.io/global`: `"true"` exports, `"false"` (or none) does not, anything else is reported.
fn global_annotation(service: &Service, problems: &mut Vec<Problem>) -> bool {
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

fn slices_by_service(index: &Index) -> BTreeMap<(String, String), Vec<Arc<EndpointSlice>>> {
    let mut slices: BTreeMap<(String, String), Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for slice in index.endpoint_slices() {
        if let Some(service) = slice.service_name() {
            let namespace = slice.metadata.namespace_or_default().to_owned();
            slices
                .entry((namespace, service.to_owned()))
                .or_default()
                .push(slice.clone());
        }
    }
    slices
}

/// What one service is built from, besides its Services.
struct Parts<'a> {
    slices: &'a [Arc<EndpointSlice>],
    rule: Option<&'a Arc<DestinationRule>>,
    topology: &'a topology::Topology,
}

/// One service and the problems found building it.
fn build_service(
    (namespace, name): &(String, String),
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
        name: name.clone(),
        namespace: namespace.clone(),
    };
    let entry = CatalogService {
        service: Arc::new(service),
        exported_by: export.reasons.clone(),
        clusters: clusters.into_iter().collect(),
        policy_source,
    };
    (entry, problems)
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
