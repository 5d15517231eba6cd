//! The report's metrics: a finding's rounds (opened, remediated, opened
//! again) read back from its history, and the 12-month trend series built
//! on them: exposed services, mean time to remediate by severity, the share
//! of open ports that are documented, repeat findings, time from
//! notification to acknowledgement, and the cost avoided by closures.
//!
//! Findings keep only their current status; their history says when each
//! round began and ended (reconcile writes those events with the period
//! they belong to). A test in `tests.rs` runs reconcile itself, so a change
//! of its wording breaks that test rather than these numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use vantage_shared::Period;

use super::{CostAvoided, Inputs};
use crate::notify::Notes;
use crate::review::findings::{EventKind, Finding, Severity, Status};

/// One stretch of time a finding was open: from `start` until its
/// remediation (`end`), if it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub start: Period,
    pub start_at: SystemTime,
    pub end: Option<(Period, SystemTime)>,
}

/// The rounds of a finding, oldest first.
pub fn rounds(f: &Finding) -> Vec<Round> {
    let mut out: Vec<Round> = Vec::new();
    for e in &f.history {
        let Some(p) = e.period else { continue };
        if e.kind.opens() {
            if out.last().is_none_or(|r| r.end.is_some()) {
                out.push(Round { start: p, start_at: e.at, end: None });
            }
        } else if e.kind == EventKind::Remediated
            && let Some(r) = out.last_mut().filter(|r| r.end.is_none())
        {
            r.end = Some((p, e.at));
        }
    }
    if out.is_empty() {
        // A finding from elsewhere (an import) without such events.
        let end = match f.status {
            Status::Remediated { at, period } => Some((period, at)),
            _ => None,
        };
        out.push(Round { start: Period::of(f.first_seen), start_at: f.first_seen, end });
    }
    out
}

pub fn first_period(f: &Finding) -> Period {
    rounds(f).first().map(|r| r.start).unwrap_or_else(|| Period::of(f.first_seen))
}

/// Whether a round was open at the end of `q`.
pub fn open_at(rounds: &[Round], q: Period) -> bool {
    rounds.iter().any(|r| r.start <= q && r.end.is_none_or(|(e, _)| e > q))
}

/// The `n` periods ending with `p`, oldest first.
pub fn window(p: Period, n: usize) -> Vec<Period> {
    let mut out = vec![p];
    while out.len() < n {
        let prev = out.last().expect("not empty").previous();
        if prev == *out.last().expect("not empty") {
            break;
        }
        out.push(prev);
    }
    out.reverse();
    out
}

/// A named line of a chart: one value per period of the window, where known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// One trend: its series over the window, and what it means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: String,
    pub periods: Vec<Period>,
    pub series: Vec<Series>,
    /// How it is computed, in a sentence.
    pub note: String,
}

impl Metric {
    /// The latest value of each series, for the text beside the chart.
    pub fn latest(&self) -> Vec<(String, Option<f64>)> {
        self.series.iter().map(|s| (s.name.clone(), s.values.last().copied().flatten())).collect()
    }
}

fn days(d: Duration) -> f64 {
    d.as_secs_f64() / 86_400.0
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| round2(xs.iter().sum::<f64>() / xs.len() as f64))
}

/// Two decimals, so that the JSON and the text agree and stay stable.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Every metric over `window`, and the cost avoided.
pub fn all(inputs: &Inputs<'_>, rounds: &[Vec<Round>], window: &[Period]) -> (Vec<Metric>, CostAvoided) {
    let open_ports: BTreeMap<Period, u64> = inputs.baselines.iter().map(|b| (b.period, b.open_ports)).collect();
    let metric = |id, title, unit: &str, series, note: &str| Metric {
        id,
        title,
        unit: unit.to_string(),
        periods: window.to_vec(),
        series,
        note: note.to_string(),
    };
    let exposed = Series {
        name: "open ports".into(),
        values: window.iter().map(|q| open_ports.get(q).map(|n| *n as f64)).collect(),
    };
    let mut out = vec![
        metric(
            "exposed-services",
            "Exposed services",
            "open ports",
            vec![exposed],
            "Open ports (and hosts answering on every port) in each reviewed period's baseline.",
        ),
        metric(
            "mttr",
            "Mean time to remediate",
            "days",
            mttr(inputs.findings, rounds, window),
            "From a finding's opening to the review that verified it closed, by the period of the remediation.",
        ),
        metric(
            "documented-share",
            "Open ports documented",
            "%",
            vec![documented_share(inputs.findings, rounds, window, &open_ports)],
            "Share of a period's open ports that a register entry documents.",
        ),
        metric(
            "repeats",
            "Repeat findings",
            "findings",
            vec![repeats(rounds, window)],
            "Remediated findings seen again, by the period they came back in.",
        ),
        metric(
            "acknowledgement",
            "Notification to acknowledgement",
            "hours",
            vec![acknowledgement(inputs, rounds, window)],
            "Mean hours from notification (a ticket or escalation where one is recorded, otherwise the \
             finding's opening) to its acknowledgement, by the period the finding opened in.",
        ),
    ];
    let cost = cost(inputs, rounds, window);
    if let (Some(s), Some(currency)) = (cost.1, &cost.0.currency) {
        out.push(metric("cost-avoided", "Estimated cost avoided", currency, vec![s], &cost.0.note));
    }
    (out, cost.0)
}

fn mttr(findings: &[Finding], rounds: &[Vec<Round>], window: &[Period]) -> Vec<Series> {
    Severity::ALL
        .iter()
        .map(|sev| {
            let values = window
                .iter()
                .map(|q| {
                    let took: Vec<f64> = findings
                        .iter()
                        .zip(rounds)
                        .filter(|(f, _)| f.severity == *sev)
                        .flat_map(|(_, rs)| rs.iter())
                        .filter_map(|r| match r.end {
                            Some((e, at)) if e == *q => Some(days(at.duration_since(r.start_at).unwrap_or_default())),
                            _ => None,
                        })
                        .collect();
                    mean(&took)
                })
                .collect();
            Series { name: sev.to_string(), values }
        })
        .collect()
}

fn documented_share(
    findings: &[Finding],
    rounds: &[Vec<Round>],
    window: &[Period],
    open_ports: &BTreeMap<Period, u64>,
) -> Series {
    let values = window
        .iter()
        .map(|q| {
            let total = *open_ports.get(q)?;
            if total == 0 {
                return None;
            }
            let documented: BTreeSet<_> = findings
                .iter()
                .zip(rounds)
                .filter(|(f, rs)| f.detail.register_entry.is_some() && open_at(rs, *q))
                .map(|(f, _)| (f.key.addr, f.key.proto, f.key.port))
                .collect();
            Some(round2(100.0 * (documented.len() as f64).min(total as f64) / total as f64))
        })
        .collect();
    Series { name: "documented".into(), values }
}

fn repeats(rounds: &[Vec<Round>], window: &[Period]) -> Series {
    let values = window
        .iter()
        .map(|q| Some(rounds.iter().flat_map(|rs| rs.iter().skip(1)).filter(|r| r.start == *q).count() as f64))
        .collect();
    Series { name: "repeats".into(), values }
}

/// From notification to the first acknowledgement: notified is the first
/// ticket filed or escalation sent where an integration recorded one, else
/// the finding's opening (`opened`).
pub fn time_to_acknowledge(f: &Finding, notes: Option<&Notes>, opened: SystemTime) -> Option<Duration> {
    let ack = f.history.iter().find(|e| e.kind == EventKind::Acknowledged)?.at;
    let notified = notes
        .into_iter()
        .flat_map(|n| n.escalation.iter().map(|e| e.at).chain(n.tickets.iter().filter_map(|t| t.created_at)))
        .filter(|at| *at <= ack)
        .min()
        .unwrap_or(opened);
    ack.duration_since(notified).ok()
}

fn acknowledgement(inputs: &Inputs<'_>, rounds: &[Vec<Round>], window: &[Period]) -> Series {
    let values = window
        .iter()
        .map(|q| {
            let hours: Vec<f64> = inputs
                .findings
                .iter()
                .zip(rounds)
                .filter_map(|(f, rs)| {
                    let first = rs.first().filter(|r| r.start == *q)?;
                    time_to_acknowledge(f, inputs.notes.get(&f.id), first.start_at).map(|d| d.as_secs_f64() / 3600.0)
                })
                .collect();
            mean(&hours)
        })
        .collect();
    Series { name: "hours".into(), values }
}

/// The cost avoided per period: the configured figure of each remediated
/// round's severity.
fn cost(inputs: &Inputs<'_>, rounds: &[Vec<Round>], window: &[Period]) -> (CostAvoided, Option<Series>) {
    let Some(costs) = inputs.costs else {
        let note = "Not configured: add a [costs] table to the policy file (currency = \"EUR\", critical = 250000, \
                    high = 50000, ...: what one exploited exposure of each severity would cost you) and pass it \
                    with `vantage report --policy policy.toml`."
            .to_string();
        let none = CostAvoided {
            configured: false,
            currency: None,
            per_severity: BTreeMap::new(),
            period_total: 0,
            twelve_months_total: 0,
            note,
        };
        return (none, None);
    };
    let per_period: Vec<u64> = window
        .iter()
        .map(|q| {
            inputs
                .findings
                .iter()
                .zip(rounds)
                .map(|(f, rs)| {
                    let closed = rs.iter().filter(|r| r.end.is_some_and(|(e, _)| e == *q)).count() as u64;
                    closed.saturating_mul(costs.per_severity.get(&f.severity).copied().unwrap_or(0))
                })
                .fold(0u64, u64::saturating_add)
        })
        .collect();
    let figures: Vec<String> =
        costs.per_severity.iter().rev().map(|(s, n)| format!("{s} {n} {}", costs.currency)).collect();
    let note = format!(
        "Assumption: each exposure verified closed would otherwise have cost the figure configured for its severity \
         ({}), and none was exploited before it closed (no incident is recorded). An estimate from your own \
         figures, not a measurement.",
        if figures.is_empty() { "no figures given".to_string() } else { figures.join(", ") }
    );
    let series = Series { name: costs.currency.clone(), values: per_period.iter().map(|n| Some(*n as f64)).collect() };
    let c = CostAvoided {
        configured: true,
        currency: Some(costs.currency.clone()),
        per_severity: costs.per_severity.clone(),
        period_total: per_period.last().copied().unwrap_or(0),
        twelve_months_total: per_period.iter().copied().fold(0, u64::saturating_add),
        note,
    };
    (c, Some(series))
}
