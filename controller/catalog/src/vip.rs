//! Virtual IPs for ClusterSetIP services, allocated from a range by hashing the service's host,
//! so that every instance and every zone computes the same addresses without talking, and a
//! restart gives the same ones.
//!
//! Each host has a sequence of candidate addresses (the hash of the host with a round number).
//! Allocation goes in rounds: in round k every host still without an address tries its k-th
//! candidate, hosts in name order; a candidate already taken is skipped. A host's address
//! therefore changes only when a host added later wants the same address in the same or an
//! earlier round and sorts before it, or when the host that once took its earlier candidate
//! goes away: with 10,000 services in a /16, about one addition or removal in ten moves one
//! other address. The first and last address of the range are never used.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Rounds of hashed candidates before a host falls back to the next free address.
const ROUNDS: u64 = 16;

/// A CIDR range of IPv4 or IPv6 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address, as a number (IPv4 in the low 32 bits).
    base: u128,
    /// Number of addresses.
    size: u128,
    v6: bool,
}

/// Istio's range for auto-allocated service addresses (`240.240.0.0/16`, class E, never
/// routed).
pub const DEFAULT_V4: &str = "240.240.0.0/16";
/// Istio's IPv6 range for the same (`2001:2::/48`, reserved for benchmarking).
pub const DEFAULT_V6: &str = "2001:2::/48";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an address range (ADDRESS/PREFIX, with at least 4 addresses)")]
pub struct RangeError(String);

impl FromStr for Range {
    type Err = RangeError;

    fn from_str(text: &str) -> Result<Self, RangeError> {
        let bad = || RangeError(text.to_owned());
        let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
        let prefix: u32 = prefix.parse().map_err(|_| bad())?;
        let (value, bits, v6) = match address.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32, false),
            IpAddr::V6(a) => (u128::from(a), 128, true),
        };
        if prefix > bits - 2 {
            return Err(bad());
        }
        let host_bits = bits - prefix;
        let size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
        let mask = !(size - 1) & if v6 { u128::MAX } else { u128::from(u32::MAX) };
        Ok(Self {
            base: value & mask,
            size,
            v6,
        })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = if self.v6 { 128 } else { 32 };
        let prefix = bits - self.size.trailing_zeros();
        write!(f, "{}/{prefix}", self.address(0))
    }
}

impl Range {
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The address at `offset` from the start.
    fn address(&self, offset: u128) -> IpAddr {
        let value = self.base + offset;
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(value))
        } else {
            IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX)))
        }
    }

    /// Usable addresses: all but the first and the last.
    fn usable(&self) -> u128 {
        self.size - 2
    }

    /// The `round`-th candidate offset of `host` (never the first or last address).
    fn candidate(&self, host: &str, round: u64) -> u128 {
        let hash = u128::from(xxh3_64_with_seed(host.as_bytes(), round))
            | (u128::from(xxh3_64_with_seed(host.as_bytes(), round ^ u64::MAX)) << 64);
        1 + hash % self.usable()
    }

    /// Addresses for `hosts` (any order, no duplicates): see the module docs. Hosts beyond the
    /// range's capacity get none.
    pub fn allocate<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, IpAddr> {
        let mut pending: Vec<&str> = hosts.into_iter().collect();
        pending.sort_unstable();
        pending.dedup();
        let mut taken: HashSet<u128> = HashSet::with_capacity(pending.len());
        let mut out = BTreeMap::new();
        for round in 0..ROUNDS {
            if pending.is_empty() {
                break;
            }
            pending.retain(|host| {
                let offset = self.candidate(host, round);
                if taken.insert(offset) {
                    out.insert((*host).to_owned(), self.address(offset));
                    false
                } else {
                    true
                }
            });
        }
        // Still colliding after every round: the next free address after the last candidate.
        for host in pending {
            let usable = self.usable();
            if taken.len() as u128 >= usable {
                break;
            }
            let mut offset = self.candidate(host, ROUNDS - 1);
            while !taken.insert(offset) {
                offset = 1 + offset % usable;
            }
            out.insert(host.to_owned(), self.address(offset));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Range {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_print() {
        assert_eq!(range("240.240.0.0/16").to_string(), "240.240.0.0/16");
        assert_eq!(range("240.240.7.9/16").to_string(), "240.240.0.0/16");
        assert_eq!(range("2001:2::/48").to_string(), "2001:2::/48");
        for bad in [
            "240.240.0.0",
            "240.240.0.0/31",
            "x/16",
            "240.240.0.0/33",
            "::/127",
        ] {
            assert!(bad.parse::<Range>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_instance_allocates_the_same_whatever_the_order() {
        let r = range(DEFAULT_V4);
        let hosts: Vec<String> = (0..500).map(|i| format!("svc-{i}.ns.global")).collect();
        let a = r.allocate(hosts.iter().map(String::as_str));
        let b = r.allocate(hosts.iter().rev().map(String::as_str));
        assert_eq!(a, b);
        assert_eq!(a.len(), 500);
        let distinct: HashSet<_> = a.values().collect();
        assert_eq!(distinct.len(), 500, "no two services share an address");
        for ip in a.values() {
            let IpAddr::V4(v4) = ip else { panic!("{ip}") };
            assert_eq!(v4.octets()[..2], [240, 240]);
            assert!(
                *v4 != Ipv4Addr::new(240, 240, 0, 0) && *v4 != Ipv4Addr::new(240, 240, 255, 255)
            );
        }
    }

    #[test]
    fn unrelated_changes_rarely_move_an_address() {
        let r = range(DEFAULT_V4);
        let hosts: Vec<String> = (0..5_000).map(|i| format!("svc-{i}.ns.global")).collect();
        let before = r.allocate(hosts.iter().map(String::as_str));
        let mut moved = 0;
        for extra in 0..50 {
            let added = format!("new-{extra}.other.global");
            let after = r.allocate(hosts.iter().map(String::as_str).chain([added.as_str()]));
            moved += hosts.iter().filter(|h| before[*h] != after[*h]).count();
            let gone = &hosts[extra * 7];
            let removed = r.allocate(hosts.iter().map(String::as_str).filter(|h| h != gone));
            moved += hosts
                .iter()
                .filter(|h| *h != gone && removed[*h] != before[*h])
                .count();
        }
        assert!(
            moved <= 30,
            "{moved} addresses moved over 100 additions and 100 removals"
        );
    }

    #[test]
    fn a_full_range_allocates_what_it_can() {
        let r = range("10.0.0.0/29"); // 6 usable
        let hosts: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
        let out = r.allocate(hosts.iter().map(String::as_str));
        assert_eq!(out.len(), 6);
        let distinct: HashSet<_> = out.values().collect();
        assert_eq!(distinct.len(), 6);
    }

    #[test]
    fn ipv6_ranges_work_alike() {
        let r = range(DEFAULT_V6);
        let out = r.allocate(["a.ns.global", "b.ns.global"]);
        for ip in out.values() {
            let IpAddr::V6(v6) = ip else { panic!("{ip}") };
            assert_eq!(v6.segments()[..3], [0x2001, 0x2, 0]);
        }
    }
}
