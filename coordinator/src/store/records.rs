//! What the coordinator keeps about scans and shards, as stored values.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use vantage_shared::{Period, ProbeOptions, ScanMode};

/// One scan as planned, and when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub id: u64,
    pub label: String,
    /// The resolved target set (after exclusions), in target syntax.
    pub targets: String,
    pub ports: String,
    /// The coordinator's scope when the scan was planned, in scope-file syntax.
    pub scope: String,
    pub options: ProbeOptions,
    pub created_at: SystemTime,
    pub finished_at: Option<SystemTime>,
    pub shards_total: u64,
    pub probes_total: u64,
    /// The review period; scans stored before periods existed take the
    /// month they were created in (see [`ScanRecord::period`]).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "period")]
    pub review_period: Option<Period>,
    /// A re-probe confirming a diff's candidates; never part of a baseline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verification: bool,
    /// The regions every shard runs from, sorted; empty: once, from any agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
}

impl ScanRecord {
    /// The review period the scan belongs to.
    pub fn period(&self) -> Period {
        self.review_period.unwrap_or_else(|| Period::of(self.created_at))
    }

    /// Baselines keep one scan per family: TCP (connect, SYN) and UDP.
    pub fn is_udp(&self) -> bool {
        self.options.mode == ScanMode::Udp
    }
}

/// One revision of a period's baseline. Rebuilding a period (a newer scan
/// finished) adds a revision; earlier ones stay, as history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineRecord {
    pub period: Period,
    pub revision: u32,
    /// The scans merged into it, ascending.
    pub scans: Vec<u64>,
    /// Regions whose observations it holds, sorted.
    pub regions: Vec<String>,
    pub entries: u64,
    pub built_at: SystemTime,
}

/// Where a shard is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ShardState {
    Pending,
    /// `region` is the agent's (empty in records from before regions).
    Leased {
        agent: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        region: String,
    },
    /// `region` is where the shard was scanned from: the agent's.
    Done {
        agent: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        region: String,
        stats: ShardStats,
    },
}

/// Counters an agent reported for a finished shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStats {
    pub probes: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub refused: u64,
    /// Hosts reported once as answering on (nearly) every port.
    #[serde(default)]
    pub answers_all: u64,
    #[serde(default)]
    pub packets: u64,
    /// Probes that found no route to their target.
    #[serde(default)]
    pub unreachable: u64,
    pub elapsed_ms: u64,
}

impl ShardStats {
    /// Adds another shard's counters to these.
    pub fn add(&mut self, other: &ShardStats) {
        self.probes += other.probes;
        self.open += other.open;
        self.closed += other.closed;
        self.filtered += other.filtered;
        self.refused += other.refused;
        self.answers_all += other.answers_all;
        self.packets += other.packets;
        self.unreachable += other.unreachable;
        self.elapsed_ms += other.elapsed_ms;
    }
}

/// One shard of one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub scan_id: u64,
    pub shard_id: u64,
    /// Addresses, in target syntax.
    pub targets: String,
    pub ports: String,
    pub probes: u64,
    /// The epoch of the newest lease; grows with every lease and restart.
    pub epoch: u64,
    pub state: ShardState,
    /// Only an agent of this region may run the shard; empty: any agent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
}

impl ShardRecord {
    pub fn is_done(&self) -> bool {
        matches!(self.state, ShardState::Done { .. })
    }

    /// The region a finished shard was scanned from. Records from before
    /// regions were kept name only the agent, `<region>/<name>`.
    pub fn done_region(&self) -> Option<&str> {
        match &self.state {
            ShardState::Done { region, .. } if !region.is_empty() => Some(region),
            ShardState::Done { agent, .. } => Some(agent.split_once('/').map_or(agent.as_str(), |(r, _)| r)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_stored_before_regions_still_read() {
        let old = r#"{"scan_id":1,"shard_id":0,"targets":"127.0.0.1","ports":"80","probes":1,"epoch":2,
            "state":{"state":"done","agent":"eu-west/a1","stats":{"probes":1,"open":0,"closed":1,"filtered":0,
            "refused":0,"elapsed_ms":3}}}"#;
        let shard: ShardRecord = serde_json::from_str(old).unwrap();
        assert_eq!(shard.region, "");
        assert_eq!(shard.done_region(), Some("eu-west"));
    }

    #[test]
    fn a_finished_shard_names_its_region() {
        let shard = ShardRecord {
            scan_id: 1,
            shard_id: 0,
            targets: "127.0.0.1".into(),
            ports: "80".into(),
            probes: 1,
            epoch: 1,
            state: ShardState::Done { agent: "x/y/z".into(), region: "x/y".into(), stats: ShardStats::default() },
            region: "x/y".into(),
        };
        assert_eq!(shard.done_region(), Some("x/y"));
        let back: ShardRecord = serde_json::from_slice(&serde_json::to_vec(&shard).unwrap()).unwrap();
        assert_eq!(back, shard);
    }
}
