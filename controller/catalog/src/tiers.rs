//! The `meshfleet.io/locality-weights` annotation: `local=99,remote=1`,
//! `subzone=80,zone=15,region=4,remote=1`.

use std::fmt::Write;

use meshfleet_model::TierWeights;

/// The default every exported service gets, as the annotation would write it.
pub const DEFAULT_TIERS: &str = "local=99,remote=1";

/// Why a `meshfleet.io/locality-weights` annotation does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TierWeightsError {
    /// An entry is not `tier=weight`.
    #[error("{entry:?} is not tier=weight")]
    ParseEntry { entry: String },
    /// The tier is not `subzone`, `zone`, `local`, `region` or `remote`.
    #[error("unknown tier {tier:?} (expected subzone, zone, local, region or remote)")]
    ParseTier { tier: String },
    /// The weight is not a non-negative integer.
    #[error("weight {weight:?} of tier {tier} is not a non-negative integer")]
    ParseWeight {
        tier: String,
        weight: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// A tier is given twice (`local` and `zone` are the same tier).
    #[error("tier {tier} is given twice (local is zone)")]
    RepeatTier { tier: String },
    /// The weights do not sum to 100.
    #[error("weights sum to {sum}, not 100")]
    SumWeights { sum: u64 },
}

/// Parses the annotation: comma-separated `tier=integer`, tiers `subzone`, `zone` (alias
/// `local`), `region`, `remote`, each at most once, weights summing to 100.
///
/// # Errors
/// What is wrong (unknown tier, duplicate, non-integer, sum); see [`TierWeightsError`].
pub fn parse_tier_weights(value: &str) -> Result<TierWeights, TierWeightsError> {
    let mut tiers = TierWeights::new(None, None, None, None);
    let mut sum: u64 = 0;
    for entry in value.split(',') {
        let entry = entry.trim();
        let Some((tier, weight)) = entry.split_once('=') else {
            return Err(TierWeightsError::ParseEntry {
                entry: entry.to_owned(),
            });
        };
        let (tier, weight) = (tier.trim(), weight.trim());
        let slot = match tier {
            "subzone" => &mut tiers.subzone,
            "zone" | "local" => &mut tiers.zone,
            "region" => &mut tiers.region,
            "remote" => &mut tiers.remote,
            _ => {
                return Err(TierWeightsError::ParseTier {
                    tier: tier.to_owned(),
                });
            }
        };
        let weight: u32 = weight
            .parse()
            .map_err(|source| TierWeightsError::ParseWeight {
                tier: tier.to_owned(),
                weight: weight.to_owned(),
                source,
            })?;
        if slot.replace(weight).is_some() {
            return Err(TierWeightsError::RepeatTier {
                tier: tier.to_owned(),
            });
        }
        sum += u64::from(weight);
    }
    if sum != 100 {
        return Err(TierWeightsError::SumWeights { sum });
    }
    Ok(tiers)
}

/// `subzone=80,zone=15,...`: the named tiers, nearest first.
pub fn format_tier_weights(tiers: &TierWeights) -> String {
    let mut out = String::new();
    let named = [
        ("subzone", tiers.subzone),
        ("zone", tiers.zone),
        ("region", tiers.region),
        ("remote", tiers.remote),
    ];
    for (name, weight) in named {
        if let Some(weight) = weight {
            let sep = if out.is_empty() { "" } else { "," };
            let _ = write!(out, "{sep}{name}={weight}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(a: Option<u32>, b: Option<u32>, c: Option<u32>, d: Option<u32>) -> TierWeights {
        TierWeights::new(a, b, c, d)
    }

    #[test]
    fn good_annotations() {
        assert_eq!(
            parse_tier_weights(DEFAULT_TIERS),
            Ok(TierWeights::default())
        );
        assert_eq!(
            parse_tier_weights("subzone=80, zone=15 ,region=4,remote=1"),
            Ok(tiers(Some(80), Some(15), Some(4), Some(1)))
        );
        assert_eq!(
            parse_tier_weights("zone=100"),
            Ok(tiers(None, Some(100), None, None))
        );
        assert_eq!(
            parse_tier_weights("region=0,remote=100"),
            Ok(tiers(None, None, Some(0), Some(100)))
        );
    }

    #[test]
    fn bad_annotations() {
        let cases = [
            ("local=99,remote=0", "weights sum to 99, not 100"),
            (
                "local=99,planet=1",
                "unknown tier \"planet\" (expected subzone, zone, local, region or remote)",
            ),
            (
                "local=50,zone=50",
                "tier zone is given twice (local is zone)",
            ),
            (
                "local=99.5,remote=0.5",
                "weight \"99.5\" of tier local is not a non-negative integer",
            ),
            (
                "local=-1,remote=101",
                "weight \"-1\" of tier local is not a non-negative integer",
            ),
            ("local", "\"local\" is not tier=weight"),
            ("", "\"\" is not tier=weight"),
        ];
        for (value, message) in cases {
            assert_eq!(
                parse_tier_weights(value).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{value}"
            );
        }
    }

    #[test]
    fn formats_nearest_first() {
        assert_eq!(
            format_tier_weights(&TierWeights::default()),
            "zone=99,remote=1"
        );
        assert_eq!(
            format_tier_weights(&tiers(Some(80), Some(15), Some(4), Some(1))),
            "subzone=80,zone=15,region=4,remote=1"
        );
    }
}
