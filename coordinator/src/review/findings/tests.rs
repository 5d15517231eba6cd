//! Findings from the sample register, inventory and vulnerability files of
//! `coordinator/tests/data`, judged and reconciled over several months.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use vantage_shared::{BaselineEntry, Category, Method, Period, ServiceFacts};

use super::*;
use crate::review::inventory::Inventory;
use crate::review::policy::Policy;
use crate::review::register::Register;
use crate::review::vulns::VulnDb;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

struct World {
    register: Register,
    inventory: Inventory,
    vulns: VulnDb,
    policy: Policy,
}

fn world() -> World {
    let read = |n: &str| std::fs::read_to_string(data(n)).unwrap();
    let (vulns, _) = VulnDb::import(&[data("vulns/nvdcve-2.0-sample.json")], &[data("vulns/kev-sample.json")]).unwrap();
    World {
        register: Register::parse(&read("register-sample.toml")).unwrap(),
        inventory: Inventory::parse(&read("inventory-sample.csv")).unwrap(),
        vulns,
        policy: Policy::default(),
    }
}

impl World {
    fn knowledge(&self) -> Knowledge<'_> {
        Knowledge {
            register: Some(&self.register),
            inventory: Some(&self.inventory),
            vulns: Some(&self.vulns),
            policy: &self.policy,
        }
    }
}

/// 2026-11-02 09:00 UTC, the first Monday.
fn nov() -> SystemTime {
    humantime::parse_rfc3339("2026-11-02T09:00:00Z").unwrap()
}

fn port(addr: &str, port: u16, service: Option<ServiceFacts>, regions: &[&str]) -> BaselineEntry {
    crate::review::open_entry(addr, port, service, regions, nov())
}

fn openssh(version: &str) -> ServiceFacts {
    ServiceFacts {
        cpe: vec![format!("cpe:2.3:a:openbsd:openssh:{version}:*:*:*:*:*:*:*")],
        ..ServiceFacts::named("ssh").product("OpenSSH").version(version)
    }
}

fn mysql() -> ServiceFacts {
    ServiceFacts::named("mysql").product("MySQL").version("8.0.35")
}

fn kinds(c: &[Candidate], addr: &str, port: u16) -> Vec<(Kind, Severity)> {
    let addr: IpAddr = addr.parse().unwrap();
    c.iter().filter(|c| c.key.addr == addr && c.key.port == port).map(|c| (c.key.kind, c.severity)).collect()
}

#[test]
fn an_undocumented_database_is_critical_with_a_sentence_to_act_on() {
    let w = world();
    let c = evaluate([port("198.18.0.10", 3306, Some(mysql()), &["eu", "us", "ap"])], 3, w.knowledge(), nov());
    assert_eq!(kinds(&c, "198.18.0.10", 3306), [(Kind::ExposedService, Severity::Critical)]);
    assert_eq!(
        c[0].sentence,
        "MySQL 8.0.35 reachable from the internet on 198.18.0.10:3306/tcp from 3 of 3 regions; no business \
         justification is documented; close it now or document why it must stay (due within 24 hours)."
    );
    assert_eq!(c[0].owner, None);
    assert_eq!(c[0].detail.category.as_deref(), Some("database"));
}

#[test]
fn a_documented_bastion_with_an_exploited_version_is_three_findings() {
    let w = world();
    let c = evaluate([port("198.18.0.1", 22, Some(openssh("9.2p1")), &["eu"])], 1, w.knowledge(), nov());
    let found = kinds(&c, "198.18.0.1", 22);
    assert!(found.contains(&(Kind::Documented, Severity::Low)), "{found:?}");
    assert!(found.contains(&(Kind::KnownExploited, Severity::Critical)), "{found:?}");
    assert!(found.contains(&(Kind::VulnerableVersion, Severity::High)), "{found:?}");
    assert!(!found.iter().any(|(k, _)| *k == Kind::InventoryMismatch), "the inventory says 9.2p1 too: {found:?}");
    let kev = c.iter().find(|c| c.key.kind == Kind::KnownExploited).unwrap();
    assert_eq!(kev.detail.cves, ["CVE-2099-0001"]);
    assert_eq!(kev.owner.as_deref(), Some("ops"));
    assert!(kev.sentence.contains("ransomware"), "{}", kev.sentence);
    // Fixed releases are not vulnerable: 9.8p1 is past every sample range.
    let fixed = evaluate([port("198.18.0.1", 22, Some(openssh("9.8p1")), &["eu"])], 1, w.knowledge(), nov());
    assert_eq!(kinds(&fixed, "198.18.0.1", 22).len(), 2, "documented + inventory mismatch: {fixed:?}");
    assert!(fixed.iter().any(|c| c.key.kind == Kind::InventoryMismatch));
}

#[test]
fn documented_but_different_and_overdue_reviews_are_medium() {
    let w = world();
    // The bastion's entry allows OpenSSH 9.x; 10.0p2 is outside. Its review-by is 2026-12-31.
    let jan = humantime::parse_rfc3339("2027-01-04T09:00:00Z").unwrap();
    let c = evaluate([port("198.18.0.1", 22, Some(openssh("10.0p2")), &["eu"])], 1, w.knowledge(), jan);
    let found = kinds(&c, "198.18.0.1", 22);
    assert!(found.contains(&(Kind::NotAsDocumented, Severity::Medium)), "{found:?}");
    assert!(found.contains(&(Kind::ReviewOverdue, Severity::Medium)), "{found:?}");
    let differs = c.iter().find(|c| c.key.kind == Kind::NotAsDocumented).unwrap();
    assert!(differs.detail.reasons[0].contains("10.0p2"), "{:?}", differs.detail.reasons);
    assert!(differs.sentence.contains("due within 720 hours (30 days)"), "{}", differs.sentence);
}

#[test]
fn undocumented_services_say_when_the_port_is_odd() {
    let w = world();
    let http = ServiceFacts::named("http").product("nginx").version("1.24.0");
    let c = evaluate(
        [port("198.18.9.9", 8443, Some(http.clone()), &["eu"]), port("198.18.9.9", 80, Some(http), &["eu"])],
        1,
        w.knowledge(),
        nov(),
    );
    assert_eq!(kinds(&c, "198.18.9.9", 8443), [(Kind::Undocumented, Severity::Medium)]);
    let odd = &c.iter().find(|c| c.key.port == 8443).unwrap().sentence;
    let usual = &c.iter().find(|c| c.key.port == 80).unwrap().sentence;
    assert!(odd.contains("not a standard port") || odd.contains("not its usual port"), "{odd}");
    assert!(!usual.contains("port,"), "{usual}");
    // A guess from the port number is no identification.
    let guessed =
        ServiceFacts { method: Method::PortGuess, category: Category::Database, ..ServiceFacts::named("mysql") };
    let g = evaluate([port("198.18.9.9", 3306, Some(guessed), &["eu"])], 1, w.knowledge(), nov());
    assert_eq!(kinds(&g, "198.18.9.9", 3306), [(Kind::Undocumented, Severity::Medium)]);
    assert!(g[0].sentence.contains("nothing identified"), "{}", g[0].sentence);
}

#[test]
fn a_policy_file_changes_severity_and_deadline() {
    let mut w = world();
    w.policy = Policy::parse("[deadlines]\nmedium = \"48h\"\n[severity]\nundocumented = \"high\"\n").unwrap();
    let c = evaluate([port("198.18.9.9", 8443, None, &["eu"])], 1, w.knowledge(), nov());
    assert_eq!(kinds(&c, "198.18.9.9", 8443), [(Kind::Undocumented, Severity::High)]);
    assert!(c[0].sentence.ends_with("(due within 168 hours (7 days))."), "{}", c[0].sentence);
}

/// A review of `period` at `at` over `entries`, every port covered.
fn review(w: &World, existing: Vec<Finding>, entries: Vec<BaselineEntry>, period: &str, at: SystemTime) -> Outcome {
    let candidates = evaluate(entries, 1, w.knowledge(), at);
    let mut n = existing.len();
    let all = Coverage { scanned: &|_, _, _| true, confirmed: None };
    reconcile(existing, candidates, period.parse::<Period>().unwrap(), at, &w.policy, all, || {
        n += 1;
        format!("F-{n}")
    })
}

fn day(d: u64) -> Duration {
    Duration::from_secs(d * 24 * 3600)
}

#[test]
fn findings_open_close_and_come_back_as_repeats() {
    let w = world();
    let db = || port("198.18.0.10", 3306, Some(mysql()), &["eu"]);
    let oct = review(&w, vec![], vec![db()], "2026-10", nov() - day(31));
    assert_eq!((oct.new, oct.findings.len()), (1, 1));
    let f = &oct.findings[0];
    assert_eq!((f.id.as_str(), f.status.name()), ("F-1", "open"));
    assert_eq!(f.deadline, f.opened_at + Duration::from_secs(24 * 3600), "deadlines are in hours");
    assert!(f.overdue(nov()));

    // November: closed, on a port the scans covered.
    let closed = review(&w, oct.findings, vec![], "2026-11", nov());
    assert_eq!(closed.remediated, 1);
    let f = &closed.findings[0];
    assert!(matches!(f.status, Status::Remediated { .. }));
    assert_eq!(f.time_to_remediate(), Some(day(31)));
    assert!(!f.overdue(nov() + day(400)), "remediated findings are never overdue");

    // December: back. Same finding, a repeat, a new deadline.
    let dec = nov() + day(30);
    let back = review(&w, closed.findings, vec![db()], "2026-12", dec);
    assert_eq!((back.new, back.reopened), (0, 1));
    let f = &back.findings[0];
    assert_eq!((f.id.as_str(), f.status.name(), f.repeats), ("F-1", "reopened", 1));
    assert_eq!((f.opened_at, f.first_seen), (dec, nov() - day(31)));
    assert_eq!(f.history.len(), 3, "{:#?}", f.history);
}

#[test]
fn an_uncovered_port_is_not_remediated() {
    let w = world();
    let oct = review(&w, vec![], vec![port("198.18.0.10", 3306, Some(mysql()), &["eu"])], "2026-10", nov() - day(31));
    let candidates = evaluate(Vec::new(), 1, w.knowledge(), nov());
    let out = reconcile(
        oct.findings.clone(),
        candidates,
        "2026-11".parse().unwrap(),
        nov(),
        &w.policy,
        Coverage { scanned: &|_, _, p| p != 3306, confirmed: None },
        || unreachable!("nothing new"),
    );
    assert_eq!((out.remediated, out.not_covered), (0, 1));
    assert!(out.findings.is_empty(), "untouched findings are not rewritten");
}

#[test]
fn running_the_same_review_twice_changes_nothing() {
    let w = world();
    let entries = || {
        vec![
            port("198.18.0.1", 22, Some(openssh("9.2p1")), &["eu"]),
            port("198.18.0.10", 3306, Some(mysql()), &["eu"]),
            port("198.18.9.9", 8443, None, &["eu"]),
        ]
    };
    let first = review(&w, vec![], entries(), "2026-11", nov());
    let again = review(&w, first.findings.clone(), entries(), "2026-11", nov());
    assert_eq!(again.new, 0);
    assert_eq!(again.findings, first.findings);
}

#[test]
fn accepted_risk_holds_until_its_date_then_reopens() {
    let w = world();
    let db = || port("198.18.0.10", 3306, Some(mysql()), &["eu"]);
    let mut oct = review(&w, vec![], vec![db()], "2026-10", nov() - day(31));
    oct.findings[0].status =
        Status::AcceptedRisk { by: "ciso".into(), reason: "migration".into(), until: nov() + day(10) };
    assert!(!oct.findings[0].status.is_active(nov()));
    let still = review(&w, oct.findings, vec![db()], "2026-11", nov());
    assert_eq!(still.findings[0].status.name(), "accepted-risk");
    let later = review(&w, still.findings, vec![db()], "2026-12", nov() + day(30));
    assert_eq!(later.findings[0].status.name(), "open");
    assert!(later.findings[0].history.last().unwrap().what.contains("migration"));
}

#[test]
fn an_older_period_never_overrides_a_newer_one() {
    let w = world();
    let db = || port("198.18.0.10", 3306, Some(mysql()), &["eu"]);
    let nov_review = review(&w, vec![], vec![db()], "2026-11", nov());
    let old = review(&w, nov_review.findings.clone(), vec![], "2026-10", nov() - day(31));
    assert_eq!(old.remediated, 0);
}

#[test]
fn a_closure_counts_only_when_a_reprobe_confirmed_it() {
    let w = world();
    let entries = || vec![port("198.18.0.10", 3306, Some(mysql()), &["eu"]), port("198.18.0.11", 22, None, &["eu"])];
    let oct = review(&w, vec![], entries(), "2026-10", nov() - day(31));
    let db: PortRef = ("198.18.0.10".parse().unwrap(), vantage_shared::Proto::Tcp, 3306);
    let ssh: PortRef = ("198.18.0.11".parse().unwrap(), vantage_shared::Proto::Tcp, 22);
    // Planning: both ports are gone; both would close.
    let plan = review(&w, oct.findings.clone(), vec![], "2026-11", nov());
    assert_eq!(plan.closing, [db, ssh].into());
    // The re-probe saw the database port open again: only ssh's closure counts.
    let confirmed = [ssh].into();
    let cover = Coverage { scanned: &|_, _, _| true, confirmed: Some(&confirmed) };
    let out =
        reconcile(oct.findings, Vec::new(), "2026-11".parse().unwrap(), nov(), &w.policy, cover, || unreachable!());
    assert_eq!((out.remediated, out.unconfirmed), (1, 1));
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].key.port, 22);
    assert_eq!(out.closing, [ssh].into());
}

#[test]
fn a_change_of_what_listens_counts_only_when_a_reprobe_confirmed_it() {
    let w = world();
    let oct = review(&w, vec![], vec![port("198.18.0.10", 3306, Some(mysql()), &["eu"])], "2026-10", nov() - day(31));
    let exposed: Vec<_> = oct.findings.iter().filter(|f| f.key.kind == Kind::ExposedService).cloned().collect();
    assert_eq!(exposed.len(), 1, "{:?}", oct.findings);
    let db: PortRef = ("198.18.0.10".parse().unwrap(), vantage_shared::Proto::Tcp, 3306);
    // November: the port is open, but no longer a database.
    let web = ServiceFacts::named("http").product("nginx").version("1.22.1");
    let nov_candidates = || evaluate([port("198.18.0.10", 3306, Some(web.clone()), &["eu"])], 1, w.knowledge(), nov());
    let run = |confirmed: &BTreeSet<PortRef>| {
        let cover = Coverage { scanned: &|_, _, _| true, confirmed: Some(confirmed) };
        let mut n = 10;
        reconcile(exposed.clone(), nov_candidates(), "2026-11".parse().unwrap(), nov(), &w.policy, cover, || {
            n += 1;
            format!("F-{n}")
        })
    };
    // Not confirmed: the exposure stays open, counted as unconfirmed.
    let out = run(&BTreeSet::new());
    assert_eq!((out.remediated, out.unconfirmed), (0, 1));
    assert!(out.changing.is_empty() && out.closing.is_empty());
    // Planning (no confirmation asked) names the port to re-probe; confirmed, it is remediated.
    let plan =
        review(&w, exposed.clone(), vec![port("198.18.0.10", 3306, Some(web.clone()), &["eu"])], "2026-11", nov());
    assert_eq!(plan.changing, [db].into());
    let out = run(&[db].into());
    assert_eq!((out.remediated, out.unconfirmed), (1, 0));
    let f = out.findings.iter().find(|f| f.key.kind == Kind::ExposedService).unwrap();
    assert!(matches!(f.status, Status::Remediated { .. }), "{f:?}");
}

#[test]
fn a_host_answering_on_every_port_is_its_own_finding() {
    let w = world();
    let mut edge = port("198.18.1.5", 0, None, &["eu", "us"]);
    edge.state = vantage_shared::PortState::AnswersAll;
    let real = port("198.18.1.5", 443, Some(ServiceFacts::named("http").product("nginx").version("1.22.1")), &["eu"]);
    let c = evaluate([edge, real], 2, w.knowledge(), nov());
    assert_eq!(kinds(&c, "198.18.1.5", 0), [(Kind::AnswersAll, Severity::Medium)]);
    let all = c.iter().find(|c| c.key.kind == Kind::AnswersAll).unwrap();
    assert!(
        all.sentence.starts_with("198.18.1.5 answers on every port probed from 2 of 2 regions"),
        "{}",
        all.sentence
    );
    assert_eq!(all.owner.as_deref(), Some("web-team"), "198.18.1.0/24 is the web team's in the register");
    // Its real service is judged as any other.
    assert_eq!(kinds(&c, "198.18.1.5", 443), [(Kind::Documented, Severity::Low)]);
}
