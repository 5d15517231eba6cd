//! Reachability: one scan's open ports, with the state from every region
//! that scanned them, and which of them are exposed inconsistently (open
//! from one region, scanned and not open from another: a geo-fenced
//! firewall, a partial rollout, a CDN that answers differently).
//!
//! Rows come from the baseline's own merge across regions
//! ([`baseline::entries_of`]), so "open from a region" means here what it
//! means in baselines and diffs. What a region did *not* report needs the
//! shard records: agents send open ports and answers-all hosts only, so a
//! port missing from a region's observations is "not open" only where a
//! finished shard of that region covered it with every probe sent, and
//! "not scanned" otherwise (the region was not asked, its shard is still
//! running, or the agent refused or could not route some probes).
//!
//! [`baseline::entries_of`]: super::baseline::entries_of

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use vantage_shared::{BaselineEntry, PortSpec, PortState, Proto, TargetSet};

use crate::store::{ScanRecord, ShardRecord, ShardState};

/// What one region saw at one (address, protocol, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionState {
    Open,
    /// The host answered on (nearly) every port from this region.
    AnswersAll,
    /// Scanned from this region and not open: closed or filtered.
    NotOpen,
    /// Not scanned from this region, or not every probe of its shard went out.
    NotScanned,
}

impl RegionState {
    pub fn is_exposed(self) -> bool {
        matches!(self, RegionState::Open | RegionState::AnswersAll)
    }
}

impl fmt::Display for RegionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionState::Open => "open",
            RegionState::AnswersAll => "answers-all",
            RegionState::NotOpen => "not-open",
            RegionState::NotScanned => "not-scanned",
        })
    }
}

/// One (address, protocol, port) some region saw open; port 0 is a host
/// that answers on every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub addr: IpAddr,
    pub proto: Proto,
    pub port: u16,
    /// One per region of the [`Coverage`], in its order.
    pub states: Vec<RegionState>,
}

impl Row {
    /// Exposed from one region, scanned and not open from another.
    pub fn is_inconsistent(&self) -> bool {
        self.states.iter().any(|s| s.is_exposed()) && self.states.contains(&RegionState::NotOpen)
    }

    /// Some region did not scan it.
    pub fn is_incomplete(&self) -> bool {
        self.states.contains(&RegionState::NotScanned)
    }
}

/// What a region's finished shards covered: blocks of addresses per port
/// set (a scan has few port sets, so a lookup is a few binary searches).
#[derive(Debug, Default, Clone)]
struct RegionBlocks {
    /// (ports, every probe sent?) → the addresses of such shards.
    blocks: BTreeMap<(String, bool), (PortSpec, TargetSet)>,
    shards_done: u64,
    shards_partial: u64,
}

/// Where a port stands for one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Covered {
    Fully,
    Partly,
    No,
}

impl RegionBlocks {
    fn add(&mut self, shard: &ShardRecord, complete: bool) -> Result<(), String> {
        let bad = |what: &str, e: &dyn fmt::Display| format!("shard {} {what}: {e}", shard.shard_id);
        let ports = PortSpec::parse(&shard.ports).map_err(|e| bad("ports", &e))?;
        let targets = TargetSet::parse(&shard.targets).map_err(|e| bad("targets", &e))?;
        let slot = self.blocks.entry((ports.to_string(), complete)).or_insert_with(|| (ports, TargetSet::default()));
        slot.1 = TargetSet::from_ranges([slot.1.ranges(), targets.ranges()].concat());
        self.shards_done += 1;
        self.shards_partial += u64::from(!complete);
        Ok(())
    }

    /// Port 0 (a whole host) is covered by any shard of the host.
    fn covers(&self, addr: IpAddr, port: u16) -> Covered {
        let hit = |complete: bool| {
            self.blocks.iter().any(|((_, c), (ports, targets))| {
                *c == complete && (port == 0 || ports.contains(port)) && targets.contains(addr)
            })
        };
        if hit(true) {
            Covered::Fully
        } else if hit(false) {
            Covered::Partly
        } else {
            Covered::No
        }
    }
}

/// The regions of one scan and what each of them scanned.
#[derive(Debug, Default, Clone)]
pub struct Coverage {
    regions: Vec<String>,
    blocks: Vec<RegionBlocks>,
}

/// One region's share of a scan, for the header of a matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionSummary {
    pub region: String,
    pub shards_done: u64,
    /// Finished shards that skipped probes (refused or unroutable).
    pub shards_partial: u64,
}

impl Coverage {
    /// The regions a scan was asked to run from, and those of every agent
    /// that leased or finished a shard of it (a scan without regions runs
    /// wherever agents are), with what each region's finished shards covered.
    pub fn of(scan: &ScanRecord, shards: &[ShardRecord]) -> Result<Coverage, String> {
        let mut by_region: BTreeMap<String, RegionBlocks> =
            scan.regions.iter().map(|r| (r.clone(), RegionBlocks::default())).collect();
        for shard in shards {
            match &shard.state {
                ShardState::Done { stats, .. } => {
                    let region = shard.done_region().unwrap_or_default().to_string();
                    let complete = stats.refused == 0 && stats.unreachable == 0;
                    by_region.entry(region).or_default().add(shard, complete)?;
                }
                ShardState::Leased { region, .. } if !region.is_empty() => {
                    by_region.entry(region.clone()).or_default();
                }
                _ => {}
            }
        }
        let (regions, blocks) = by_region.into_iter().unzip();
        Ok(Coverage { regions, blocks })
    }

    /// The matrix's columns, sorted.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    pub fn summaries(&self) -> Vec<RegionSummary> {
        self.regions
            .iter()
            .zip(&self.blocks)
            .map(|(r, b)| RegionSummary {
                region: r.clone(),
                shards_done: b.shards_done,
                shards_partial: b.shards_partial,
            })
            .collect()
    }

    /// A region's state at a port it did not report open, knowing whether
    /// it reported the host as answering on every port.
    fn unreported(&self, region: usize, addr: IpAddr, port: u16, answers_all: bool) -> RegionState {
        match self.blocks[region].covers(addr, port) {
            Covered::Fully | Covered::Partly if answers_all && port != 0 => RegionState::AnswersAll,
            Covered::Fully => RegionState::NotOpen,
            Covered::Partly | Covered::No => RegionState::NotScanned,
        }
    }
}

/// The rows of a scan's entries (from [`super::baseline::entries_of`], in
/// key order) against its coverage; errors of the entries end the matrix.
pub fn matrix<E, I>(entries: I, coverage: &Coverage) -> Matrix<'_, I>
where
    I: Iterator<Item = Result<BaselineEntry, E>>,
{
    Matrix { entries, coverage, host: None, failed: false }
}

pub struct Matrix<'a, I> {
    entries: I,
    coverage: &'a Coverage,
    /// The (address, protocol) of the latest answers-all entry, and its
    /// regions. Port 0 sorts first, so it comes before the host's ports.
    host: Option<(IpAddr, Proto, Vec<String>)>,
    failed: bool,
}

impl<E, I> Iterator for Matrix<'_, I>
where
    I: Iterator<Item = Result<BaselineEntry, E>>,
{
    type Item = Result<Row, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let entry = match self.entries.next()? {
            Ok(e) => e,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        if entry.state == PortState::AnswersAll {
            self.host = Some((entry.addr, entry.proto, entry.open_in.clone()));
        }
        Some(Ok(self.row(&entry)))
    }
}

impl<I> Matrix<'_, I> {
    fn row(&self, e: &BaselineEntry) -> Row {
        let answering = match &self.host {
            Some((addr, proto, regions)) if *addr == e.addr && *proto == e.proto => regions.as_slice(),
            _ => &[],
        };
        let states = self
            .coverage
            .regions
            .iter()
            .enumerate()
            .map(|(i, region)| {
                if e.open_in.contains(region) {
                    if e.state == PortState::AnswersAll { RegionState::AnswersAll } else { RegionState::Open }
                } else {
                    self.coverage.unreported(i, e.addr, e.port, answering.contains(region))
                }
            })
            .collect();
        Row { addr: e.addr, proto: e.proto, port: e.port, states }
    }
}

#[cfg(test)]
mod tests;
