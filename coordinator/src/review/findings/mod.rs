//! Findings: what a review asks people to act on, tracked month after month.
//!
//! A finding is about one open port and one kind of problem; its identity
//! (address, protocol, port, kind) is stable across months, so the same
//! exposure found again is the same finding, not a new one. Each has a
//! severity and a deadline from the [policy](super::policy), an owner from
//! the [register](super::register), a status, a history, and a sentence a
//! manager can act on.
//!
//! * [`evaluate`]: the candidate findings of one baseline, judged against the
//!   register, the inventory and the vulnerability data.
//! * [`reconcile`]: last month's findings and this month's candidates into
//!   this month's findings: new, still open, remediated (only when the
//!   period's scans covered the port and it was no longer there), repeated.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use vantage_shared::{Period, Proto};

pub mod evaluate;
pub mod reconcile;

#[cfg(test)]
mod tests;

pub use evaluate::{Candidate, Knowledge, evaluate};
pub use reconcile::{Coverage, Outcome, PortRef, reconcile};

/// How urgent a finding is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with an open port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A database, remote-access or management service, undocumented.
    ExposedService,
    /// A version with a CVE in CISA's Known Exploited Vulnerabilities.
    KnownExploited,
    /// A version with a known CVE.
    VulnerableVersion,
    /// Any other undocumented service.
    Undocumented,
    /// Documented, but what answers differs (service, product, version, TLS).
    NotAsDocumented,
    /// Documented by an entry whose review-by date has passed.
    ReviewOverdue,
    /// The asset inventory records another version than the scan saw.
    InventoryMismatch,
    /// Documented and as documented: listed so it stays intentional.
    Documented,
    /// The host answers on (nearly) every port: a SYN proxy, tarpit or CDN
    /// edge, behind which the scan cannot tell real services apart.
    AnswersAll,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::ExposedService,
        Kind::KnownExploited,
        Kind::VulnerableVersion,
        Kind::Undocumented,
        Kind::NotAsDocumented,
        Kind::ReviewOverdue,
        Kind::InventoryMismatch,
        Kind::Documented,
        Kind::AnswersAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ExposedService => "exposed-service",
            Kind::KnownExploited => "known-exploited",
            Kind::VulnerableVersion => "vulnerable-version",
            Kind::Undocumented => "undocumented",
            Kind::NotAsDocumented => "not-as-documented",
            Kind::ReviewOverdue => "review-overdue",
            Kind::InventoryMismatch => "inventory-mismatch",
            Kind::Documented => "documented",
            Kind::AnswersAll => "answers-all",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// The default policy's severity.
    pub fn default_severity(self) -> Severity {
        match self {
            Kind::ExposedService | Kind::KnownExploited => Severity::Critical,
            Kind::VulnerableVersion => Severity::High,
            Kind::Undocumented
            | Kind::NotAsDocumented
            | Kind::ReviewOverdue
            | Kind::InventoryMismatch
            | Kind::AnswersAll => Severity::Medium,
            Kind::Documented => Severity::Low,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finding's identity across months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FindingKey {
    pub addr: IpAddr,
    pub proto: Proto,
    pub port: u16,
    pub kind: Kind,
}

impl fmt::Display for FindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.addr {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        write!(f, "{host}:{}/{} {}", self.port, self.proto, self.kind)
    }
}

/// Where a finding stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    Open,
    /// Its owner knows and is on it.
    Acknowledged {
        by: String,
        at: SystemTime,
    },
    /// A decision to live with it, for a reason, until a date.
    AcceptedRisk {
        by: String,
        reason: String,
        until: SystemTime,
    },
    /// A later review no longer saw it, on a port its scans covered.
    Remediated {
        at: SystemTime,
        period: Period,
    },
    /// Remediated once, and back.
    Reopened,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged { .. } => "acknowledged",
            Status::AcceptedRisk { .. } => "accepted-risk",
            Status::Remediated { .. } => "remediated",
            Status::Reopened => "reopened",
        }
    }

    /// Whether someone still has to act (everything but remediated and
    /// risk accepted until a date not yet reached).
    pub fn is_active(&self, now: SystemTime) -> bool {
        match self {
            Status::Remediated { .. } => false,
            Status::AcceptedRisk { until, .. } => now >= *until,
            _ => true,
        }
    }
}

/// One line of a finding's history: `what` is the sentence for people,
/// `kind` what code that reads histories (report metrics) goes by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: SystemTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Stores of schema 2 and earlier have none; opening one fills it in.
    #[serde(default)]
    pub kind: EventKind,
    pub what: String,
}

impl Event {
    pub fn new(kind: EventKind, at: SystemTime, period: Option<Period>, what: impl Into<String>) -> Event {
        Event { at, period, kind, what: what.into() }
    }
}

/// What a history event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// First seen: opens the first round.
    Found,
    /// Seen again after a remediation: opens a repeat round.
    Reopened,
    /// Verified closed (port closed, or no longer what the finding says): ends a round.
    Remediated,
    SeverityChanged,
    Acknowledged,
    RiskAccepted,
    /// A risk acceptance ran out while the exposure was still there.
    RiskEnded,
    /// Anything else worth a line (a re-check that changed nothing, ...).
    #[default]
    Note,
}

impl EventKind {
    /// Whether it starts a round of being open.
    pub fn opens(self) -> bool {
        matches!(self, EventKind::Found | EventKind::Reopened)
    }
}

/// A finding as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `F-<n>`: short, never reused, for people to type.
    pub id: String,
    pub key: FindingKey,
    pub severity: Severity,
    #[serde(flatten)]
    pub status: Status,
    /// From the register entry that documents the port, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// When this exposure was first seen (its first period's baseline).
    pub first_seen: SystemTime,
    /// When the current round began: first seen, or seen again after a remediation.
    pub opened_at: SystemTime,
    pub last_seen: SystemTime,
    pub last_period: Period,
    /// `opened_at` plus the policy's time for the severity.
    pub deadline: SystemTime,
    /// Times it came back after being remediated.
    pub repeats: u32,
    /// One sentence for the people who decide.
    pub sentence: String,
    /// The technical detail behind it: service, product, version, CPE, CVEs, differences.
    pub detail: Detail,
    pub history: Vec<Event>,
}

impl Finding {
    pub fn overdue(&self, now: SystemTime) -> bool {
        self.status.is_active(now) && now > self.deadline
    }

    /// From first seen to verified closed, for a remediated finding's last round.
    pub fn time_to_remediate(&self) -> Option<Duration> {
        match self.status {
            Status::Remediated { at, .. } => at.duration_since(self.opened_at).ok(),
            _ => None,
        }
    }
}

/// The facts a finding rests on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Detail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpe: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// CVE ids, known-exploited ones first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// Regions the port was open from, and how many regions scanned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(default)]
    pub regions_scanned: usize,
    /// Why: the register's differences, the inventory's line, the overdue entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The register entry that documents the port (`register.toml` entry number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_entry: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// A duration in whole hours for deadlines ("24 hours", "168 hours (7 days)").
pub fn hours_text(d: Duration) -> String {
    let hours = d.as_secs().div_ceil(3600);
    match hours {
        1 => "1 hour".into(),
        h if h >= 48 && h % 24 == 0 => format!("{h} hours ({} days)", h / 24),
        h => format!("{h} hours"),
    }
}
