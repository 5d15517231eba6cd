//! Port specifications: `22,80,443`, `1-1024`, `top-100`, `all`, and mixes.
//!
//! A [`PortSpec`] is a sorted list of disjoint port ranges, so its size is
//! exact and splitting it into shards never repeats a port.

use std::fmt;

/// A parse error naming the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ports `{token}`: {problem}")]
pub struct PortSpecError {
    pub token: String,
    pub problem: PortProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortProblem {
    #[error("not a port number, a range (1-1024), `top-N` or `all`")]
    Unparsable,
    #[error("port {0} is out of range (ports are 1-65535)")]
    OutOfRange(u64),
    #[error("reversed range: the first port is greater than the last")]
    Reversed,
    #[error("no port list of that size is known (use top-100 or top-1000)")]
    UnknownTop,
    #[error("the port list is empty")]
    Empty,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn len(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A sorted set of disjoint, non-adjacent port ranges, never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    ranges: Vec<PortRange>,
}

/// The 100 TCP ports most often found open, by nmap's frequency data
/// (the list `nmap --top-ports 100` scans).
const TOP_100: &str = "7,9,13,21-23,25-26,37,53,79-81,88,106,110-111,113,119,135,139,143-144,179,199,\
389,427,443-445,465,513-515,543-544,548,554,587,631,646,873,990,993,995,1025-1029,1110,1433,1720,\
1723,1755,1900,2000-2001,2049,2121,2717,3000,3128,3306,3389,3986,4899,5000,5009,5051,5060,5101,\
5190,5357,5432,5631,5666,5800,5900,6000-6001,6646,7070,8000,8008-8009,8080-8081,8443,8888,9100,\
9999-10000,32768,49152-49157";

impl PortSpec {
    pub fn parse(text: &str) -> Result<Self, PortSpecError> {
        let mut ranges = Vec::new();
        for token in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            let err = |problem| PortSpecError { token: token.to_string(), problem };
            match token {
                "all" | "-" => ranges.push(PortRange { first: 1, last: u16::MAX }),
                t if t.starts_with("top-") => match &t[4..] {
                    "100" => ranges.extend(Self::parse(TOP_100).expect("built-in list parses").ranges),
                    _ => return Err(err(PortProblem::UnknownTop)),
                },
                t => ranges.push(parse_range(t).map_err(err)?),
            }
        }
        if ranges.is_empty() {
            return Err(PortSpecError { token: text.to_string(), problem: PortProblem::Empty });
        }
        Ok(Self::from_ranges(ranges))
    }

    /// Sorts and merges ranges; `ranges` must not be empty.
    pub fn from_ranges(mut ranges: Vec<PortRange>) -> Self {
        ranges.sort();
        let mut merged: Vec<PortRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(prev) if u32::from(r.first) <= u32::from(prev.last) + 1 => prev.last = prev.last.max(r.last),
                _ => merged.push(r),
            }
        }
        PortSpec { ranges: merged }
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.ranges
    }

    /// Number of ports.
    pub fn len(&self) -> u32 {
        self.ranges.iter().map(PortRange::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, port: u16) -> bool {
        let idx = self.ranges.partition_point(|r| r.first <= port);
        idx > 0 && self.ranges[idx - 1].last >= port
    }

    /// The `n`-th port in ascending order.
    pub fn nth(&self, mut n: u32) -> Option<u16> {
        for r in &self.ranges {
            if n < r.len() {
                return Some(r.first + n as u16);
            }
            n -= r.len();
        }
        None
    }

    /// Position of `port` in ascending order (the inverse of [`PortSpec::nth`]).
    pub fn index_of(&self, port: u16) -> Option<u32> {
        let mut before = 0;
        for r in &self.ranges {
            if port < r.first {
                return None;
            }
            if port <= r.last {
                return Some(before + u32::from(port - r.first));
            }
            before += r.len();
        }
        None
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|r| r.first..=r.last)
    }

    /// Consecutive pieces of at most `size` ports each, in order.
    pub fn chunks(&self, size: u32) -> Vec<PortSpec> {
        let size = size.max(1);
        let mut out = Vec::new();
        let mut cur: Vec<PortRange> = Vec::new();
        let mut room = size;
        for r in &self.ranges {
            let mut r = *r;
            loop {
                if r.len() <= room {
                    room -= r.len();
                    cur.push(r);
                    break;
                }
                let head = PortRange { first: r.first, last: r.first + (room as u16) - 1 };
                cur.push(head);
                out.push(PortSpec { ranges: std::mem::take(&mut cur) });
                room = size;
                r.first = head.last + 1;
            }
            if room == 0 {
                out.push(PortSpec { ranges: std::mem::take(&mut cur) });
                room = size;
            }
        }
        if !cur.is_empty() {
            out.push(PortSpec { ranges: cur });
        }
        out
    }
}

fn parse_port(text: &str) -> Result<u16, PortProblem> {
    let n: u64 = text.parse().map_err(|_| PortProblem::Unparsable)?;
    match u16::try_from(n) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(PortProblem::OutOfRange(n)),
    }
}

fn parse_range(token: &str) -> Result<PortRange, PortProblem> {
    let (first, last) = match token.split_once('-') {
        // `1024-` means up to the last port, `-1024` from the first, as in nmap.
        Some((a, b)) => {
            (if a.is_empty() { 1 } else { parse_port(a)? }, if b.is_empty() { u16::MAX } else { parse_port(b)? })
        }
        None => {
            let p = parse_port(token)?;
            (p, p)
        }
    };
    if first > last {
        return Err(PortProblem::Reversed);
    }
    Ok(PortRange { first, last })
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.first == r.last {
                write!(f, "{}", r.first)?;
            } else {
                write!(f, "{}-{}", r.first, r.last)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        let p = PortSpec::parse("22,80,443 1000-1002").unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), [22, 80, 443, 1000, 1001, 1002]);
    }

    #[test]
    fn all_is_every_port() {
        let p = PortSpec::parse("all").unwrap();
        assert_eq!(p.len(), 65535);
        assert!(p.contains(1) && p.contains(65535));
    }

    #[test]
    fn open_ended_ranges() {
        assert_eq!(PortSpec::parse("65530-").unwrap().len(), 6);
        assert_eq!(PortSpec::parse("-10").unwrap().len(), 10);
    }

    #[test]
    fn top_100_has_100_ports() {
        let p = PortSpec::parse("top-100").unwrap();
        assert_eq!(p.len(), 100);
        assert!(p.contains(22) && p.contains(3306) && p.contains(3389));
    }

    #[test]
    fn overlaps_merge() {
        let p = PortSpec::parse("1-10,5-20,21,80,80").unwrap();
        assert_eq!(p.to_string(), "1-21,80");
        assert_eq!(p.len(), 22);
    }

    #[test]
    fn out_of_range_port_is_named() {
        let e = PortSpec::parse("22,70000").unwrap_err();
        assert_eq!(e.token, "70000");
        assert_eq!(e.problem, PortProblem::OutOfRange(70000));
        assert_eq!(e.to_string(), "ports `70000`: port 70000 is out of range (ports are 1-65535)");
    }

    #[test]
    fn port_zero_is_refused() {
        assert_eq!(PortSpec::parse("0").unwrap_err().problem, PortProblem::OutOfRange(0));
    }

    #[test]
    fn reversed_range_is_refused() {
        assert_eq!(PortSpec::parse("100-20").unwrap_err().problem, PortProblem::Reversed);
    }

    #[test]
    fn garbage_and_empty_are_refused() {
        assert_eq!(PortSpec::parse("ssh").unwrap_err().problem, PortProblem::Unparsable);
        assert_eq!(PortSpec::parse(" , ").unwrap_err().problem, PortProblem::Empty);
        assert_eq!(PortSpec::parse("top-7").unwrap_err().problem, PortProblem::UnknownTop);
    }

    #[test]
    fn chunks_cover_every_port_once() {
        let p = PortSpec::parse("1-10,20,30-35").unwrap();
        let chunks = p.chunks(4);
        assert!(chunks.iter().all(|c| c.len() <= 4));
        let all: Vec<u16> = chunks.iter().flat_map(|c| c.iter().collect::<Vec<_>>()).collect();
        assert_eq!(all, p.iter().collect::<Vec<_>>());
    }

    #[test]
    fn nth_walks_ranges() {
        let p = PortSpec::parse("22,80-81").unwrap();
        assert_eq!((p.nth(0), p.nth(2), p.nth(3)), (Some(22), Some(81), None));
    }

    #[test]
    fn index_of_inverts_nth() {
        let p = PortSpec::parse("22,80-90,443,1000-1100").unwrap();
        for i in 0..p.len() {
            assert_eq!(p.index_of(p.nth(i).unwrap()), Some(i));
        }
        assert_eq!(p.index_of(23), None);
        assert_eq!(p.index_of(2000), None);
    }
}
