//! CDS: one EDS cluster per service port, with Istio's outlier detection and panic threshold.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::cluster::TransportSocketMatch;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, CommonLbConfig, DiscoveryType, EdsClusterConfig, LbPolicy,
    common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, OutlierDetection};
use envoy_types::pb::envoy::config::core::v3::{
    Http2ProtocolOptions, TransportSocket, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SdsSecretConfig, SubjectAltNameMatcher,
    UpstreamTlsContext, common_tls_context::CombinedCertificateValidationContext,
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{Any, Duration, Struct, UInt32Value, Value, value};

use super::{ads, to_any};
use crate::locality;
use crate::model::{self, GlobalService, Protocol, ServicePort};

/// istio-agent's SDS names: the workload's certificate and key, and the trust bundle.
pub const SDS_DEFAULT: &str = "default";
pub const SDS_ROOT: &str = "ROOTCA";
/// Key of `typed_extension_protocol_options` for upstream HTTP options.
pub(super) const HTTP_PROTOCOL_OPTIONS: &str =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Time allowed to open an upstream connection.
const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Envoy's `enforcing_*` percentage that makes a detector eject.
const ENFORCE: u32 = 100;

/// The cluster `name` for `port` of `svc`: endpoints from EDS over ADS, round robin, locality
/// weighted when the service's locality policy needs it.
pub(super) fn build(svc: &GlobalService, port: &ServicePort, name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds.into())),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: name.to_owned(),
        }),
        connect_timeout: Some(duration_ms(CONNECT_TIMEOUT_MS)),
        lb_policy: LbPolicy::RoundRobin.into(),
        common_lb_config: common_lb_config(svc),
        outlier_detection: svc.outlier_detection.as_ref().map(outlier_detection),
        typed_extension_protocol_options: protocol_options(port.protocol),
        ..Default::default()
    }
}

/// The cluster `plain` as a client with a verified identity gets it, when some endpoint of
/// port `port` sits behind another network's east-west gateway; `None` otherwise (the plain
/// cluster serves every client alike).
///
/// As Istio's auto mTLS does it: endpoints marked `tlsMode: istio` in EDS (the load assignment
/// marks gateway endpoints) are reached with TLS using the workload certificate (`default`) and
/// the trust bundle (`ROOTCA`) over SDS, the SNI an `AUTO_PASSTHROUGH` gateway routes on
/// (`outbound_.<port>_._.<host>`, Istio's `BuildDNSSrvSubsetKey`) and Istio's ALPN; the server
/// must present a SPIFFE identity under the mesh root. Other endpoints stay plaintext.
pub(super) fn secure(svc: &GlobalService, port: &ServicePort, plain: &Cluster) -> Option<Cluster> {
    if !port.endpoints.iter().any(|ep| ep.gateway.is_some()) {
        return None;
    }
    let alpn: &[&str] = match port.protocol {
        // Istio's `ALPNInMeshH2WithMxc` and `ALPNInMeshWithMxc`.
        Protocol::Http2 | Protocol::Grpc => &["istio-peer-exchange", "istio", "h2"],
        _ => &["istio-peer-exchange", "istio"],
    };
    let sds = |name: &str| SdsSecretConfig {
        name: name.to_owned(),
        sds_config: Some(ads()),
    };
    let tls = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds(SDS_DEFAULT)],
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(CertificateValidationContext {
                        match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                            san_type: SanType::Uri.into(),
                            matcher: Some(StringMatcher {
                                match_pattern: Some(MatchPattern::Prefix("spiffe://".to_owned())),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    validation_context_sds_secret_config: Some(sds(SDS_ROOT)),
                    ..Default::default()
                },
            )),
            alpn_protocols: alpn.iter().map(|&a| a.to_owned()).collect(),
            ..Default::default()
        }),
        sni: format!("outbound_.{}_._.{}", port.port, svc.host),
        ..Default::default()
    };
    let mut cluster = plain.clone();
    cluster.transport_socket_matches = vec![TransportSocketMatch {
        name: "tlsMode-istio".to_owned(),
        r#match: Some(tls_mode_istio()),
        transport_socket: Some(TransportSocket {
            name: "envoy.transport_sockets.tls".to_owned(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(&tls))),
        }),
    }];
    Some(cluster)
}

/// `{tlsMode: istio}`: the label of endpoints reached with Istio's mTLS, in a transport socket
/// match and in an endpoint's `envoy.transport_socket_match` metadata.
pub(super) fn tls_mode_istio() -> Struct {
    Struct {
        fields: [(
            "tlsMode".to_owned(),
            Value {
                kind: Some(value::Kind::StringValue("istio".to_owned())),
            },
        )]
        .into(),
    }
}

/// Locality-weighted LB when [`locality::uses_locality_weights`] says so; with outlier
/// detection, the panic threshold from `minHealthPercent` (Istio sets it even at 0, which turns
/// panic mode off) and no update merge window. `None` when neither applies.
///
/// Envoy merges host-health changes that arrive within `update_merge_window` (1 s by default)
/// after the first: when a zone dies, only its first ejected host leaves the load balancer at
/// once and the others stay selectable for a second, so retries keep landing on dead hosts of
/// the zone that still carries almost all the weight. Failover relies on ejections taking
/// effect as they happen.
fn common_lb_config(svc: &GlobalService) -> Option<CommonLbConfig> {
    let outlier = svc.outlier_detection.as_ref();
    let weighted = locality::uses_locality_weights(&svc.locality, outlier.is_some());
    let panic = outlier.map(|od| Percent {
        value: f64::from(od.min_health_percent),
    });
    if !weighted && panic.is_none() {
        return None;
    }
    Some(CommonLbConfig {
        healthy_panic_threshold: panic,
        locality_config_specifier: weighted.then_some(
            LocalityConfigSpecifier::LocalityWeightedLbConfig(LocalityWeightedLbConfig {}),
        ),
        update_merge_window: outlier.map(|_| Duration::default()),
        ..Default::default()
    })
}

/// Istio's `applyOutlierDetection`: success-rate ejection off; each consecutive-error detector
/// given is enforced when its threshold is above 0; unset fields keep Envoy's defaults (an unset
/// `consecutive_5xx` means Envoy's 5, enforced, as in Istio).
pub(super) fn outlier_detection(od: &model::OutlierDetection) -> OutlierDetection {
    let mut out = OutlierDetection {
        enforcing_success_rate: u32_value(0),
        interval: (od.interval_ms > 0).then(|| duration_ms(od.interval_ms)),
        base_ejection_time: (od.base_ejection_time_ms > 0)
            .then(|| duration_ms(od.base_ejection_time_ms)),
        max_ejection_percent: (od.max_ejection_percent > 0).then_some(UInt32Value {
            value: od.max_ejection_percent,
        }),
        ..Default::default()
    };
    if let Some(n) = od.consecutive_5xx {
        out.consecutive_5xx = u32_value(n);
        out.enforcing_consecutive_5xx = u32_value(enforcing(n));
    }
    if let Some(n) = od.consecutive_gateway_errors {
        out.consecutive_gateway_failure = u32_value(n);
        out.enforcing_consecutive_gateway_failure = u32_value(enforcing(n));
    }
    if let Some(n) = od.consecutive_local_origin_failures {
        // Istio's `splitExternalLocalOriginErrors`: the model sets this field only then.
        out.split_external_local_origin_errors = true;
        out.enforcing_local_origin_success_rate = u32_value(0);
        if n > 0 {
            out.consecutive_local_origin_failure = u32_value(n);
            out.enforcing_consecutive_local_origin_failure = u32_value(ENFORCE);
        }
    }
    out
}

fn enforcing(threshold: u32) -> u32 {
    if threshold > 0 { ENFORCE } else { 0 }
}

/// HTTP/2 and gRPC upstreams speak HTTP/2 explicitly; other ports keep Envoy's HTTP/1.1.
fn protocol_options(protocol: Protocol) -> HashMap<String, Any> {
    if !matches!(protocol, Protocol::Http2 | Protocol::Grpc) {
        return HashMap::new();
    }
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..Default::default()
    };
    // One entry only, so the map's iteration order cannot change the encoding.
    HashMap::from([(HTTP_PROTOCOL_OPTIONS.to_owned(), to_any(&options))])
}

fn u32_value(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

pub(super) fn duration_ms(ms: u64) -> Duration {
    Duration {
        seconds: i64::try_from(ms / 1_000).unwrap_or(i64::MAX),
        // Below 10^9, so it always fits.
        nanos: i32::try_from((ms % 1_000) * 1_000_000).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlier_detection_follows_istio() {
        let u = |value| Some(UInt32Value { value });
        let default = OutlierDetection {
            consecutive_5xx: u(5),
            enforcing_consecutive_5xx: u(100),
            enforcing_success_rate: u(0),
            interval: Some(Duration {
                seconds: 1,
                nanos: 0,
            }),
            base_ejection_time: Some(Duration {
                seconds: 15,
                nanos: 0,
            }),
            max_ejection_percent: u(100),
            split_external_local_origin_errors: true,
            consecutive_local_origin_failure: u(1),
            enforcing_consecutive_local_origin_failure: u(100),
            enforcing_local_origin_success_rate: u(0),
            ..Default::default()
        };
        assert_eq!(
            outlier_detection(&model::OutlierDetection::default()),
            default
        );

        let gateway_only = model::OutlierDetection {
            consecutive_5xx: None,
            consecutive_gateway_errors: Some(3),
            consecutive_local_origin_failures: Some(2),
            interval_ms: 1_500,
            base_ejection_time_ms: 0,
            max_ejection_percent: 0,
            min_health_percent: 50,
        };
        let expected = OutlierDetection {
            consecutive_gateway_failure: u(3),
            enforcing_consecutive_gateway_failure: u(100),
            enforcing_success_rate: u(0),
            interval: Some(Duration {
                seconds: 1,
                nanos: 500_000_000,
            }),
            split_external_local_origin_errors: true,
            consecutive_local_origin_failure: u(2),
            enforcing_consecutive_local_origin_failure: u(100),
            enforcing_local_origin_success_rate: u(0),
            ..Default::default()
        };
        assert_eq!(outlier_detection(&gateway_only), expected);

        let off = model::OutlierDetection {
            consecutive_5xx: Some(0),
            ..model::OutlierDetection::default()
        };
        let off = outlier_detection(&off);
        assert_eq!(
            (off.consecutive_5xx, off.enforcing_consecutive_5xx),
            (u(0), u(0))
        );
    }
}
