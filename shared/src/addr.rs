//! Address ranges: the unit every target set, scope and shard is made of.
//!
//! Ranges are inclusive and never mix families. Arithmetic is done on `u128`
//! so that IPv4 and IPv6 share one code path; an IPv4 address is its 32-bit
//! value, never an IPv4-mapped IPv6 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Largest address value of the family.
    pub fn max_value(self) -> u128 {
        match self {
            Family::V4 => u32::MAX as u128,
            Family::V6 => u128::MAX,
        }
    }

    pub fn addr(self, value: u128) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
        }
    }
}

/// The numeric value of an address within its family.
pub fn addr_value(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// An inclusive range of addresses of one family; `first <= last` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddrRange {
    family: Family,
    first: u128,
    last: u128,
}

impl AddrRange {
    /// A range from `first` to `last`, or `None` when the families differ or
    /// the range is reversed.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        let family = Family::of(first);
        if family != Family::of(last) {
            return None;
        }
        Self::from_values(family, addr_value(first), addr_value(last))
    }

    pub fn from_values(family: Family, first: u128, last: u128) -> Option<Self> {
        (first <= last && last <= family.max_value()).then_some(AddrRange { family, first, last })
    }

    pub fn single(addr: IpAddr) -> Self {
        let v = addr_value(addr);
        AddrRange { family: Family::of(addr), first: v, last: v }
    }

    /// The range a network covers (host bits ignored, as `ip route` does).
    pub fn from_net(net: ipnet::IpNet) -> Self {
        let (first, last) = (net.network(), net.broadcast());
        Self::new(first, last).expect("a network's bounds are ordered and of one family")
    }

    pub fn family(&self) -> Family {
        self.family
    }
    pub fn first(&self) -> IpAddr {
        self.family.addr(self.first)
    }
    pub fn last(&self) -> IpAddr {
        self.family.addr(self.last)
    }
    pub(crate) fn first_value(&self) -> u128 {
        self.first
    }
    pub(crate) fn last_value(&self) -> u128 {
        self.last
    }

    /// Number of addresses, saturating at `u128::MAX` for `::/0`.
    pub fn len(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }

    /// Never true: a range holds at least one address. Here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family && (self.first..=self.last).contains(&addr_value(addr))
    }

    /// The `n`-th address of the range, if there is one.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let v = self.first.checked_add(n)?;
        (v <= self.last).then(|| self.family.addr(v))
    }

    /// Splits off the first `n` addresses (`n >= 1`): (head, rest).
    pub fn split_at(&self, n: u128) -> (AddrRange, Option<AddrRange>) {
        debug_assert!(n >= 1);
        if n >= self.len() {
            return (*self, None);
        }
        let cut = self.first + n;
        let head = AddrRange { last: cut - 1, ..*self };
        (head, Some(AddrRange { first: cut, ..*self }))
    }

    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let family = self.family;
        (self.first..=self.last).map(move |v| family.addr(v))
    }
}

impl fmt::Display for AddrRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            return write!(f, "{}", self.first());
        }
        // Print as a CIDR when the range is exactly one network.
        let size = self.len();
        if size.is_power_of_two() && self.first.is_multiple_of(size) {
            let bits = match self.family {
                Family::V4 => 32,
                Family::V6 => 128,
            };
            let prefix = bits - size.trailing_zeros();
            return write!(f, "{}/{}", self.first(), prefix);
        }
        write!(f, "{}-{}", self.first(), self.last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mixed_families_are_refused() {
        assert!(AddrRange::new(ip("127.0.0.1"), ip("::1")).is_none());
    }

    #[test]
    fn reversed_range_is_refused() {
        assert!(AddrRange::new(ip("127.0.0.9"), ip("127.0.0.1")).is_none());
    }

    #[test]
    fn display_prefers_cidr() {
        let r = AddrRange::from_net("198.18.0.0/24".parse().unwrap());
        assert_eq!(r.to_string(), "198.18.0.0/24");
        assert_eq!(r.len(), 256);
        let odd = AddrRange::new(ip("198.18.0.1"), ip("198.18.0.3")).unwrap();
        assert_eq!(odd.to_string(), "198.18.0.1-198.18.0.3");
    }

    #[test]
    fn whole_v6_space_saturates() {
        let r = AddrRange::from_net("::/0".parse().unwrap());
        assert_eq!(r.len(), u128::MAX);
    }

    #[test]
    fn split_at_keeps_every_address() {
        let r = AddrRange::new(ip("127.0.0.1"), ip("127.0.0.10")).unwrap();
        let (head, rest) = r.split_at(3);
        assert_eq!(head.len(), 3);
        assert_eq!(rest.unwrap().first(), ip("127.0.0.4"));
        assert_eq!(rest.unwrap().len(), 7);
        assert_eq!(r.split_at(10), (r, None));
    }
}
