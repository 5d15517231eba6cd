//! Target sets: which addresses a scan covers, parsed from the operator's text.
//!
//! The syntax is the one nmap users know, one or more tokens separated by
//! commas, spaces or new lines, `#` starting a comment:
//!
//! * an address: `198.18.0.7`, `::1`
//! * a network: `198.18.0.0/24`, `2001:db8::/120`
//! * a range: `198.18.0.1-198.18.0.20`, or with the last IPv4 octet only: `198.18.0.1-20`
//! * an exclusion: any of the above after `!`, e.g. `!198.18.0.5`
//!
//! A [`TargetSet`] is kept sorted and merged, so membership is a binary search
//! and the number of addresses is exact however the input overlapped.

use std::fmt;
use std::net::IpAddr;

use crate::addr::{AddrRange, Family, addr_value};

/// A parse error that points at the line and token that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TargetError {
    /// 1-based line in a file; `None` for a one-line command-line value.
    pub line: Option<usize>,
    pub token: String,
    pub problem: TargetProblem,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "`{}`: {}", self.token, self.problem)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetProblem {
    #[error("not an IP address, network (a.b.c.d/n) or range (a.b.c.d-e)")]
    Unparsable,
    #[error("prefix length {0} is too long for this address family")]
    BadPrefix(String),
    #[error("reversed range: the first address is greater than the last")]
    Reversed,
    #[error("a range cannot mix IPv4 and IPv6")]
    MixedFamilies,
    #[error("host names are not accepted; give addresses, so that scope is unambiguous")]
    HostName,
}

/// A sorted set of disjoint, non-adjacent address ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TargetSet {
    ranges: Vec<AddrRange>,
}

/// What a spec text holds: what to include and what to take out again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSpec {
    pub include: TargetSet,
    pub exclude: TargetSet,
}

impl TargetSpec {
    /// Parses a one-line value (as given on the command line).
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        Self::parse_lines(text).map_err(|mut e| {
            if !text.contains('\n') {
                e.line = None;
            }
            e
        })
    }

    /// Parses a file's text; errors carry the line number.
    pub fn parse_lines(text: &str) -> Result<Self, TargetError> {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            let line_no = idx + 1;
            let content = line.split('#').next().unwrap_or("");
            for token in content.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
                let (target, negated) = match token.strip_prefix('!') {
                    Some(rest) => (rest, true),
                    None => (token, false),
                };
                let range = parse_token(target).map_err(|problem| TargetError {
                    line: Some(line_no),
                    token: token.to_string(),
                    problem,
                })?;
                if negated { &mut exclude } else { &mut include }.push(range);
            }
        }
        Ok(TargetSpec { include: TargetSet::from_ranges(include), exclude: TargetSet::from_ranges(exclude) })
    }

    /// The addresses left after the exclusions.
    pub fn resolve(&self) -> TargetSet {
        self.include.subtract(&self.exclude)
    }
}

fn parse_token(token: &str) -> Result<AddrRange, TargetProblem> {
    if let Some((addr, prefix)) = token.split_once('/') {
        let addr: IpAddr = addr.parse().map_err(|_| problem_for(token))?;
        let prefix: u8 = prefix.parse().map_err(|_| TargetProblem::BadPrefix(prefix.to_string()))?;
        let net = ipnet::IpNet::new(addr, prefix).map_err(|_| TargetProblem::BadPrefix(prefix.to_string()))?;
        return Ok(AddrRange::from_net(net));
    }
    if let Some((a, b)) = token.split_once('-') {
        let first: IpAddr = a.parse().map_err(|_| problem_for(token))?;
        let last: IpAddr = match (first, b.parse::<u8>()) {
            // `198.18.0.1-20`: the last octet only.
            (IpAddr::V4(v4), Ok(octet)) => {
                let o = v4.octets();
                IpAddr::from([o[0], o[1], o[2], octet])
            }
            _ => b.parse().map_err(|_| problem_for(token))?,
        };
        if Family::of(first) != Family::of(last) {
            return Err(TargetProblem::MixedFamilies);
        }
        return AddrRange::new(first, last).ok_or(TargetProblem::Reversed);
    }
    token.parse::<IpAddr>().map(AddrRange::single).map_err(|_| problem_for(token))
}

fn problem_for(token: &str) -> TargetProblem {
    let looks_like_name = token.chars().any(|c| c.is_ascii_alphabetic())
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !token.contains(':');
    if looks_like_name { TargetProblem::HostName } else { TargetProblem::Unparsable }
}

impl TargetSet {
    /// Sorts and merges any list of ranges.
    pub fn from_ranges(mut ranges: Vec<AddrRange>) -> Self {
        ranges.sort();
        let mut merged: Vec<AddrRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if let Some(prev) = merged.last_mut()
                && prev.family() == r.family()
                && r.first_value() <= prev.last_value().saturating_add(1)
            {
                if r.last_value() > prev.last_value() {
                    *prev = AddrRange::from_values(prev.family(), prev.first_value(), r.last_value())
                        .expect("merge keeps order");
                }
                continue;
            }
            merged.push(r);
        }
        TargetSet { ranges: merged }
    }

    pub fn parse(text: &str) -> Result<Self, TargetError> {
        TargetSpec::parse(text).map(|s| s.resolve())
    }

    pub fn ranges(&self) -> &[AddrRange] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of addresses, saturating.
    pub fn len(&self) -> u128 {
        self.ranges.iter().fold(0u128, |acc, r| acc.saturating_add(r.len()))
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let key = (Family::of(addr), addr_value(addr));
        // Ranges are sorted by (family, first): find the last one starting at or before addr.
        let idx = self.ranges.partition_point(|r| (r.family(), r.first_value()) <= key);
        idx > 0 && self.ranges[idx - 1].contains(addr)
    }

    /// The first address of `other` that is not in `self`, if any.
    pub fn first_missing(&self, other: &TargetSet) -> Option<IpAddr> {
        other.subtract(self).ranges.first().map(|r| r.first())
    }

    /// Every address of `self` that is not in `other`.
    pub fn subtract(&self, other: &TargetSet) -> TargetSet {
        let mut out = Vec::new();
        for r in &self.ranges {
            let mut cur = Some(*r);
            for x in other.ranges.iter().filter(|x| x.family() == r.family()) {
                let Some(c) = cur else { break };
                if x.last_value() < c.first_value() || x.first_value() > c.last_value() {
                    continue;
                }
                if x.first_value() > c.first_value() {
                    out.push(AddrRange::from_values(c.family(), c.first_value(), x.first_value() - 1).unwrap());
                }
                cur = (x.last_value() < c.last_value())
                    .then(|| AddrRange::from_values(c.family(), x.last_value() + 1, c.last_value()).unwrap());
            }
            out.extend(cur);
        }
        TargetSet::from_ranges(out)
    }

    /// Every address that is in both sets.
    pub fn intersect(&self, other: &TargetSet) -> TargetSet {
        self.subtract(&self.subtract(other))
    }

    /// All addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ranges.iter().flat_map(|r| r.iter())
    }
}

impl fmt::Display for TargetSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_networks_and_ranges() {
        let set = TargetSet::parse("127.0.0.1, 198.18.0.0/30 198.18.1.1-3,::1").unwrap();
        assert_eq!(set.len(), 1 + 4 + 3 + 1);
        assert!(set.contains(ip("198.18.1.2")));
        assert!(!set.contains(ip("198.18.1.4")));
        assert!(set.contains(ip("::1")));
    }

    #[test]
    fn overlapping_input_is_counted_once() {
        let set = TargetSet::parse("198.18.0.0/24 198.18.0.10-198.18.1.5 198.18.0.3").unwrap();
        assert_eq!(set.len(), 256 + 6);
        assert_eq!(set.ranges().len(), 1);
    }

    #[test]
    fn exclusions_are_taken_out() {
        let set = TargetSet::parse("198.18.0.0/29 !198.18.0.2 !198.18.0.6-7").unwrap();
        let got: Vec<_> = set.iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["198.18.0.0", "198.18.0.1", "198.18.0.3", "198.18.0.4", "198.18.0.5"]);
    }

    #[test]
    fn exclusion_of_everything_leaves_nothing() {
        assert!(TargetSet::parse("127.0.0.1 !127.0.0.0/8").unwrap().is_empty());
    }

    #[test]
    fn file_errors_name_the_line_and_token() {
        let err = TargetSpec::parse_lines("# scope\n198.18.0.1\n198.18.0.300\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.token, "198.18.0.300");
        assert_eq!(
            err.to_string(),
            "line 3: `198.18.0.300`: not an IP address, network (a.b.c.d/n) or range (a.b.c.d-e)"
        );
    }

    #[test]
    fn one_line_errors_have_no_line_number() {
        let err = TargetSpec::parse("127.0.0.1,nonsense!").unwrap_err();
        assert_eq!(err.line, None);
        assert_eq!(err.token, "nonsense!");
    }

    #[test]
    fn reversed_ranges_are_refused() {
        let err = TargetSet::parse("198.18.0.9-198.18.0.1").unwrap_err();
        assert_eq!(err.problem, TargetProblem::Reversed);
        assert_eq!(TargetSet::parse("198.18.0.9-3").unwrap_err().problem, TargetProblem::Reversed);
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert_eq!(TargetSet::parse("127.0.0.0/33").unwrap_err().problem, TargetProblem::BadPrefix("33".into()));
        assert_eq!(TargetSet::parse("::/129").unwrap_err().problem, TargetProblem::BadPrefix("129".into()));
    }

    #[test]
    fn host_names_get_their_own_message() {
        assert_eq!(TargetSet::parse("example.org").unwrap_err().problem, TargetProblem::HostName);
    }

    #[test]
    fn mixed_family_ranges_are_refused() {
        assert_eq!(TargetSet::parse("127.0.0.1-::1").unwrap_err().problem, TargetProblem::MixedFamilies);
    }

    #[test]
    fn subtract_and_first_missing() {
        let scope = TargetSet::parse("127.0.0.0/8").unwrap();
        let inside = TargetSet::parse("127.0.0.1-5").unwrap();
        let outside = TargetSet::parse("127.0.0.1 198.18.0.1").unwrap();
        assert_eq!(scope.first_missing(&inside), None);
        assert_eq!(scope.first_missing(&outside), Some(ip("198.18.0.1")));
    }

    #[test]
    fn intersect_keeps_common_addresses() {
        let a = TargetSet::parse("198.18.0.0/29").unwrap();
        let b = TargetSet::parse("198.18.0.4-198.18.0.20 127.0.0.1").unwrap();
        assert_eq!(a.intersect(&b), TargetSet::parse("198.18.0.4-7").unwrap());
    }

    #[test]
    fn display_round_trips() {
        let set = TargetSet::parse("198.18.0.0/24 198.18.2.1-198.18.2.3 ::1").unwrap();
        assert_eq!(TargetSet::parse(&set.to_string()).unwrap(), set);
    }
}
