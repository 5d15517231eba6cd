use std::convert::Infallible;
use std::time::UNIX_EPOCH;

use vantage_shared::TlsFacts;

use super::*;

fn entry(addr: &str, port: u16, service: Option<ServiceFacts>, regions: &[&str]) -> BaselineEntry {
    crate::review::open_entry(addr, port, service, regions, UNIX_EPOCH)
}

fn run(before: Vec<BaselineEntry>, after: Vec<BaselineEntry>) -> Vec<(ChangeKind, u16)> {
    diff(before.into_iter().map(Ok::<_, Infallible>), after.into_iter().map(Ok))
        .map(|c| c.map(|c| (c.kind, c.port)).unwrap())
        .collect()
}

fn ssh(version: &str) -> Option<ServiceFacts> {
    Some(ServiceFacts::named("ssh").product("OpenSSH").version(version))
}

#[test]
fn every_kind_of_change_in_key_order() {
    let tls = |sha: &str| {
        let mut f = ServiceFacts::named("http");
        f.tls = Some(TlsFacts { sha256: sha.into(), ..Default::default() });
        Some(f)
    };
    let before = vec![
        entry("198.18.0.1", 22, ssh("9.2p1"), &["r1"]),
        entry("198.18.0.1", 80, None, &["r1"]),
        entry("198.18.0.1", 443, tls("aa"), &["r1"]),
        entry("198.18.0.2", 25, Some(ServiceFacts::named("smtp")), &["r1", "r2"]),
        entry("198.18.0.3", 8080, Some(ServiceFacts::named("http")), &["r1"]),
    ];
    let after = vec![
        entry("198.18.0.1", 22, ssh("9.3p1"), &["r1"]),
        entry("198.18.0.1", 80, Some(ServiceFacts::named("http")), &["r1"]),
        entry("198.18.0.1", 443, tls("bb"), &["r1"]),
        entry("198.18.0.1", 3306, None, &["r1"]),
        entry("198.18.0.2", 25, Some(ServiceFacts::named("smtp")), &["r1"]),
        entry("198.18.0.3", 8080, Some(ServiceFacts::named("ssh")), &["r1"]),
    ];
    assert_eq!(
        run(before, after),
        vec![
            (ChangeKind::VersionChanged, 22),
            (ChangeKind::TlsChanged, 443),
            (ChangeKind::New, 3306),
            (ChangeKind::ReachabilityChanged, 25),
            (ChangeKind::ServiceChanged, 8080),
        ]
    );
}

#[test]
fn closed_and_first_review() {
    let before = vec![entry("198.18.0.1", 22, None, &["r1"]), entry("::1", 22, None, &["r1"])];
    assert_eq!(run(before.clone(), vec![]), vec![(ChangeKind::Closed, 22), (ChangeKind::Closed, 22)]);
    assert_eq!(run(vec![], before.clone()), vec![(ChangeKind::New, 22), (ChangeKind::New, 22)]);
    assert!(run(before.clone(), before).is_empty());
}

#[test]
fn answers_all_is_its_own_state() {
    let open = entry("198.18.0.9", 0, None, &["r1"]);
    let all = BaselineEntry { state: PortState::AnswersAll, ..open.clone() };
    assert_eq!(run(vec![open], vec![all]), vec![(ChangeKind::StateChanged, 0)]);
}

#[test]
fn an_error_ends_the_diff() {
    let before =
        vec![Ok(entry("198.18.0.1", 22, None, &["r1"])), Err("disk"), Ok(entry("198.18.0.1", 23, None, &["r1"]))];
    let out: Vec<_> = diff(before.into_iter(), std::iter::empty()).collect();
    assert_eq!(out.len(), 2);
    assert!(out[1].is_err());
}

#[test]
fn reachability_only_over_common_regions() {
    // September: an import saw 22, regions r1 and r2 saw 80. October: r1 alone.
    let before = vec![entry("198.18.0.1", 22, None, &["nmap-import"]), entry("198.18.0.1", 80, None, &["r1", "r2"])];
    let after = vec![entry("198.18.0.1", 22, None, &["r1"]), entry("198.18.0.1", 80, None, &["r1"])];
    let changes = |common: Option<&[&str]>| -> Vec<(u16, String, String)> {
        let d = diff(before.clone().into_iter().map(Ok::<_, Infallible>), after.clone().into_iter().map(Ok));
        let d = match common {
            Some(c) => d.regions(c.iter().map(|r| r.to_string()).collect()),
            None => d,
        };
        d.map(|c| c.map(|c| (c.port, c.before, c.after)).unwrap()).collect()
    };
    // Over r1 (the regions both months share): r1 now sees 22, and still sees 80.
    assert_eq!(changes(Some(&["r1"])), vec![(22, String::new(), "r1".to_string())]);
    // No common region: nothing to say about reachability.
    assert!(changes(Some(&[])).is_empty());
    assert_eq!(changes(None).len(), 2);
}
