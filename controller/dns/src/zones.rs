//! Which zone a DNS client is in, from its source address: `--dns-client-zone ZONE=CIDR[,CIDR]`
//! (the zone's pod and node networks), the most specific range winning.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

/// Address ranges per zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientZones {
    /// (network, prefix length, zone), most specific first.
    ranges: Vec<(IpAddr, u8, Arc<str>)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not ZONE=CIDR[,CIDR...] (for example us-east-1a=10.1.0.0/16)")]
pub struct ZoneError(String);

impl FromStr for ClientZones {
    type Err = ZoneError;

    /// One zone's ranges: `ZONE=CIDR[,CIDR...]`.
    fn from_str(text: &str) -> Result<Self, ZoneError> {
        let bad = || ZoneError(text.to_owned());
        let (zone, cidrs) = text.split_once('=').ok_or_else(bad)?;
        if zone.is_empty() {
            return Err(bad());
        }
        let zone: Arc<str> = Arc::from(zone);
        let mut ranges = Vec::new();
        for cidr in cidrs.split(',') {
            let (address, prefix) = cidr.trim().split_once('/').ok_or_else(bad)?;
            let address: IpAddr = address.parse().map_err(|_| bad())?;
            let prefix: u8 = prefix.parse().map_err(|_| bad())?;
            let bits = if address.is_ipv4() { 32 } else { 128 };
            if prefix > bits {
                return Err(bad());
            }
            ranges.push((masked(address, prefix), prefix, zone.clone()));
        }
        Ok(Self { ranges })
    }
}

impl ClientZones {
    /// Every zone's ranges together.
    pub fn merge(all: impl IntoIterator<Item = Self>) -> Self {
        let mut ranges: Vec<_> = all.into_iter().flat_map(|z| z.ranges).collect();
        ranges.sort_by_key(|r| std::cmp::Reverse(r.1));
        Self { ranges }
    }

    /// The zone of a client at `ip`, if a range holds it.
    pub fn zone_of(&self, ip: IpAddr) -> Option<&str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.ranges
            .iter()
            .find(|(net, prefix, _)| net.is_ipv4() == ip.is_ipv4() && masked(ip, *prefix) == *net)
            .map(|(_, _, zone)| &**zone)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_range_names_the_zone() {
        let zones = ClientZones::merge([
            "us-east-1a=10.0.0.0/8".parse().unwrap(),
            "us-west-2a=10.2.0.0/16,fd00::/8".parse().unwrap(),
        ]);
        let zone = |ip: &str| zones.zone_of(ip.parse().unwrap());
        assert_eq!(zone("10.1.2.3"), Some("us-east-1a"));
        assert_eq!(zone("10.2.2.3"), Some("us-west-2a"));
        assert_eq!(zone("fd12::1"), Some("us-west-2a"));
        assert_eq!(zone("::ffff:10.1.2.3"), Some("us-east-1a"), "IPv4-mapped");
        assert_eq!(zone("192.168.0.1"), None);
        for bad in [
            "10.0.0.0/8",
            "=10.0.0.0/8",
            "z=10.0.0.0",
            "z=10.0.0.0/33",
            "z=x/8",
        ] {
            assert!(bad.parse::<ClientZones>().is_err(), "{bad}");
        }
    }
}
