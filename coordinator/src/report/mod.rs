//! The monthly report: what a review period means for the people who decide
//! and the people who fix, built from what the coordinator already knows
//! (findings, the diff against the previous reviewed period, baselines).
//! Reports never scan: every number here is computed from those inputs.
//!
//! [`build`] is pure and deterministic (invariant 6): the same [`Inputs`]
//! give the same [`Report`], and each renderer the same bytes. "Now" is an
//! input too ([`Inputs::as_of`]), so a report of a past period is stable.
//! Statuses are the findings' current ones; which findings were open in a
//! past month comes from their history (see [`metrics::rounds`]).
//!
//! * [`metrics`]: rounds of a finding, and the 12-month trend series.
//! * [`charts`]: the trend series as inline SVG (plotters).
//! * [`html`], [`markdown`], [`machine`] (JSON, CSV): the renderers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use vantage_shared::service::TlsFacts;
use vantage_shared::{Period, Proto};

use crate::notify::Notes;
use crate::review::diff::{Change, ChangeKind};
use crate::review::findings::{EventKind, Finding, Severity, Status};
use crate::review::policy::Costs;

pub mod charts;
pub mod html;
pub mod machine;
pub mod markdown;
pub mod metrics;

#[cfg(test)]
mod tests;

pub use metrics::{Metric, Series};

/// One period's baseline, as the report needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineFacts {
    pub period: Period,
    /// Open ports (and answers-all hosts) in the period's baseline.
    pub open_ports: u64,
}

/// A port, as TLS facts are looked up.
pub type TlsKey = (IpAddr, Proto, u16);

/// A change of the diff, and whether a re-probe confirmed it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffChange {
    pub change: Change,
    pub confirmed: bool,
}

/// Everything a report is built from.
pub struct Inputs<'a> {
    pub period: Period,
    /// The time statuses and deadlines are judged at (overdue, age).
    pub as_of: SystemTime,
    /// Every finding, in any order.
    pub findings: &'a [Finding],
    /// The current baseline of every period, in any order.
    pub baselines: &'a [BaselineFacts],
    /// The newest reviewed period before `period`, and the diff from it.
    pub previous: Option<Period>,
    pub changes: &'a [DiffChange],
    /// TLS facts of the period's open ports (from its scans), where any.
    pub tls: &'a BTreeMap<TlsKey, TlsFacts>,
    /// The user's cost figures (the policy's `[costs]`), when configured.
    pub costs: Option<&'a Costs>,
    /// Tickets and escalations by finding id, where integrations recorded any.
    pub notes: &'a BTreeMap<String, Notes>,
}

/// The report: every section, in the order it is read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub period: Period,
    pub as_of: String,
    pub previous: Option<Period>,
    pub summary: Summary,
    pub changes: Changes,
    /// Open at the period's end, worst first.
    pub findings: Vec<FindingRow>,
    /// Every finding first seen before the period.
    pub tracking: Vec<TrackingRow>,
    pub metrics: Vec<Metric>,
    pub cost: CostAvoided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// First seen this period.
    pub new: u64,
    /// Verified closed this period.
    pub remediated: u64,
    /// Open at the period's end (new ones included).
    pub open: u64,
    /// Open and past their deadline at `as_of`.
    pub overdue: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeverityCounts {
    pub severity: Severity,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Critical first.
    pub by_severity: Vec<SeverityCounts>,
    pub total: Counts,
    pub trend: Trend,
}

/// Open findings now against a few months ago, in one sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// falling, rising, steady, or none (nothing earlier to compare with).
    pub direction: &'static str,
    pub open_now: u64,
    pub compared_with: Option<Period>,
    pub open_then: Option<u64>,
    pub sentence: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changes {
    pub from: Option<Period>,
    /// Changes per kind (`new`, `closed`, ...).
    pub counts: BTreeMap<String, u64>,
    /// Newly exposed management interfaces and databases.
    pub exposed: u64,
    /// Those first, then new ports, closures, and the other changes.
    pub rows: Vec<ChangeRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRow {
    pub kind: ChangeKind,
    pub target: String,
    pub before: String,
    pub after: String,
    pub confirmed: bool,
    /// The port's service category, where a finding names it.
    pub category: Option<String>,
    /// A newly exposed management interface or database.
    pub exposed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRow {
    pub id: String,
    pub severity: Severity,
    pub status: &'static str,
    pub kind: String,
    pub target: String,
    pub sentence: String,
    pub owner: Option<String>,
    pub deadline: String,
    pub overdue: bool,
    /// Regions it was open from, of `regions_scanned`.
    pub regions: Vec<String>,
    pub regions_scanned: usize,
    pub repeats: u32,
    pub first_period: Period,
    /// Who was told and when: the escalation, the tickets, the first acknowledgement.
    pub follow_up: FollowUp,
    pub detail: TechDetail,
}

/// What happened after a finding was raised.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct FollowUp {
    /// `<time> to <channels>`, when escalated.
    pub escalated: Option<String>,
    /// `<integration> <key>` per ticket.
    pub tickets: Vec<String>,
    /// `<time> by <who>`, the first acknowledgement.
    pub acknowledged: Option<String>,
    /// All of it in one line for people, when anything happened.
    pub summary: Option<String>,
}

impl FollowUp {
    fn of(f: &Finding, notes: Option<&Notes>) -> FollowUp {
        let escalated = notes.and_then(|n| n.escalation.as_ref()).map(|e| {
            let channels: Vec<&str> = e.channels.keys().map(String::as_str).collect();
            format!("{} to {}", rfc3339(e.at), channels.join(", "))
        });
        let tickets: Vec<String> = notes
            .map(|n| {
                n.tickets
                    .iter()
                    .map(|t| format!("{} {}", t.integration, t.key.as_deref().unwrap_or("(pending)")))
                    .collect()
            })
            .unwrap_or_default();
        let acknowledged = f.history.iter().find(|e| e.kind == EventKind::Acknowledged).map(|e| {
            let who = e.what.strip_prefix("acknowledged by ").unwrap_or(&e.what);
            format!("{} by {who}", rfc3339(e.at))
        });
        let mut parts = Vec::new();
        if let Some(e) = &escalated {
            parts.push(format!("escalated {e}"));
        }
        if !tickets.is_empty() {
            parts.push(format!("ticket {}", tickets.join(", ")));
        }
        if let Some(a) = &acknowledged {
            parts.push(format!("acknowledged {a}"));
        }
        let summary = (!parts.is_empty()).then(|| parts.join("; "));
        FollowUp { escalated, tickets, acknowledged, summary }
    }
}

/// The technical detail, folded below the sentence.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TechDetail {
    pub service: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub category: Option<String>,
    pub cpe: Vec<String>,
    pub cves: Vec<String>,
    pub reasons: Vec<String>,
    pub tls: Option<TlsLine>,
}

/// The TLS facts a reader needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsLine {
    pub version: String,
    pub cipher: String,
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub self_signed: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackingRow {
    pub id: String,
    pub severity: Severity,
    pub target: String,
    pub status: &'static str,
    pub first_period: Period,
    pub remediated_in: Option<Period>,
    /// Days from first seen to remediation, or to `as_of` while open.
    pub age_days: u64,
    pub repeats: u32,
}

/// The cost avoided by exposures closed before an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostAvoided {
    pub configured: bool,
    pub currency: Option<String>,
    /// The figure per severity the user configured.
    pub per_severity: BTreeMap<Severity, u64>,
    pub period_total: u64,
    pub twelve_months_total: u64,
    /// What the figure assumes, or how to configure it.
    pub note: String,
}

/// How many months the trend charts cover.
pub const MONTHS: usize = 12;

pub fn build(inputs: &Inputs<'_>) -> Report {
    let p = inputs.period;
    let rounds: Vec<Vec<metrics::Round>> = inputs.findings.iter().map(metrics::rounds).collect();
    let open_at =
        |q: Period| -> Vec<usize> { (0..rounds.len()).filter(|&i| metrics::open_at(&rounds[i], q)).collect() };
    let open_now = open_at(p);
    let summary = summary(inputs, &rounds, &open_now, &open_at);
    let mut findings: Vec<&Finding> = open_now.iter().map(|&i| &inputs.findings[i]).collect();
    findings.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.deadline, f.key));
    let window = metrics::window(p, MONTHS);
    let (metrics, cost) = metrics::all(inputs, &rounds, &window);
    Report {
        period: p,
        as_of: rfc3339(inputs.as_of),
        previous: inputs.previous,
        summary,
        changes: changes(inputs),
        findings: findings.iter().map(|f| finding_row(f, inputs)).collect(),
        tracking: tracking(inputs, &rounds),
        metrics,
        cost,
    }
}

fn summary(
    inputs: &Inputs<'_>,
    rounds: &[Vec<metrics::Round>],
    open_now: &[usize],
    open_at: &dyn Fn(Period) -> Vec<usize>,
) -> Summary {
    let p = inputs.period;
    let mut by: BTreeMap<Severity, Counts> = Severity::ALL.iter().map(|s| (*s, Counts::default())).collect();
    for (f, rs) in inputs.findings.iter().zip(rounds) {
        let c = by.entry(f.severity).or_default();
        c.new += u64::from(rs.first().is_some_and(|r| r.start == p));
        c.remediated += rs.iter().filter(|r| r.end.is_some_and(|(e, _)| e == p)).count() as u64;
    }
    for &i in open_now {
        let f = &inputs.findings[i];
        let c = by.entry(f.severity).or_default();
        c.open += 1;
        c.overdue += u64::from(f.overdue(inputs.as_of));
    }
    let mut total = Counts::default();
    for c in by.values() {
        total.new += c.new;
        total.remediated += c.remediated;
        total.open += c.open;
        total.overdue += c.overdue;
    }
    let reviewed: BTreeSet<Period> = inputs.baselines.iter().map(|b| b.period).collect();
    let trend = trend(p, open_now.len() as u64, &reviewed, |q| open_at(q).len() as u64);
    let by_severity = Severity::ALL.iter().map(|s| SeverityCounts { severity: *s, counts: by[s] }).collect();
    Summary { by_severity, total, trend }
}

/// Compares with the earliest reviewed period of the three before `p`.
pub fn trend(p: Period, now: u64, reviewed: &BTreeSet<Period>, open_at: impl Fn(Period) -> u64) -> Trend {
    let mut back = Vec::new();
    let mut q = p;
    for _ in 0..3 {
        q = q.previous();
        back.push(q);
    }
    let Some((months, then)) = back.iter().enumerate().rev().find(|(_, q)| reviewed.contains(q)) else {
        return Trend {
            direction: "none",
            open_now: now,
            compared_with: None,
            open_then: None,
            sentence: format!(
                "{} at the end of {p}; no reviewed period in the three months before to compare with yet.",
                findings_word(now)
            ),
        };
    };
    let open_then = open_at(*then);
    let ago = ["last month", "two months ago", "three months ago"][months];
    let (direction, lead) = match now.cmp(&open_then) {
        std::cmp::Ordering::Less => ("falling", "Exposure is falling"),
        std::cmp::Ordering::Greater => ("rising", "Exposure is rising"),
        std::cmp::Ordering::Equal => ("steady", "Exposure is steady"),
    };
    Trend {
        direction,
        open_now: now,
        compared_with: Some(*then),
        open_then: Some(open_then),
        sentence: format!("{lead}: {} against {open_then} {ago} ({then}).", findings_word(now)),
    }
}

fn findings_word(n: u64) -> String {
    if n == 1 { "1 open finding".into() } else { format!("{n} open findings") }
}

/// Management interfaces and databases are what the diff names first.
fn is_exposure_category(c: Option<&str>) -> bool {
    matches!(c, Some("management" | "database"))
}

fn changes(inputs: &Inputs<'_>) -> Changes {
    let mut category: BTreeMap<(IpAddr, Proto, u16), &str> = BTreeMap::new();
    for f in inputs.findings {
        if let Some(c) = f.detail.category.as_deref() {
            category.entry((f.key.addr, f.key.proto, f.key.port)).or_insert(c);
        }
    }
    let mut counts = BTreeMap::new();
    let mut rows: Vec<ChangeRow> = inputs
        .changes
        .iter()
        .map(|d| {
            let c = &d.change;
            *counts.entry(c.kind.to_string()).or_insert(0) += 1;
            let cat = category.get(&(c.addr, c.proto, c.port)).map(|s| s.to_string());
            let exposed = c.kind == ChangeKind::New && is_exposure_category(cat.as_deref());
            ChangeRow {
                kind: c.kind,
                target: target(c.addr, c.proto, c.port),
                before: c.before.clone(),
                after: c.after.clone(),
                confirmed: d.confirmed,
                category: cat,
                exposed,
            }
        })
        .collect();
    let rank = |r: &ChangeRow| match (r.exposed, r.kind) {
        (true, _) => 0,
        (_, ChangeKind::New) => 1,
        (_, ChangeKind::Closed) => 2,
        _ => 3,
    };
    // Stable: within a rank, the diff's own (key) order.
    rows.sort_by_key(rank);
    Changes { from: inputs.previous, counts, exposed: rows.iter().filter(|r| r.exposed).count() as u64, rows }
}

/// `host:port/proto`, with IPv6 hosts bracketed and port 0 (a whole host) as `*`.
pub fn target(addr: IpAddr, proto: Proto, port: u16) -> String {
    let host = match addr {
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let port = if port == 0 { "*".to_string() } else { port.to_string() };
    format!("{host}:{port}/{proto}")
}

fn finding_row(f: &Finding, inputs: &Inputs<'_>) -> FindingRow {
    let d = &f.detail;
    let tls = inputs.tls.get(&(f.key.addr, f.key.proto, f.key.port)).map(|t| TlsLine {
        version: t.version.clone(),
        cipher: t.cipher.clone(),
        subject: t.subject.clone(),
        issuer: t.issuer.clone(),
        not_after: u64::try_from(t.not_after)
            .map(|s| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s)))
            .unwrap_or_default(),
        self_signed: t.self_signed,
        error: t.error.clone(),
    });
    FindingRow {
        id: f.id.clone(),
        severity: f.severity,
        status: f.status.name(),
        kind: f.key.kind.to_string(),
        target: target(f.key.addr, f.key.proto, f.key.port),
        sentence: f.sentence.clone(),
        owner: f.owner.clone(),
        deadline: rfc3339(f.deadline),
        overdue: f.overdue(inputs.as_of),
        regions: d.regions.clone(),
        regions_scanned: d.regions_scanned,
        repeats: f.repeats,
        first_period: metrics::first_period(f),
        follow_up: FollowUp::of(f, inputs.notes.get(&f.id)),
        detail: TechDetail {
            service: d.service.clone(),
            product: d.product.clone(),
            version: d.version.clone(),
            category: d.category.clone(),
            cpe: d.cpe.clone(),
            cves: d.cves.clone(),
            reasons: d.reasons.clone(),
            tls,
        },
    }
}

fn tracking(inputs: &Inputs<'_>, rounds: &[Vec<metrics::Round>]) -> Vec<TrackingRow> {
    let mut rows: Vec<(&Finding, TrackingRow)> = inputs
        .findings
        .iter()
        .zip(rounds)
        .filter(|(_, rs)| rs.first().is_some_and(|r| r.start < inputs.period))
        .map(|(f, _)| {
            let (remediated_in, until) = match f.status {
                Status::Remediated { at, period } => (Some(period), at),
                _ => (None, inputs.as_of),
            };
            let age = until.duration_since(f.first_seen).unwrap_or_default();
            let row = TrackingRow {
                id: f.id.clone(),
                severity: f.severity,
                target: target(f.key.addr, f.key.proto, f.key.port),
                status: f.status.name(),
                first_period: metrics::first_period(f),
                remediated_in,
                age_days: age.as_secs() / 86_400,
                repeats: f.repeats,
            };
            (f, row)
        })
        .collect();
    // Still to act on first, worst first, then by identity.
    rows.sort_by_key(|(f, _)| (!f.status.is_active(inputs.as_of), std::cmp::Reverse(f.severity), f.key));
    rows.into_iter().map(|(_, r)| r).collect()
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The first instant after `p` (00:00 UTC on the next month's first day).
pub fn period_end(p: Period) -> SystemTime {
    let (y, m) = if p.month() == 12 { (p.year() + 1, 1) } else { (p.year(), p.month() + 1) };
    vantage_shared::period::day_start(&format!("{y:04}-{m:02}-01")).unwrap_or(SystemTime::UNIX_EPOCH)
}
