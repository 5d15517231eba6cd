//! What a lab should look like, and the address plan every part agrees on.
//!
//! A spec is checked once ([`LabSpec::validate`]) so that the network, the
//! rules and the listeners never have to second-guess it.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::LabError;

/// The (first) scanner's address (inside `vl-<name>-scan`); scanner `i`
/// has 198.18.0.(1 + i) ([`LabSpec::scanner_addr`]).
pub const SCANNER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Most scanner namespaces a lab may have.
pub const MAX_SCANNERS: u32 = 8;
/// The control namespace's address (`vl-<name>-ctl`): where a coordinator
/// listens for agents in the scanner namespaces.
pub const CONTROL_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
/// The first target host; live hosts, dark hosts, the drop-all host and
/// the tarpit host follow contiguously.
pub const FIRST_TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 0);
/// The on-link prefix of every interface in the lab (198.18.0.0/15).
pub const PREFIX_LEN: u8 = 15;
/// The lab's whole address range, for scope files.
pub const LAB_NET: &str = "198.18.0.0/15";
/// The last address of 198.18.0.0/15: nothing may be planned past it.
const LAST_LAB_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 255);
/// Longest lab name: namespace names are `vl-<name>-scan`.
const MAX_NAME_LEN: usize = 24;

/// An inclusive TCP port range, written `A-B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn new(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    /// Number of ports in the range.
    pub fn len(&self) -> usize {
        usize::from(self.last) + 1 - usize::from(self.first)
    }

    /// A valid range always holds at least one port.
    pub fn is_empty(&self) -> bool {
        self.first > self.last
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + use<> {
        self.first..=self.last
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = LabError;

    fn from_str(s: &str) -> Result<PortRange, LabError> {
        let bad = || LabError::Spec(format!("port range `{s}`: expected A-B with 1 <= A <= B <= 65535"));
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (first, last) = (a.trim().parse::<u16>().map_err(|_| bad())?, b.trim().parse::<u16>().map_err(|_| bad())?);
        if first == 0 || first > last {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

/// The shape of a lab: its hosts and, per live host, how many ports of
/// `ports` are open and filtered. Everything else in `ports` is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Names the namespaces (`vl-<name>-br`, `-scan`, `-t`); lowercase
    /// letters, digits and `-`, so parallel labs do not collide.
    pub name: String,
    /// Live hosts from 198.18.1.0 upwards.
    pub hosts: u32,
    /// Open ports per live host (real listeners).
    pub open: u32,
    /// Filtered ports per live host (nftables DROP).
    pub filtered: u32,
    /// The range open and filtered ports are drawn from.
    pub ports: PortRange,
    /// Addresses after the live hosts that nobody owns.
    pub dark: u32,
    /// One more host whose every packet is dropped.
    pub drop_all: bool,
    /// One more host that accepts a connection on every port.
    pub tarpit: bool,
    /// Seeds the choice of open, filtered and greeting ports.
    pub seed: u64,
    /// Scanner namespaces, each with its own source address (as agents in
    /// several regions have).
    pub scanners: u32,
    /// Open ports per live host that drop one scanner's packets (a
    /// geo-fencing firewall); which scanner is drawn from the seed.
    pub fenced: u32,
    /// A control namespace at [`CONTROL_ADDR`] for a coordinator.
    pub control: bool,
}

impl LabSpec {
    /// A small lab: 4 hosts, ports 1-1000 with 4 open and 2 filtered each.
    pub fn new(name: &str) -> LabSpec {
        LabSpec {
            name: name.to_string(),
            hosts: 4,
            open: 4,
            filtered: 2,
            ports: PortRange::new(1, 1000),
            dark: 0,
            drop_all: false,
            tarpit: false,
            seed: 1,
            scanners: 1,
            fenced: 0,
            control: false,
        }
    }

    /// Every address the plan uses, live, dark and special.
    pub fn target_count(&self) -> u32 {
        self.hosts + self.dark + u32::from(self.drop_all) + u32::from(self.tarpit)
    }

    /// Checks that the plan fits the lab's network and the port range.
    pub fn validate(&self) -> Result<(), LabError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(LabError::Spec(format!(
                "lab name `{}`: expected 1 to {MAX_NAME_LEN} of a-z, 0-9 and `-`",
                self.name
            )));
        }
        if self.hosts == 0 {
            return Err(LabError::Spec("a lab needs at least one live host".into()));
        }
        let per_host = u64::from(self.open) + u64::from(self.filtered);
        if per_host > self.ports.len() as u64 {
            return Err(LabError::Spec(format!(
                "{} open + {} filtered ports do not fit in {} ({} ports)",
                self.open,
                self.filtered,
                self.ports,
                self.ports.len()
            )));
        }
        if !(1..=MAX_SCANNERS).contains(&self.scanners) {
            return Err(LabError::Spec(format!("{} scanners: expected 1 to {MAX_SCANNERS}", self.scanners)));
        }
        if self.fenced > self.open {
            return Err(LabError::Spec(format!("{} fenced ports of {} open ones", self.fenced, self.open)));
        }
        if self.fenced > 0 && self.scanners < 2 {
            return Err(LabError::Spec("fenced ports need at least 2 scanners to differ between".into()));
        }
        let room = u32::from(LAST_LAB_ADDR) - u32::from(FIRST_TARGET) + 1;
        if self.target_count() > room {
            return Err(LabError::Spec(format!("{} target addresses do not fit in {LAB_NET}", self.target_count())));
        }
        Ok(())
    }

    /// The `i`-th target address (0 = 198.18.1.0).
    pub fn addr(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(FIRST_TARGET) + i)
    }

    /// The namespace holding the bridge.
    pub fn ns_bridge(&self) -> String {
        format!("vl-{}-br", self.name)
    }

    /// The namespace the (first) scanner runs in.
    pub fn ns_scanner(&self) -> String {
        format!("vl-{}-scan", self.name)
    }

    /// The namespace of scanner `i` (0 is [`LabSpec::ns_scanner`]).
    pub fn ns_scanner_at(&self, i: u32) -> String {
        if i == 0 { self.ns_scanner() } else { format!("vl-{}-scan{i}", self.name) }
    }

    /// The source address of scanner `i`.
    pub fn scanner_addr(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(SCANNER_ADDR) + i)
    }

    /// The namespace of the control address, when the lab has one.
    pub fn ns_control(&self) -> String {
        format!("vl-{}-ctl", self.name)
    }

    /// Every namespace a lab of this spec has: bridge, scanners, targets, control.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out = vec![self.ns_bridge()];
        out.extend((0..self.scanners).map(|i| self.ns_scanner_at(i)));
        out.push(self.ns_targets());
        if self.control {
            out.push(self.ns_control());
        }
        out
    }

    /// The namespace holding every target address and listener.
    pub fn ns_targets(&self) -> String {
        format!("vl-{}-t", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses() {
        assert_eq!("1-1000".parse::<PortRange>().unwrap(), PortRange::new(1, 1000));
        assert_eq!(PortRange::new(1, 65535).len(), 65535);
    }

    #[test]
    fn port_range_rejects_reversed_and_zero() {
        assert!("10-1".parse::<PortRange>().is_err());
        assert!("0-10".parse::<PortRange>().is_err());
        assert!("80".parse::<PortRange>().is_err());
    }

    #[test]
    fn addresses_follow_the_first_target() {
        let spec = LabSpec::new("a");
        assert_eq!(spec.addr(0), Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(spec.addr(256), Ipv4Addr::new(198, 18, 2, 0));
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "UPPER", "a b", "x".repeat(30).as_str()] {
            assert!(LabSpec { name: name.into(), ..LabSpec::new("a") }.validate().is_err(), "{name:?}");
        }
    }

    #[test]
    fn scanners_have_their_own_namespace_and_address() {
        let spec = LabSpec { scanners: 3, control: true, ..LabSpec::new("a") };
        assert_eq!(spec.ns_scanner_at(0), "vl-a-scan");
        assert_eq!(spec.ns_scanner_at(2), "vl-a-scan2");
        assert_eq!(spec.scanner_addr(2), Ipv4Addr::new(198, 18, 0, 3));
        assert_eq!(spec.namespaces(), ["vl-a-br", "vl-a-scan", "vl-a-scan1", "vl-a-scan2", "vl-a-t", "vl-a-ctl"]);
        assert!(spec.scanner_addr(MAX_SCANNERS - 1) < CONTROL_ADDR);
        assert!(spec.scanner_addr(MAX_SCANNERS - 1) < FIRST_TARGET);
    }

    #[test]
    fn fences_need_two_scanners_and_open_ports() {
        assert!(LabSpec { fenced: 1, ..LabSpec::new("a") }.validate().is_err());
        assert!(LabSpec { fenced: 5, scanners: 2, ..LabSpec::new("a") }.validate().is_err());
        assert!(LabSpec { fenced: 4, scanners: 2, ..LabSpec::new("a") }.validate().is_ok());
        assert!(LabSpec { scanners: 0, ..LabSpec::new("a") }.validate().is_err());
    }

    #[test]
    fn too_many_ports_per_host_are_refused() {
        let spec = LabSpec { open: 8, filtered: 3, ports: PortRange::new(1, 10), ..LabSpec::new("a") };
        assert!(spec.validate().is_err());
    }
}
