//! Answers-all detection: a host that completes a handshake on (nearly)
//! every port is a tarpit, a SYN proxy or an accept-all firewall, and is
//! reported once as such instead of as thousands of services.
//!
//! Open ports of a host are held back until all of the shard's probes to that
//! host are done (only when the shard probes it on enough ports for the
//! verdict to mean something); then either one answers-all observation or
//! the held ports go out. Hosts that look like tarpits early are marked
//! quiet, so the engine stops reading banners from them.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::engine::{ProbeResult, QuietHosts};

/// A host needs at least this many probes in the shard to be judged.
pub const MIN_PROBES: u32 = 100;
/// Open ports per probe, in percent, at which a host answers "all".
pub const OPEN_PERCENT: u32 = 90;
/// After this many open ports at that ratio, stop reading banners.
const SUSPECT_AFTER: u32 = 32;

#[derive(Default)]
struct Host {
    probed: u32,
    open: Vec<ProbeResult>,
}

/// What a finished host turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Report these open ports (possibly none).
    Ports(Vec<ProbeResult>),
    /// Report the host once as answering on all ports.
    AnswersAll { addr: IpAddr, open: u32, probed: u32 },
}

pub struct Tally {
    ports_per_host: u32,
    hosts: HashMap<IpAddr, Host>,
}

impl Tally {
    pub fn new(ports_per_host: u32) -> Self {
        Tally { ports_per_host, hosts: HashMap::new() }
    }

    /// Counts one result; returns a verdict when it finishes its host (or at
    /// once, for open ports of shards too narrow to judge).
    pub fn add(&mut self, r: ProbeResult, quiet: &QuietHosts) -> Option<Verdict> {
        let open = r.state == vantage_shared::PortState::Open;
        if self.ports_per_host < MIN_PROBES {
            return open.then(|| Verdict::Ports(vec![r]));
        }
        let addr = r.addr;
        let host = self.hosts.entry(addr).or_default();
        host.probed += 1;
        if open {
            host.open.push(r);
            let n = host.open.len() as u32;
            if n == SUSPECT_AFTER && n * 100 >= host.probed * OPEN_PERCENT {
                quiet.insert(addr);
            }
        }
        if host.probed < self.ports_per_host {
            return None;
        }
        let host = self.hosts.remove(&addr).expect("present");
        Some(judge(addr, host))
    }

    /// Hosts left unfinished (a cancelled or partly refused shard): report
    /// what was seen as ports.
    pub fn drain(&mut self) -> Vec<ProbeResult> {
        self.hosts.drain().flat_map(|(_, h)| h.open).collect()
    }
}

fn judge(addr: IpAddr, host: Host) -> Verdict {
    let open = host.open.len() as u32;
    if host.probed >= MIN_PROBES && open * 100 >= host.probed * OPEN_PERCENT {
        Verdict::AnswersAll { addr, open, probed: host.probed }
    } else {
        Verdict::Ports(host.open)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vantage_shared::PortState;

    use super::*;

    fn r(addr: &str, port: u16, state: PortState) -> ProbeResult {
        ProbeResult::new(addr.parse().unwrap(), port, state, Duration::ZERO)
    }

    #[test]
    fn narrow_shards_report_open_ports_at_once() {
        let mut t = Tally::new(3);
        let quiet = QuietHosts::default();
        assert_eq!(
            t.add(r("198.18.1.1", 22, PortState::Open), &quiet),
            Some(Verdict::Ports(vec![r("198.18.1.1", 22, PortState::Open)]))
        );
        assert_eq!(t.add(r("198.18.1.1", 23, PortState::Closed), &quiet), None);
    }

    #[test]
    fn a_host_open_everywhere_is_reported_once() {
        let mut t = Tally::new(200);
        let quiet = QuietHosts::default();
        let mut verdicts = Vec::new();
        for port in 1..=200 {
            let state = if port % 20 == 0 { PortState::Closed } else { PortState::Open };
            verdicts.extend(t.add(r("198.18.1.9", port, state), &quiet));
        }
        assert_eq!(verdicts, vec![Verdict::AnswersAll { addr: "198.18.1.9".parse().unwrap(), open: 190, probed: 200 }]);
        assert!(quiet.contains("198.18.1.9".parse().unwrap()), "banners stop early on a tarpit");
    }

    #[test]
    fn an_ordinary_host_keeps_its_ports() {
        let mut t = Tally::new(100);
        let quiet = QuietHosts::default();
        let mut verdicts = Vec::new();
        for port in 1..=100 {
            let state = if port <= 8 { PortState::Open } else { PortState::Closed };
            verdicts.extend(t.add(r("198.18.1.2", port, state), &quiet));
        }
        let [Verdict::Ports(ports)] = verdicts.as_slice() else { panic!("{verdicts:?}") };
        assert_eq!(ports.len(), 8);
        assert!(!quiet.contains("198.18.1.2".parse().unwrap()));
    }

    #[test]
    fn unfinished_hosts_are_drained_as_ports() {
        let mut t = Tally::new(100);
        let quiet = QuietHosts::default();
        assert_eq!(t.add(r("198.18.1.3", 80, PortState::Open), &quiet), None);
        assert_eq!(t.drain(), vec![r("198.18.1.3", 80, PortState::Open)]);
    }
}
