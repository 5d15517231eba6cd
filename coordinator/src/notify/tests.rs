use std::collections::BTreeSet;
use std::time::SystemTime;

use super::testutil::finding;
use super::*;
use crate::review::findings::{Kind, Severity, Status};

const FILE: &str = "escalate = [\"chat\"]\nowner_via = \"mail\"\n\
    [integration.gh]\nkind = \"github\"\nrepo = \"a/b\"\ntoken_env = \"T\"\nmin_severity = \"medium\"\n\
    [integration.chat]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/\"\n\
    [integration.mail]\nkind = \"email\"\nsmtp = \"127.0.0.1:25\"\ntls = \"none\"\nfrom = \"v@example.invalid\"\n";

fn planned(before: &[Finding], after: &[Finding], ticketed: bool) -> Vec<(String, Action, String)> {
    let cfg = Integrations::parse(FILE).unwrap();
    plan(&cfg, before, after, &|_, _| ticketed, &BTreeSet::new(), SystemTime::now())
        .into_iter()
        .map(|i| (i.integration, i.action, i.finding.id))
        .collect()
}

#[test]
fn a_new_critical_finding_is_filed_and_escalated_with_its_owner() {
    let f = finding("F-1", Kind::ExposedService);
    assert_eq!(
        planned(&[], &[f], false),
        [
            ("gh".to_string(), Action::Sync, "F-1".to_string()),
            ("chat".into(), Action::Escalate, "F-1".into()),
            ("mail".into(), Action::EscalateOwner { to: "db-team@example.invalid".into() }, "F-1".into()),
        ]
    );
}

#[test]
fn an_unchanged_finding_with_a_ticket_causes_nothing() {
    let f = finding("F-1", Kind::ExposedService);
    assert!(planned(std::slice::from_ref(&f), std::slice::from_ref(&f), true).is_empty());
}

#[test]
fn a_changed_finding_is_synced_not_escalated_again() {
    let before = finding("F-1", Kind::ExposedService);
    let mut after = before.clone();
    after.detail.version = Some("16.2".into());
    assert_eq!(planned(&[before], &[after], true), [("gh".to_string(), Action::Sync, "F-1".to_string())]);
}

#[test]
fn below_the_minimum_severity_no_ticket() {
    let mut f = finding("F-1", Kind::Undocumented);
    f.severity = Severity::Low;
    assert!(planned(&[], &[f], false).is_empty());
}

#[test]
fn a_settled_finding_without_a_ticket_gets_none() {
    let mut f = finding("F-1", Kind::Undocumented);
    f.severity = Severity::Medium;
    f.status = Status::Remediated { at: SystemTime::now(), period: "2026-11".parse().unwrap() };
    assert!(planned(&[], &[f], false).is_empty());
}

#[test]
fn the_fingerprint_follows_what_a_ticket_shows() {
    let a = finding("F-1", Kind::Undocumented);
    let mut b = a.clone();
    b.history.push(crate::review::findings::Event::new(Default::default(), SystemTime::now(), None, "x"));
    assert_eq!(fingerprint(&a), fingerprint(&b), "history alone is no update");
    b.status = Status::Acknowledged { by: "ops".into(), at: SystemTime::now() };
    assert_ne!(fingerprint(&a), fingerprint(&b));
}
