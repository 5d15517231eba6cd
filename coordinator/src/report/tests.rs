//! The report's model and metrics on handmade findings; the renderers'
//! escaping and determinism.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use vantage_shared::{Period, Proto};

use super::*;
use crate::review::findings::{
    Candidate, Coverage, Detail, Event, EventKind, Finding, FindingKey, Kind, Severity, Status, reconcile,
};
use crate::review::policy::{Costs, Policy};

fn at(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s).unwrap()
}

fn per(s: &str) -> Period {
    s.parse().unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

fn key(port: u16) -> FindingKey {
    FindingKey { addr: "198.18.0.1".parse().unwrap(), proto: Proto::Tcp, port, kind: Kind::Undocumented }
}

/// A finding opened in `opened` at `t`, remediated `after` later in `closed`.
fn finding(port: u16, severity: Severity, opened: &str, t: SystemTime, closed: Option<(&str, Duration)>) -> Finding {
    let found = format!("found ({severity}, due within 24 hours)");
    let mut history = vec![Event::new(EventKind::Found, t, Some(per(opened)), found)];
    let status = match closed {
        Some((p, after)) => {
            let what = format!("port no longer open: remediated after {} hours", after.as_secs() / 3600);
            history.push(Event::new(EventKind::Remediated, t + after, Some(per(p)), what));
            Status::Remediated { at: t + after, period: per(p) }
        }
        None => Status::Open,
    };
    Finding {
        id: format!("F-{port}"),
        key: key(port),
        severity,
        status,
        owner: None,
        contact: None,
        first_seen: t,
        opened_at: t,
        last_seen: t,
        last_period: per(opened),
        deadline: t + 24 * HOUR,
        repeats: 0,
        sentence: format!("Service on port {port}."),
        detail: Detail::default(),
        history,
    }
}

struct World {
    findings: Vec<Finding>,
    baselines: Vec<BaselineFacts>,
    costs: Option<Costs>,
    tls: BTreeMap<TlsKey, vantage_shared::service::TlsFacts>,
    notes: BTreeMap<String, Notes>,
}

impl World {
    fn new(findings: Vec<Finding>, baselines: &[(&str, u64)]) -> World {
        let baselines = baselines.iter().map(|(p, n)| BaselineFacts { period: per(p), open_ports: *n }).collect();
        World { findings, baselines, costs: None, tls: BTreeMap::new(), notes: BTreeMap::new() }
    }

    fn report(&self, period: &str) -> Report {
        let p = per(period);
        build(&Inputs {
            period: p,
            as_of: period_end(p),
            findings: &self.findings,
            baselines: &self.baselines,
            previous: self.baselines.iter().map(|b| b.period).filter(|q| *q < p).max(),
            changes: &[],
            tls: &self.tls,
            costs: self.costs.as_ref(),
            notes: &self.notes,
        })
    }
}

fn metric<'a>(r: &'a Report, id: &str) -> &'a Metric {
    r.metrics.iter().find(|m| m.id == id).unwrap_or_else(|| panic!("no metric {id}"))
}

/// The series' value for the report's own period.
fn last(m: &Metric, series: &str) -> Option<f64> {
    m.series.iter().find(|s| s.name == series).unwrap().values.last().copied().flatten()
}

#[test]
fn rounds_follow_what_reconcile_writes() {
    let policy = Policy::default();
    let candidate = Candidate {
        key: key(22),
        severity: Severity::Medium,
        owner: None,
        contact: None,
        sentence: "s".into(),
        detail: Detail::default(),
    };
    let all = |_, _, _| true;
    let cover = || Coverage { scanned: &all, confirmed: None };
    let (oct, nov, dec) = (at("2026-10-05T00:00:00Z"), at("2026-11-02T00:00:00Z"), at("2026-12-07T00:00:00Z"));
    let o = reconcile(vec![], vec![candidate.clone()], per("2026-10"), oct, &policy, cover(), || "F-1".into());
    let n = reconcile(o.findings, vec![], per("2026-11"), nov, &policy, cover(), || unreachable!());
    let d = reconcile(n.findings, vec![candidate], per("2026-12"), dec, &policy, cover(), || unreachable!());
    let f = &d.findings[0];
    assert_eq!(f.repeats, 1);
    assert_eq!(
        metrics::rounds(f),
        vec![
            metrics::Round { start: per("2026-10"), start_at: oct, end: Some((per("2026-11"), nov)) },
            metrics::Round { start: per("2026-12"), start_at: dec, end: None },
        ]
    );
    let rs = metrics::rounds(f);
    assert!(metrics::open_at(&rs, per("2026-10")));
    assert!(!metrics::open_at(&rs, per("2026-11")), "remediated in November: not open at its end");
    assert!(metrics::open_at(&rs, per("2026-12")));
}

#[test]
fn summary_counts_new_remediated_open_and_overdue_by_severity() {
    let oct = at("2026-10-05T00:00:00Z");
    let nov = at("2026-11-02T00:00:00Z");
    let w = World::new(
        vec![
            finding(1, Severity::Critical, "2026-10", oct, Some(("2026-11", 28 * 24 * HOUR))),
            finding(2, Severity::Critical, "2026-11", nov, None),
            finding(3, Severity::High, "2026-10", oct, None),
            finding(4, Severity::Low, "2026-11", nov, None),
        ],
        &[("2026-10", 3), ("2026-11", 3)],
    );
    let r = w.report("2026-11");
    let crit = &r.summary.by_severity[0];
    assert_eq!(crit.severity, Severity::Critical);
    assert_eq!(crit.counts, Counts { new: 1, remediated: 1, open: 1, overdue: 1 });
    assert_eq!(r.summary.total, Counts { new: 2, remediated: 1, open: 3, overdue: 3 });
    // Worst first; the remediated one is tracked, not listed as open.
    let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["F-2", "F-3", "F-4"]);
    let tracked: Vec<(&str, &str)> = r.tracking.iter().map(|t| (t.id.as_str(), t.status)).collect();
    assert_eq!(tracked, [("F-3", "open"), ("F-1", "remediated")]);
    assert_eq!(r.tracking[1].age_days, 28);
}

#[test]
fn the_trend_sentence_compares_with_three_months_ago() {
    let reviewed: BTreeSet<Period> = ["2026-08", "2026-09", "2026-10"].iter().map(|p| per(p)).collect();
    let t = trend(per("2026-11"), 12, &reviewed, |q| if q == per("2026-08") { 19 } else { 0 });
    assert_eq!(t.direction, "falling");
    assert_eq!(t.sentence, "Exposure is falling: 12 open findings against 19 three months ago (2026-08).");
    let only_last: BTreeSet<Period> = [per("2026-10")].into();
    let t = trend(per("2026-11"), 5, &only_last, |_| 4);
    assert_eq!(t.sentence, "Exposure is rising: 5 open findings against 4 last month (2026-10).");
    let t = trend(per("2026-11"), 1, &BTreeSet::new(), |_| unreachable!());
    assert_eq!(t.direction, "none");
    assert!(t.sentence.starts_with("1 open finding at the end of 2026-11; no reviewed period"), "{}", t.sentence);
}

#[test]
fn mean_time_to_remediate_is_per_severity_and_period_of_remediation() {
    let oct = at("2026-10-05T00:00:00Z");
    let w = World::new(
        vec![
            finding(1, Severity::Critical, "2026-10", oct, Some(("2026-11", 48 * HOUR))),
            finding(2, Severity::Critical, "2026-10", oct, Some(("2026-11", 96 * HOUR))),
            finding(3, Severity::High, "2026-10", oct, Some(("2026-10", 12 * HOUR))),
            finding(4, Severity::Medium, "2026-10", oct, None),
        ],
        &[("2026-10", 4), ("2026-11", 1)],
    );
    let r = w.report("2026-11");
    let m = metric(&r, "mttr");
    assert_eq!(last(m, "critical"), Some(3.0));
    assert_eq!(last(m, "high"), None, "nothing high was remediated in November");
    let high = &m.series.iter().find(|s| s.name == "high").unwrap().values;
    assert_eq!(high[high.len() - 2], Some(0.5), "remediated in October after 12 hours");
    assert_eq!(m.periods.len(), MONTHS);
    assert_eq!(m.periods.last(), Some(&per("2026-11")));
}

#[test]
fn documented_share_counts_ports_a_register_entry_documents() {
    let t = at("2026-11-02T00:00:00Z");
    let mut documented = finding(1, Severity::Low, "2026-11", t, None);
    documented.detail.register_entry = Some(3);
    documented.key.kind = Kind::Documented;
    // Two findings on one documented port count once.
    let mut also = documented.clone();
    also.key.kind = Kind::ReviewOverdue;
    let w = World::new(vec![documented, also, finding(2, Severity::Medium, "2026-11", t, None)], &[("2026-11", 4)]);
    let r = w.report("2026-11");
    assert_eq!(last(metric(&r, "documented-share"), "documented"), Some(25.0));
    assert_eq!(last(metric(&r, "exposed-services"), "open ports"), Some(4.0));
}

#[test]
fn acknowledgement_time_runs_from_notification() {
    let t = at("2026-11-02T00:00:00Z");
    let ack = |f: &mut Finding, after: Duration, who: &str| {
        f.history.push(Event::new(EventKind::Acknowledged, t + after, None, format!("acknowledged by {who}")));
    };
    let mut plain = finding(1, Severity::Critical, "2026-11", t, None);
    ack(&mut plain, 5 * HOUR, "alice");
    let mut ticketed = finding(2, Severity::Critical, "2026-11", t, None);
    ack(&mut ticketed, 3 * HOUR, "bob");
    let mut escalated = finding(4, Severity::Critical, "2026-11", t, None);
    ack(&mut escalated, 7 * HOUR, "carol");
    let ticket = crate::notify::TicketRecord {
        finding_id: ticketed.id.clone(),
        integration: "jira".into(),
        state: crate::notify::TicketState::Open,
        key: Some("OPS-7".into()),
        url: None,
        fingerprint: 0,
        created_at: Some(t + 2 * HOUR),
        updated_at: t + 2 * HOUR,
    };
    let escalation = crate::notify::Escalation {
        finding_id: escalated.id.clone(),
        at: t + HOUR,
        channels: [("slack".to_string(), t + HOUR)].into(),
    };
    let mut w = World::new(
        vec![plain.clone(), ticketed.clone(), escalated.clone(), finding(3, Severity::High, "2026-11", t, None)],
        &[("2026-11", 4)],
    );
    w.notes.insert(ticketed.id.clone(), Notes { tickets: vec![ticket], escalation: None });
    w.notes.insert(escalated.id.clone(), Notes { tickets: vec![], escalation: Some(escalation) });
    assert_eq!(metrics::time_to_acknowledge(&plain, w.notes.get(&plain.id), t), Some(5 * HOUR));
    assert_eq!(metrics::time_to_acknowledge(&ticketed, w.notes.get(&ticketed.id), t), Some(HOUR));
    assert_eq!(metrics::time_to_acknowledge(&escalated, w.notes.get(&escalated.id), t), Some(6 * HOUR));
    let r = w.report("2026-11");
    assert_eq!(last(metric(&r, "acknowledgement"), "hours"), Some(4.0));
    // The report says who was told and when, next to each finding.
    let row = |id: &str| r.findings.iter().find(|f| f.id == id).unwrap().follow_up.clone();
    assert_eq!(row("F-4").escalated.as_deref(), Some("2026-11-02T01:00:00Z to slack"));
    assert_eq!(row("F-4").acknowledged.as_deref(), Some("2026-11-02T07:00:00Z by carol"));
    assert_eq!(row("F-2").tickets, ["jira OPS-7"]);
    assert_eq!(row("F-3"), FollowUp::default());
    let md = markdown::render(&r);
    let line = markdown::md("escalated 2026-11-02T01:00:00Z to slack; acknowledged 2026-11-02T07:00:00Z by carol");
    assert!(md.contains(&line), "{md}");
    assert!(html::render(&r).unwrap().contains("ticket jira OPS-7; acknowledged 2026-11-02T03:00:00Z by bob"));
}

#[test]
fn repeats_count_findings_that_came_back() {
    let t = at("2026-10-05T00:00:00Z");
    let mut f = finding(1, Severity::Medium, "2026-10", t, Some(("2026-11", 700 * HOUR)));
    let what = "seen again after its remediation in 2026-11: repeat 1";
    f.history.push(Event::new(EventKind::Reopened, t + 1500 * HOUR, Some(per("2026-12")), what));
    f.status = Status::Reopened;
    f.repeats = 1;
    let w = World::new(vec![f], &[("2026-10", 1), ("2026-11", 0), ("2026-12", 1)]);
    let r = w.report("2026-12");
    assert_eq!(last(metric(&r, "repeats"), "repeats"), Some(1.0));
    assert_eq!(r.summary.total.new, 0, "a repeat is not new");
    assert_eq!(r.tracking[0].repeats, 1);
}

#[test]
fn cost_avoided_uses_the_configured_figures_or_says_how_to_configure_them() {
    let oct = at("2026-10-05T00:00:00Z");
    let findings = vec![
        finding(1, Severity::Critical, "2026-10", oct, Some(("2026-11", 48 * HOUR))),
        finding(2, Severity::Critical, "2026-10", oct, Some(("2026-11", 48 * HOUR))),
        finding(3, Severity::High, "2026-10", oct, Some(("2026-10", 48 * HOUR))),
        finding(4, Severity::Low, "2026-10", oct, Some(("2026-11", 48 * HOUR))),
    ];
    let mut w = World::new(findings, &[("2026-10", 4), ("2026-11", 0)]);
    let none = w.report("2026-11").cost;
    assert!(!none.configured);
    assert!(none.note.contains("[costs]") && none.note.contains("--policy"), "{}", none.note);
    w.costs = Some(Costs {
        currency: "EUR".into(),
        per_severity: BTreeMap::from([(Severity::Critical, 250_000), (Severity::High, 50_000)]),
    });
    let r = w.report("2026-11");
    assert_eq!((r.cost.period_total, r.cost.twelve_months_total), (500_000, 550_000));
    assert!(r.cost.note.starts_with("Assumption:") && r.cost.note.contains("critical 250000 EUR"), "{}", r.cost.note);
    assert_eq!(last(metric(&r, "cost-avoided"), "EUR"), Some(500_000.0));
}

#[test]
fn renderers_escape_store_strings_and_are_deterministic() {
    let t = at("2026-11-02T00:00:00Z");
    let mut f = finding(1, Severity::Critical, "2026-11", t, None);
    f.sentence = "<script>alert(1)</script> | *x* [a](http://evil.example)".into();
    f.owner = Some("=cmd|' /C calc'!A0".into());
    f.detail.product = Some("<img src=x onerror=alert(2)>".into());
    let w = World::new(vec![f], &[("2026-10", 0), ("2026-11", 1)]);
    let r = w.report("2026-11");
    let html = html::render(&r).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<img"), "store strings must be escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "escaped text stays readable");
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert_eq!(html, html::render(&w.report("2026-11")).unwrap(), "same inputs, same bytes");
    let md = markdown::render(&r);
    assert!(md.contains(r"\<script\>alert\(1\)\<\/script\> \| \*x\* \[a\]\(http\:\/\/evil\.example\)"), "{md}");
    assert_eq!(md, markdown::render(&w.report("2026-11")));
    let csv = machine::csv(&r).unwrap();
    assert!(csv.starts_with("id,severity,status,kind,target,owner,"), "{csv}");
    assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "a formula is defused: {csv}");
    let json: serde_json::Value = serde_json::from_str(&machine::json(&r).unwrap()).unwrap();
    assert_eq!(json["summary"]["total"]["open"], 1);
    assert_eq!(json["findings"][0]["sentence"], r.findings[0].sentence.as_str());
}
