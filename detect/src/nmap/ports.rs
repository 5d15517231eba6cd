//! Port lists as nmap-service-probes writes them.
//!
//! Two syntaxes occur: `ports`/`sslports` take plain lists (`21-25,53,80`),
//! and `Exclude` takes nmap's `-p` syntax, where `T:`, `U:` and `S:` switch
//! the protocol for the items that follow (`53,T:9100-9107,U:30000-40000`:
//! 53 for every protocol, then TCP 9100-9107, then UDP 30000-40000).

use vantage_shared::Proto;

/// A set of ports: sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PortList {
    ranges: Vec<(u16, u16)>,
}

impl PortList {
    /// A list from arbitrary inclusive ranges (`first <= last` each).
    fn from_ranges(mut ranges: Vec<(u16, u16)>) -> PortList {
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (first, last) in ranges {
            match merged.last_mut() {
                Some(prev) if u32::from(first) <= u32::from(prev.1) + 1 => prev.1 = prev.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        PortList { ranges: merged }
    }

    /// Whether `port` is in the list.
    pub fn contains(&self, port: u16) -> bool {
        // The last range starting at or before `port` is the only candidate.
        let idx = self.ranges.partition_point(|&(first, _)| first <= port);
        idx > 0 && self.ranges[idx - 1].1 >= port
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The inclusive ranges, sorted.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// How many ports the list holds.
    pub fn len(&self) -> usize {
        self.ranges.iter().map(|&(a, b)| usize::from(b - a) + 1).sum()
    }
}

/// Ports excluded from version detection, per protocol (the `Exclude` directive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExcludeList {
    pub tcp: PortList,
    pub udp: PortList,
}

impl ExcludeList {
    pub fn contains(&self, proto: Proto, port: u16) -> bool {
        match proto {
            Proto::Tcp => self.tcp.contains(port),
            Proto::Udp => self.udp.contains(port),
        }
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a port number"));
    }
    s.parse::<u16>().map_err(|_| format!("port {s} is out of range (0-65535)"))
}

/// One item: `80`, `21-25`; with `open_ends`, also `-1024` and `60000-`.
fn parse_range(item: &str, open_ends: bool) -> Result<(u16, u16), String> {
    let (first, last) = match item.split_once('-') {
        None => {
            let p = parse_port(item)?;
            (p, p)
        }
        Some((a, b)) => {
            let first = match (a.trim(), open_ends) {
                ("", true) => 1,
                (a, _) => parse_port(a)?,
            };
            let last = match (b.trim(), open_ends) {
                ("", true) => u16::MAX,
                (b, _) => parse_port(b)?,
            };
            (first, last)
        }
    };
    if first > last {
        return Err(format!("reversed range `{item}`"));
    }
    Ok((first, last))
}

/// A `ports`/`sslports` list: `1,7,9,21-25`. Whitespace around items is allowed.
pub(crate) fn parse_port_list(s: &str) -> Result<PortList, String> {
    let mut ranges = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty item in port list".into());
        }
        ranges.push(parse_range(item, false)?);
    }
    Ok(PortList::from_ranges(ranges))
}

/// An `Exclude` list in nmap's `-p` syntax: `1-1024,U:53,T:80`.
pub(crate) fn parse_exclude(s: &str) -> Result<ExcludeList, String> {
    #[derive(Clone, Copy)]
    enum Which {
        All,
        Tcp,
        Udp,
        Sctp,
    }
    let mut which = Which::All;
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    for item in s.split(',') {
        let mut item = item.trim();
        if let Some((prefix, rest)) = item.split_once(':') {
            which = match prefix.trim() {
                "T" | "t" => Which::Tcp,
                "U" | "u" => Which::Udp,
                "S" | "s" => Which::Sctp,
                other => return Err(format!("unknown protocol prefix `{other}:` (use T:, U: or S:)")),
            };
            item = rest.trim();
        }
        if item.is_empty() {
            return Err("empty item in port list".into());
        }
        let range = parse_range(item, true)?;
        match which {
            Which::All => {
                tcp.push(range);
                udp.push(range);
            }
            Which::Tcp => tcp.push(range),
            Which::Udp => udp.push(range),
            Which::Sctp => {} // No SCTP version detection; parsed and dropped.
        }
    }
    Ok(ExcludeList { tcp: PortList::from_ranges(tcp), udp: PortList::from_ranges(udp) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_merge_and_contain() {
        let l = parse_port_list("80, 21-25,22,26,443 ,8000-8000").unwrap();
        assert_eq!(l.ranges(), &[(21, 26), (80, 80), (443, 443), (8000, 8000)]);
        assert!(l.contains(21) && l.contains(26) && l.contains(443) && l.contains(8000));
        assert!(!l.contains(20) && !l.contains(27) && !l.contains(0) && !l.contains(65535));
        assert_eq!(l.len(), 9);
        assert!(parse_port_list("0,65535").unwrap().contains(0));
    }

    #[test]
    fn plain_list_errors() {
        for bad in ["", "80,", "a", "70000", "25-21", "-5", "5-", "1;2"] {
            assert!(parse_port_list(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn exclude_prefixes_switch_protocol() {
        let e = parse_exclude("1-1024,U:53,T:80,9100-9107,S:7").unwrap();
        assert!(e.contains(Proto::Tcp, 1) && e.contains(Proto::Udp, 1024));
        assert!(e.contains(Proto::Udp, 53) && e.contains(Proto::Tcp, 53));
        assert!(e.contains(Proto::Tcp, 80) && e.contains(Proto::Tcp, 9105));
        assert!(!e.contains(Proto::Udp, 9105) && !e.contains(Proto::Udp, 2000));
        let e = parse_exclude("T:9100-9107").unwrap();
        assert!(e.contains(Proto::Tcp, 9100) && !e.contains(Proto::Udp, 9100) && !e.contains(Proto::Tcp, 9108));
        let e = parse_exclude("60000-,U:-10").unwrap();
        assert!(e.contains(Proto::Tcp, 65535) && e.contains(Proto::Udp, 1) && !e.contains(Proto::Tcp, 1));
        assert!(parse_exclude("X:80").is_err());
        assert!(parse_exclude("T:").is_err());
    }
}
