//! Istio's `DestinationRule` (`networking.istio.io` v1, v1beta1, v1alpha3): only the host, the
//! locality load-balancing setting and outlier detection. Validation (Istio's rules) is the
//! catalog's; here a document only has to have the right shape.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{ObjectMeta, nullable};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    pub api_version: String,
    pub metadata: ObjectMeta,
    pub spec: DestinationRuleSpec,
    /// A template's whole document, as written (see [`super::Service::raw`]).
    #[serde(skip)]
    pub raw: Option<std::sync::Arc<serde_norway::Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    /// Namespaces whose clients see the rule: `*` (every one, the default), `.` (its own), or
    /// names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    pub load_balancer: Option<LoadBalancer>,
    pub outlier_detection: Option<OutlierDetection>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub locality_lb_setting: Option<LocalityLbSetting>,
}

/// Istio's `LocalityLoadBalancerSetting`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLbSetting {
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub distribute: Vec<Distribute>,
    #[serde(default, deserialize_with = "nullable")]
    pub failover: Vec<Failover>,
    #[serde(default, deserialize_with = "nullable")]
    pub failover_priority: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Distribute {
    #[serde(default)]
    pub from: String,
    /// Locality → weight, in the order the rule wrote them.
    #[serde(default, deserialize_with = "ordered_map")]
    pub to: Vec<(String, u32)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Failover {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

/// Istio's `OutlierDetection`. Durations are Istio's (Go) duration strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub consecutive_local_origin_failures: Option<u32>,
    #[serde(default)]
    pub split_external_local_origin_errors: bool,
    pub interval: Option<Duration>,
    pub base_ejection_time: Option<Duration>,
    pub max_ejection_percent: Option<i32>,
    pub min_health_percent: Option<i32>,
}

/// A map read as a list of entries in the order written (YAML mappings are ordered; Istio reads
/// `to` into a Go map, whose order is random: meshfleet fixes it to the written one).
fn ordered_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, u32)>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<(String, u32)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of locality to weight")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry::<String, u32>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// A duration as Istio writes it: Go's `time.ParseDuration` syntax (`10s`, `1m30s`, `100ms`,
/// `1.5h`); the protobuf JSON form (`0.1s`) is a special case of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

/// Why a duration does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not Go's duration syntax.
    #[error("invalid duration {text:?} (expected e.g. \"10s\", \"1m\", \"100ms\")")]
    Parse { text: String },
    /// The duration is negative.
    #[error("negative duration {text:?}")]
    Negative { text: String },
    /// The duration does not fit in 2^64 nanoseconds.
    #[error("duration {text:?} is too long")]
    TooLong { text: String },
}

impl Duration {
    /// # Errors
    /// The text is not a Go duration, or it is negative.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        parse_go_duration(text).map(Self)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_go_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let invalid = || DurationError::Parse {
        text: text.to_owned(),
    };
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') {
        return Err(DurationError::Negative {
            text: text.to_owned(),
        });
    }
    if unsigned == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(invalid());
    }
    let mut rest = unsigned;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        nanos += number * scale;
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(DurationError::TooLong {
            text: text.to_owned(),
        });
    }
    Ok(std::time::Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<u128, DurationError> {
        Duration::parse(text).map(|d| d.0.as_millis())
    }

    /// The message of the error `text` gives.
    fn refused(text: &str) -> String {
        ms(text).expect_err(text).to_string()
    }

    #[test]
    fn go_durations() {
        assert_eq!(ms("10s"), Ok(10_000));
        assert_eq!(ms("1m"), Ok(60_000));
        assert_eq!(ms("100ms"), Ok(100));
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("1.5h"), Ok(5_400_000));
        assert_eq!(ms("0.1s"), Ok(100));
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(
            refused("10"),
            "invalid duration \"10\" (expected e.g. \"10s\", \"1m\", \"100ms\")"
        );
        assert!(ms("1d").is_err());
        assert!(ms("").is_err());
        assert!(ms("s").is_err());
        assert_eq!(refused("-1s"), "negative duration \"-1s\"");
    }

    #[test]
    fn distribute_to_keeps_written_order() {
        let yaml = "from: us-east/*\nto:\n  us-west/*: 20\n  us-east/*: 70\n  eu/*: 10\n";
        let d: Distribute = serde_norway::from_str(yaml).unwrap();
        assert_eq!(
            d.to,
            vec![
                ("us-west/*".to_owned(), 20),
                ("us-east/*".to_owned(), 70),
                ("eu/*".to_owned(), 10)
            ]
        );
    }
}
