//! Sharding: cutting a scan's (address × port) space into work units.
//!
//! A shard is a block of addresses crossed with a block of ports. Blocks of
//! addresses come first (each shard covers whole hosts when it can), so that
//! the usual many-hosts scan spreads hosts over agents; when one host has more
//! ports than a shard holds, its ports are split too, so that even a single
//! host scanned on all 65,535 ports is shared among agents.
//!
//! Every (address, port) of the input lands in exactly one shard; the tests
//! check that by property.

use crate::addr::AddrRange;
use crate::ports::PortSpec;
use crate::target::TargetSet;

/// Probes per shard unless configured: about a second of work for an agent on
/// a fast network, tens of seconds across the internet at a polite rate. Each
/// shard ends with a wait for late answers, so much smaller shards waste time
/// and much larger ones spread badly over agents.
pub const DEFAULT_SHARD_PROBES: u64 = 32_768;

/// How long one shard should take at its agent's pace: long enough that the
/// end-of-shard wait for late answers and the bookkeeping are noise, short
/// enough that a lost agent costs little and the work spreads over agents.
pub const SHARD_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Bounds of a shard sized from a rate.
pub const MIN_SIZED_PROBES: u64 = 1_024;
pub const MAX_SIZED_PROBES: u64 = 1 << 22;

/// Probes in a shard that takes about [`SHARD_TIME`] at `rate` probes per
/// second, within [`MIN_SIZED_PROBES`]..=[`MAX_SIZED_PROBES`].
pub fn sized_for(rate: f64) -> u64 {
    let probes = rate * SHARD_TIME.as_secs_f64();
    if probes.is_nan() { DEFAULT_SHARD_PROBES } else { (probes as u64).clamp(MIN_SIZED_PROBES, MAX_SIZED_PROBES) }
}

/// One slice of a scan: these addresses × these ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub targets: Vec<AddrRange>,
    pub ports: PortSpec,
}

impl Shard {
    pub fn addresses(&self) -> u128 {
        self.targets.iter().map(AddrRange::len).sum()
    }

    pub fn probes(&self) -> u128 {
        self.addresses() * u128::from(self.ports.len())
    }
}

/// Number of shards `plan` would yield, computed without building them.
pub fn shard_count(targets: &TargetSet, ports: &PortSpec, max_probes: u64) -> u128 {
    let (hosts_per, port_chunks) = layout(ports, max_probes);
    targets.len().div_ceil(hosts_per) * port_chunks.len() as u128
}

/// Lazily cuts `targets × ports` into shards of at most `max_probes` probes
/// (a shard holds at least one address × one port).
pub fn plan<'a>(targets: &'a TargetSet, ports: &PortSpec, max_probes: u64) -> impl Iterator<Item = Shard> + 'a {
    let (hosts_per, port_chunks) = layout(ports, max_probes);
    host_blocks(targets, hosts_per).flat_map(move |block| {
        port_chunks.clone().into_iter().map(move |ports| Shard { targets: block.clone(), ports })
    })
}

fn layout(ports: &PortSpec, max_probes: u64) -> (u128, Vec<PortSpec>) {
    let max_probes = max_probes.max(1);
    let nports = u64::from(ports.len());
    if nports > max_probes {
        (1, ports.chunks(max_probes as u32))
    } else {
        (u128::from(max_probes / nports), vec![ports.clone()])
    }
}

/// Consecutive blocks of `size` addresses, spanning range boundaries.
fn host_blocks(targets: &TargetSet, size: u128) -> impl Iterator<Item = Vec<AddrRange>> + '_ {
    let mut ranges = targets.ranges().iter().copied();
    let mut pending: Option<AddrRange> = None;
    std::iter::from_fn(move || {
        let mut block = Vec::new();
        let mut room = size;
        while room > 0 {
            let Some(r) = pending.take().or_else(|| ranges.next()) else { break };
            let (head, rest) = r.split_at(room);
            room -= head.len();
            block.push(head);
            pending = rest;
        }
        (!block.is_empty()).then_some(block)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;

    fn covered(shards: &[Shard]) -> Vec<(IpAddr, u16)> {
        shards
            .iter()
            .flat_map(|s| {
                s.targets
                    .iter()
                    .flat_map(|r| r.iter().collect::<Vec<_>>())
                    .flat_map(|a| s.ports.iter().map(move |p| (a, p)))
            })
            .collect()
    }

    #[test]
    fn one_host_all_ports_is_split_by_port() {
        let t = TargetSet::parse("127.0.0.1").unwrap();
        let p = PortSpec::parse("all").unwrap();
        let shards: Vec<_> = plan(&t, &p, 16_384).collect();
        assert_eq!(shards.len(), 4);
        assert_eq!(shard_count(&t, &p, 16_384), 4);
        assert_eq!(shards.iter().map(Shard::probes).sum::<u128>(), 65_535);
    }

    #[test]
    fn many_hosts_are_split_by_host() {
        let t = TargetSet::parse("198.18.0.0/24").unwrap();
        let p = PortSpec::parse("1-1000").unwrap();
        let shards: Vec<_> = plan(&t, &p, 16_384).collect();
        assert!(shards.iter().all(|s| s.ports == p && s.addresses() == 16 || s.addresses() < 16));
        assert_eq!(shards.len(), 16);
    }

    #[test]
    fn blocks_span_range_boundaries() {
        let t = TargetSet::parse("198.18.0.1-3 198.18.0.10-12").unwrap();
        let p = PortSpec::parse("80").unwrap();
        let shards: Vec<_> = plan(&t, &p, 4).collect();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].targets.len(), 2);
        assert_eq!(shards[0].addresses(), 4);
    }

    fn arb_targets() -> impl Strategy<Value = TargetSet> {
        proptest::collection::vec((0u32..2000, 0u32..40), 1..6).prop_map(|v| {
            let ranges = v
                .into_iter()
                .map(|(start, len)| {
                    let base = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0));
                    AddrRange::new(
                        IpAddr::from((base + start).to_be_bytes()),
                        IpAddr::from((base + start + len).to_be_bytes()),
                    )
                    .unwrap()
                })
                .collect();
            TargetSet::from_ranges(ranges)
        })
    }

    fn arb_ports() -> impl Strategy<Value = PortSpec> {
        proptest::collection::vec((1u16..60000, 0u16..300), 1..5).prop_map(|v| {
            PortSpec::from_ranges(
                v.into_iter().map(|(f, n)| crate::ports::PortRange { first: f, last: f + n }).collect(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_probe_lands_in_exactly_one_shard(t in arb_targets(), p in arb_ports(), max in 1u64..5000) {
            let shards: Vec<_> = plan(&t, &p, max).collect();
            prop_assert_eq!(shards.len() as u128, shard_count(&t, &p, max));
            prop_assert!(shards.iter().all(|s| s.probes() <= u128::from(max) || s.probes() == u128::from(s.ports.len()) && s.addresses() == 1));
            let probes = covered(&shards);
            let unique: HashSet<_> = probes.iter().copied().collect();
            prop_assert_eq!(unique.len(), probes.len(), "a probe appears twice");
            let expected: HashSet<_> = t.iter().flat_map(|a| p.iter().map(move |port| (a, port))).collect();
            prop_assert_eq!(unique, expected);
        }
    }

    #[test]
    fn shards_sized_from_a_rate_take_about_thirty_seconds() {
        assert_eq!(sized_for(1_000.0), 30_000);
        assert_eq!(sized_for(10.0), MIN_SIZED_PROBES, "a slow agent still gets a useful shard");
        assert_eq!(sized_for(1e9), MAX_SIZED_PROBES);
        assert_eq!(sized_for(f64::NAN), DEFAULT_SHARD_PROBES);
        assert_eq!(sized_for(-5.0), MIN_SIZED_PROBES);
    }
}
