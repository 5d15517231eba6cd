//! The target namespace's nftables rules: filtered ports, fenced ports
//! (dropped from one scanner's source address only), the drop-all host, and
//! the tarpit.
//!
//! Filtered ports are one concatenated set (`ipv4_addr . inet_service`), so
//! thousands of them cost one lookup. Rules sit in the raw prerouting hook,
//! before connection tracking. Only the tarpit needs NAT (every port of its
//! address to one listener); it is the only traffic tracked, so a large scan
//! of the other hosts can never fill the conntrack table.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use super::LabError;
use super::net::run;
use super::truth::{HostKind, Truth};

/// The table holding every rule of the lab.
pub const TABLE: &str = "vantage_lab";

/// The whole ruleset for `truth`, in `nft -f` syntax.
pub fn ruleset(truth: &Truth) -> String {
    let filtered: Vec<String> = truth
        .of_kind(HostKind::Live)
        .flat_map(|h| h.filtered.iter().map(move |p| format!("{} . {p}", h.addr)))
        .collect();
    let fenced: Vec<String> = truth.fences().map(|(src, dst, port)| format!("{src} . {dst} . {port}")).collect();
    let drop_all: Vec<String> = truth.of_kind(HostKind::DropAll).map(|h| h.addr.to_string()).collect();
    let tarpit = truth.of_kind(HostKind::Tarpit).next().map(|h| h.addr).zip(truth.tarpit_port);

    let mut out = format!("table inet {TABLE} {{\n");
    out += &set("filtered", "ipv4_addr . inet_service", &filtered);
    out += &set("fenced", "ipv4_addr . ipv4_addr . inet_service", &fenced);
    out += &set("drop_all", "ipv4_addr", &drop_all);
    out += "  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n";
    out += "    ip daddr @drop_all drop\n    ip daddr . tcp dport @filtered drop\n";
    out += "    ip saddr . ip daddr . tcp dport @fenced drop\n";
    if let Some((addr, _)) = tarpit {
        let _ = writeln!(out, "    ip daddr != {addr} notrack");
    }
    out += "  }\n";
    if let Some((addr, port)) = tarpit {
        out += &tarpit_chains(addr, port);
    }
    out += "}\n";
    out
}

fn set(name: &str, kind: &str, elements: &[String]) -> String {
    let mut out = format!("  set {name} {{\n    type {kind}\n");
    if !elements.is_empty() {
        let _ = writeln!(out, "    elements = {{ {} }}", elements.join(", "));
    }
    out + "  }\n"
}

/// Every TCP port of the tarpit to its one listener; replies of everyone
/// else stay untracked too.
fn tarpit_chains(addr: Ipv4Addr, port: u16) -> String {
    format!(
        "  chain output {{\n    type filter hook output priority raw; policy accept;\n    ip saddr != {addr} notrack\n  }}\n  \
         chain tarpit {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         ip daddr {addr} tcp dport 1-65535 dnat ip to {addr}:{port}\n  }}\n"
    )
}

/// Loads the ruleset of `truth` into the target namespace.
pub fn apply(ns: &str, truth: &Truth, dir: &Path) -> Result<(), LabError> {
    load(ns, &ruleset(truth), dir)
}

/// Loads a ruleset (`nft -f` syntax, kept as `rules.nft` in `dir`) into namespace `ns`.
pub fn load(ns: &str, ruleset: &str, dir: &Path) -> Result<(), LabError> {
    let path = dir.join("rules.nft");
    std::fs::write(&path, ruleset).map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    run(Command::new("ip").args(["netns", "exec", ns, "nft", "-f"]).arg(&path)).map(drop)
}

/// A port of the live ruleset to drop or let through again, from every
/// source or from one scanner's address: what a firewall change between two
/// scans looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// `None`: dropped from everywhere (filtered); else fenced off from this source.
    pub from: Option<Ipv4Addr>,
}

impl Block {
    /// The `nft` element command (`add` or `delete`) for this block.
    fn command(&self, verb: &str) -> String {
        let (set, element) = match self.from {
            None => ("filtered", format!("{} . {}", self.addr, self.port)),
            Some(src) => ("fenced", format!("{src} . {} . {}", self.addr, self.port)),
        };
        format!("{verb} element inet {TABLE} {set} {{ {element} }}")
    }
}

/// Adds (`on`) or removes a block in namespace `ns`'s live ruleset.
pub fn set_block(ns: &str, block: Block, on: bool) -> Result<(), LabError> {
    let command = block.command(if on { "add" } else { "delete" });
    run(Command::new("ip").args(["netns", "exec", ns, "nft"]).args(command.split(' '))).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabSpec;

    #[test]
    fn filtered_ports_are_set_elements() {
        let truth = Truth::generate(&LabSpec { hosts: 1, open: 1, filtered: 1, ..LabSpec::new("n") });
        let port = truth.hosts[0].filtered.iter().next().unwrap();
        assert!(ruleset(&truth).contains(&format!("elements = {{ 198.18.1.0 . {port} }}")));
    }

    #[test]
    fn fenced_ports_drop_one_source() {
        let truth = Truth::generate(&LabSpec { scanners: 2, fenced: 1, ..LabSpec::new("n") });
        let (src, dst, port) = truth.fences().next().unwrap();
        let rules = ruleset(&truth);
        assert!(rules.contains(&format!("{src} . {dst} . {port}")), "{rules}");
        assert!(rules.contains("ip saddr . ip daddr . tcp dport @fenced drop"));
    }

    #[test]
    fn empty_sets_have_no_elements_line() {
        let truth = Truth::generate(&LabSpec { filtered: 0, ..LabSpec::new("n") });
        assert!(!ruleset(&truth).contains("elements"));
    }

    #[test]
    fn only_a_tarpit_brings_nat() {
        let plain = Truth::generate(&LabSpec::new("n"));
        assert!(!ruleset(&plain).contains("nat"));
        let tarpit = Truth::generate(&LabSpec { tarpit: true, ..LabSpec::new("n") });
        assert!(ruleset(&tarpit).contains("ip daddr 198.18.1.4 tcp dport 1-65535 dnat ip to 198.18.1.4:4444"));
    }

    #[test]
    fn blocks_are_set_elements() {
        let addr = "198.18.1.0".parse().unwrap();
        let all = Block { addr, port: 80, from: None };
        assert_eq!(all.command("add"), "add element inet vantage_lab filtered { 198.18.1.0 . 80 }");
        let one = Block { from: Some("198.18.0.2".parse().unwrap()), ..all };
        assert_eq!(one.command("delete"), "delete element inet vantage_lab fenced { 198.18.0.2 . 198.18.1.0 . 80 }");
    }
}
