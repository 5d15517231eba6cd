//! The ground truth of a lab: which port of which host is open, filtered or
//! closed, drawn from the spec's seed and written as JSON.
//!
//! Everything that builds the lab (addresses, nftables rules, listeners) is
//! derived from this one document, so a scanner's results can be judged
//! against it exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::LabError;
use super::spec::{LAB_NET, LabSpec, PortRange, SCANNER_ADDR};

/// The port the tarpit host's one listener binds; every port of that host
/// is redirected to it.
pub const TARPIT_PORT: u16 = 4444;

/// What a host does with a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKind {
    /// Listeners on its open ports, DROP on its filtered ports, RST elsewhere.
    Live,
    /// Nobody owns the address: no answer at all (not even ARP).
    Dark,
    /// Owned (answers ARP) but every packet to it is dropped.
    DropAll,
    /// Accepts a connection on every port.
    Tarpit,
}

/// One target address and its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTruth {
    pub addr: Ipv4Addr,
    pub kind: HostKind,
    /// Ports with a real listener (live hosts only).
    #[serde(default)]
    pub open: BTreeSet<u16>,
    /// Ports whose packets are dropped (live hosts only).
    #[serde(default)]
    pub filtered: BTreeSet<u16>,
    /// Open ports whose listener speaks first with [`banner`].
    #[serde(default)]
    pub greeting: BTreeSet<u16>,
    /// Open ports that drop packets from these scanner addresses (a
    /// geo-fencing firewall): filtered from there, open from elsewhere.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fenced: BTreeMap<u16, BTreeSet<Ipv4Addr>>,
}

/// A listener the target namespace must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSpec {
    pub addr: SocketAddrV4,
    pub greets: bool,
}

/// How a scanner's open ports compare with the truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Score {
    /// Open in truth, not reported.
    pub missed: BTreeSet<SocketAddrV4>,
    /// Reported open, not open in truth.
    pub false_open: BTreeSet<SocketAddrV4>,
}

impl Score {
    pub fn is_exact(&self) -> bool {
        self.missed.is_empty() && self.false_open.is_empty()
    }
}

/// The whole ground truth of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    pub name: String,
    pub seed: u64,
    /// The first scanner's address.
    pub scanner: Ipv4Addr,
    /// Every scanner's address, the first one first.
    #[serde(default)]
    pub scanners: Vec<Ipv4Addr>,
    /// The on-link network of the lab, for scope files.
    pub network: String,
    /// The range open and filtered ports were drawn from.
    pub ports: PortRange,
    /// The port the tarpit's listener binds, if there is a tarpit host.
    pub tarpit_port: Option<u16>,
    /// Every target address, contiguous, in address order.
    pub hosts: Vec<HostTruth>,
}

/// What a greeting listener at `addr` says first.
pub fn banner(addr: SocketAddrV4) -> String {
    format!("220 lab {addr}\r\n")
}

impl Truth {
    /// Draws the ports of every live host from the spec's seed.
    pub fn generate(spec: &LabSpec) -> Truth {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let mut hosts = Vec::with_capacity(spec.target_count() as usize);
        for i in 0..spec.hosts {
            hosts.push(live_host(spec, spec.addr(i), &mut rng));
        }
        let mut next = spec.hosts;
        let mut special = |kind| {
            let host = HostTruth {
                addr: spec.addr(next),
                kind,
                open: BTreeSet::new(),
                filtered: BTreeSet::new(),
                greeting: BTreeSet::new(),
                fenced: BTreeMap::new(),
            };
            next += 1;
            host
        };
        hosts.extend((0..spec.dark).map(|_| special(HostKind::Dark)));
        if spec.drop_all {
            hosts.push(special(HostKind::DropAll));
        }
        if spec.tarpit {
            hosts.push(special(HostKind::Tarpit));
        }
        let scanners: Vec<Ipv4Addr> = (0..spec.scanners).map(|i| spec.scanner_addr(i)).collect();
        fence(spec, &scanners, &mut hosts);
        Truth {
            name: spec.name.clone(),
            seed: spec.seed,
            scanner: SCANNER_ADDR,
            scanners,
            network: LAB_NET.to_string(),
            ports: spec.ports,
            tarpit_port: spec.tarpit.then_some(TARPIT_PORT),
            hosts,
        }
    }

    pub fn load(path: &Path) -> Result<Truth, LabError> {
        let text = std::fs::read_to_string(path).map_err(|e| LabError::io(format!("reading {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|e| LabError::Truth(format!("{}: {e}", path.display())))
    }

    pub fn save(&self, path: &Path) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::Truth(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| LabError::io(format!("writing {}", path.display()), e))
    }

    /// Every target address as one range, `first-last` (Vantage and masscan syntax).
    pub fn targets(&self) -> String {
        match (self.hosts.first(), self.hosts.last()) {
            (Some(a), Some(b)) => format!("{}-{}", a.addr, b.addr),
            _ => String::new(),
        }
    }

    /// Every target address, in order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.hosts.iter().map(|h| h.addr)
    }

    /// The addresses the target namespace owns: every one but the dark hosts'.
    pub fn owned_addrs(&self) -> Vec<Ipv4Addr> {
        self.hosts.iter().filter(|h| h.kind != HostKind::Dark).map(|h| h.addr).collect()
    }

    /// Hosts of one kind.
    pub fn of_kind(&self, kind: HostKind) -> impl Iterator<Item = &HostTruth> + '_ {
        self.hosts.iter().filter(move |h| h.kind == kind)
    }

    /// Probes of a full scan: every target address times every port of the range.
    pub fn probes(&self) -> u64 {
        self.hosts.len() as u64 * self.ports.len() as u64
    }

    /// What a perfect scanner reports open over the port range: the live
    /// hosts' listeners and every port of the tarpit host.
    pub fn expected_open(&self) -> BTreeSet<SocketAddrV4> {
        let mut out = BTreeSet::new();
        for h in &self.hosts {
            match h.kind {
                HostKind::Live => out.extend(h.open.iter().map(|p| SocketAddrV4::new(h.addr, *p))),
                HostKind::Tarpit => out.extend(self.ports.iter().map(|p| SocketAddrV4::new(h.addr, p))),
                HostKind::Dark | HostKind::DropAll => {}
            }
        }
        out
    }

    /// What a perfect scanner at `scanner` reports open: as
    /// [`Truth::expected_open`], less the ports fenced off from it.
    pub fn expected_open_from(&self, scanner: Ipv4Addr) -> BTreeSet<SocketAddrV4> {
        let fenced = |a: &SocketAddrV4| {
            self.hosts
                .iter()
                .any(|h| h.addr == *a.ip() && h.fenced.get(&a.port()).is_some_and(|s| s.contains(&scanner)))
        };
        self.expected_open().into_iter().filter(|a| !fenced(a)).collect()
    }

    /// Every (source, destination, port) whose packets are dropped by a fence.
    pub fn fences(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr, u16)> + '_ {
        self.hosts.iter().flat_map(|h| {
            h.fenced.iter().flat_map(move |(port, sources)| sources.iter().map(move |src| (*src, h.addr, *port)))
        })
    }

    /// Compares a scanner's open ports with [`Truth::expected_open`].
    pub fn score(&self, reported: &BTreeSet<SocketAddrV4>) -> Score {
        let expected = self.expected_open();
        Score {
            missed: expected.difference(reported).copied().collect(),
            false_open: reported.difference(&expected).copied().collect(),
        }
    }

    /// The listeners the target namespace runs: every open port, and the tarpit's one.
    pub fn listeners(&self) -> Vec<ListenerSpec> {
        let mut out = Vec::new();
        for h in &self.hosts {
            match (h.kind, self.tarpit_port) {
                (HostKind::Live, _) => out.extend(
                    h.open
                        .iter()
                        .map(|p| ListenerSpec { addr: SocketAddrV4::new(h.addr, *p), greets: h.greeting.contains(p) }),
                ),
                (HostKind::Tarpit, Some(port)) => {
                    out.push(ListenerSpec { addr: SocketAddrV4::new(h.addr, port), greets: false })
                }
                _ => {}
            }
        }
        out
    }
}

/// Fences `spec.fenced` open ports of every live host off from one scanner
/// each. A generator of its own, so that labs without fences keep the ports
/// their seed always gave them.
fn fence(spec: &LabSpec, scanners: &[Ipv4Addr], hosts: &mut [HostTruth]) {
    if spec.fenced == 0 || scanners.len() < 2 {
        return;
    }
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0xfe5ce);
    for h in hosts.iter_mut().filter(|h| h.kind == HostKind::Live) {
        let open: Vec<u16> = h.open.iter().copied().collect();
        for i in rand::seq::index::sample(&mut rng, open.len(), spec.fenced as usize) {
            let from = scanners[rng.random_range(0..scanners.len())];
            h.fenced.entry(open[i]).or_default().insert(from);
        }
    }
}

/// A live host: `open` then `filtered` ports drawn without repetition;
/// every other open port greets.
fn live_host(spec: &LabSpec, addr: Ipv4Addr, rng: &mut StdRng) -> HostTruth {
    let wanted = (spec.open + spec.filtered) as usize;
    let picked = rand::seq::index::sample(rng, spec.ports.len(), wanted);
    let port = |i: usize| spec.ports.first + i as u16;
    let drawn: Vec<u16> = picked.iter().map(port).collect();
    let (open, filtered) = drawn.split_at(spec.open as usize);
    HostTruth {
        addr,
        kind: HostKind::Live,
        open: open.iter().copied().collect(),
        filtered: filtered.iter().copied().collect(),
        greeting: open.iter().step_by(2).copied().collect(),
        fenced: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LabSpec {
        LabSpec { hosts: 3, open: 5, filtered: 4, dark: 2, drop_all: true, tarpit: true, ..LabSpec::new("t") }
    }

    #[test]
    fn the_seed_decides_everything() {
        assert_eq!(Truth::generate(&spec()), Truth::generate(&spec()));
        assert_ne!(Truth::generate(&spec()), Truth::generate(&LabSpec { seed: 2, ..spec() }));
    }

    #[test]
    fn open_and_filtered_are_disjoint_and_in_range() {
        let truth = Truth::generate(&spec());
        for h in truth.of_kind(HostKind::Live) {
            assert_eq!((h.open.len(), h.filtered.len()), (5, 4));
            assert!(h.open.is_disjoint(&h.filtered));
            assert!(h.open.iter().chain(&h.filtered).all(|p| truth.ports.contains(*p)));
            assert!(h.greeting.is_subset(&h.open));
        }
    }

    #[test]
    fn hosts_are_contiguous_in_kind_order() {
        let truth = Truth::generate(&spec());
        let kinds: Vec<HostKind> = truth.hosts.iter().map(|h| h.kind).collect();
        use HostKind::*;
        assert_eq!(kinds, [Live, Live, Live, Dark, Dark, DropAll, Tarpit]);
        assert_eq!(truth.targets(), "198.18.1.0-198.18.1.6");
        assert_eq!(truth.probes(), 7 * 1000);
    }

    #[test]
    fn the_tarpit_counts_open_on_every_port() {
        let truth = Truth::generate(&spec());
        assert_eq!(truth.expected_open().len(), 3 * 5 + 1000);
        assert_eq!(truth.listeners().len(), 3 * 5 + 1);
    }

    #[test]
    fn score_counts_missed_and_false_open() {
        let truth = Truth::generate(&LabSpec { tarpit: false, ..spec() });
        let mut reported = truth.expected_open();
        let gone = *reported.iter().next().unwrap();
        reported.remove(&gone);
        let extra = SocketAddrV4::new(truth.hosts[3].addr, 1);
        reported.insert(extra);
        let score = truth.score(&reported);
        assert_eq!(score.missed, BTreeSet::from([gone]));
        assert_eq!(score.false_open, BTreeSet::from([extra]));
    }

    #[test]
    fn fences_close_open_ports_to_one_scanner_each() {
        let fenced = LabSpec { scanners: 3, fenced: 2, ..spec() };
        let truth = Truth::generate(&fenced);
        let plain = Truth::generate(&spec());
        for (h, p) in truth.hosts.iter().zip(&plain.hosts) {
            assert_eq!((&h.open, &h.filtered), (&p.open, &p.filtered), "fences change no port");
        }
        let fences: Vec<_> = truth.fences().collect();
        assert_eq!(fences.len(), 3 * 2);
        for (src, dst, port) in &fences {
            assert!(truth.scanners.contains(src));
            assert!(truth.hosts.iter().any(|h| h.addr == *dst && h.open.contains(port)));
        }
        let all = truth.expected_open();
        let per_scanner: usize = truth.scanners.iter().map(|s| all.len() - truth.expected_open_from(*s).len()).sum();
        assert_eq!(per_scanner, 6);
    }

    #[test]
    fn truth_round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truth.json");
        let truth = Truth::generate(&spec());
        truth.save(&path).unwrap();
        assert_eq!(Truth::load(&path).unwrap(), truth);
    }
}
