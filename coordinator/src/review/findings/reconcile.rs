//! Last month's findings and this month's candidates into this month's
//! findings. The rules that make findings trustworthy live here:
//!
//! * Identity is (address, protocol, port, kind): the same exposure seen
//!   again is the same finding, with its history and id.
//! * Remediated is only ever set here, by a review whose scans covered the
//!   port and no longer saw the problem; a port outside this month's scans
//!   stays as it was (an incomplete scan proves nothing), and so does a
//!   closed port that a re-probe did not confirm closed.
//! * A remediated finding seen again is reopened and counted as a repeat;
//!   its deadline runs from the day it came back.
//! * A review of an older period never overrides a newer one's decision.
//! * Re-running a review on the same baseline changes nothing: times come
//!   from the baseline, and history records transitions only.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::SystemTime;

use vantage_shared::{Period, Proto};

use super::super::policy::Policy;
use super::{Candidate, Event, EventKind, Finding, FindingKey, Status, hours_text};

/// A port, as closures are confirmed.
pub type PortRef = (IpAddr, Proto, u16);

/// What may remediate a finding that no longer applies.
pub struct Coverage<'a> {
    /// Whether the period's scans probed a port at all.
    pub scanned: &'a dyn Fn(IpAddr, Proto, u16) -> bool,
    /// The ports a re-probe confirmed: closed ones seen closed again, open
    /// ones whose service changed seen as the period saw them. `None` when
    /// no confirmation is asked for (every covered port counts).
    pub confirmed: Option<&'a BTreeSet<PortRef>>,
}

/// A review's findings and what changed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every finding the review touched (new, still present, closed), by key.
    pub findings: Vec<Finding>,
    pub new: usize,
    pub still_open: usize,
    pub remediated: usize,
    pub reopened: usize,
    /// Earlier findings on ports this review's scans did not cover: left as they were.
    pub not_covered: usize,
    /// The ports whose findings are remediated because they closed (the
    /// ones to re-probe, when planning).
    pub closing: BTreeSet<PortRef>,
    /// The open ports whose findings are remediated because what listens
    /// there changed (to re-probe as well: detection varies too).
    pub changing: BTreeSet<PortRef>,
    /// Findings a re-probe did not confirm gone: left as they were.
    pub unconfirmed: usize,
}

/// Reconciles `existing` findings with a review's `candidates` for
/// `period`, whose baseline was built at `seen_at`. `next_id` names new
/// findings. A finding whose port closed is remediated only on a port the
/// period's scans covered and, when `covered` asks for it, whose closure (or
/// change, for a port still open) a re-probe confirmed.
pub fn reconcile(
    existing: Vec<Finding>,
    candidates: Vec<Candidate>,
    period: Period,
    seen_at: SystemTime,
    policy: &Policy,
    covered: Coverage<'_>,
    mut next_id: impl FnMut() -> String,
) -> Outcome {
    let mut out = Outcome::default();
    let open_ports: BTreeSet<(IpAddr, Proto, u16)> =
        candidates.iter().map(|c| (c.key.addr, c.key.proto, c.key.port)).collect();
    let mut existing: BTreeMap<FindingKey, Finding> = existing.into_iter().map(|f| (f.key, f)).collect();
    let event = |kind: EventKind, what: String| Event::new(kind, seen_at, Some(period), what);

    for c in candidates {
        let Some(mut f) = existing.remove(&c.key) else {
            let deadline = seen_at + policy.deadline_of(c.severity);
            out.new += 1;
            out.findings.push(Finding {
                id: next_id(),
                key: c.key,
                severity: c.severity,
                status: Status::Open,
                owner: c.owner,
                contact: c.contact,
                first_seen: seen_at,
                opened_at: seen_at,
                last_seen: seen_at,
                last_period: period,
                deadline,
                repeats: 0,
                sentence: c.sentence,
                detail: c.detail,
                history: vec![event(
                    EventKind::Found,
                    format!("found ({}, due within {})", c.severity, hours_text(policy.deadline_of(c.severity))),
                )],
            });
            continue;
        };
        if f.last_period > period {
            out.findings.push(f);
            continue;
        }
        match &f.status {
            Status::Remediated { period: closed, .. } => {
                let what = format!("seen again after its remediation in {closed}: repeat {}", f.repeats + 1);
                f.repeats += 1;
                f.opened_at = seen_at;
                f.status = Status::Reopened;
                f.history.push(event(EventKind::Reopened, what));
                out.reopened += 1;
            }
            Status::AcceptedRisk { until, reason, .. } if seen_at >= *until => {
                let what = format!(
                    "risk acceptance (\"{reason}\") ended on {}: open again",
                    humantime::format_rfc3339_seconds(*until)
                );
                f.status = Status::Open;
                f.history.push(event(EventKind::RiskEnded, what));
                out.still_open += 1;
            }
            _ => out.still_open += 1,
        }
        if f.severity != c.severity {
            f.history.push(event(EventKind::SeverityChanged, format!("severity {} -> {}", f.severity, c.severity)));
            f.severity = c.severity;
        }
        f.deadline = f.opened_at + policy.deadline_of(f.severity);
        f.owner = c.owner;
        f.contact = c.contact;
        f.sentence = c.sentence;
        f.detail = c.detail;
        f.last_seen = f.last_seen.max(seen_at);
        f.last_period = period;
        out.findings.push(f);
    }

    // What this review did not find again.
    for (_, mut f) in existing {
        if f.last_period > period || matches!(f.status, Status::Remediated { .. }) {
            continue;
        }
        let k = f.key;
        let port = (k.addr, k.proto, k.port);
        if !(covered.scanned)(k.addr, k.proto, k.port) {
            out.not_covered += 1;
            continue;
        }
        if covered.confirmed.is_some_and(|c| !c.contains(&port)) {
            out.unconfirmed += 1;
            continue;
        }
        let how = if open_ports.contains(&port) {
            out.changing.insert(port);
            "no longer applies (the port is open; what it is changed)"
        } else {
            out.closing.insert(port);
            "port no longer open"
        };
        let took = seen_at.duration_since(f.opened_at).unwrap_or_default();
        f.history.push(event(EventKind::Remediated, format!("{how}: remediated after {}", hours_text(took))));
        f.status = Status::Remediated { at: seen_at, period };
        f.last_period = period;
        out.remediated += 1;
        out.findings.push(f);
    }
    out.findings.sort_by_key(|f| f.key);
    out
}
