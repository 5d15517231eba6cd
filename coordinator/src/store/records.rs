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
    Leased { agent: String },
    Done { agent: String, stats: ShardStats },
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
}

impl ShardRecord {
    pub fn is_done(&self) -> bool {
        matches!(self.state, ShardState::Done { .. })
    }
}
