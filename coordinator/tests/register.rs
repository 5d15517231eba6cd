//! The justification register as an operator keeps it (`data/register-sample.toml`):
//! judged against a month's ports, its mistakes located, and edited the way
//! the CLI edits it.

use std::net::IpAddr;
use std::time::SystemTime;

use vantage_coordinator::review::register::{
    self, Difference, Judgement, NewEntry, Problem, Register, RegisterError, Selector,
};
use vantage_shared::{Proto, ServiceFacts, TlsFacts};

const SAMPLE: &str = include_str!("data/register-sample.toml");

/// The start of a UTC day.
fn day(date: &str) -> SystemTime {
    humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The 1-based line where `needle` first occurs.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` is not in the text"));
    text[..at].matches('\n').count() + 1
}

fn sample() -> Register {
    Register::parse(SAMPLE).unwrap()
}

fn numbers(entries: Vec<&register::Entry>) -> Vec<usize> {
    entries.iter().map(|e| e.number).collect()
}

#[test]
fn the_sample_parses() {
    let r = sample();
    let owners: Vec<&str> = r.entries().iter().map(|e| e.owner.as_str()).collect();
    assert_eq!(owners, ["web-team", "shop-team", "ops", "partner-desk", "net-team"]);
    assert_eq!(r.entries()[4].proto, Proto::Udp);
    assert_eq!(r.entries()[2].review_by, "2026-12-31");
}

#[test]
fn the_sample_judges_a_months_ports() {
    let r = sample();
    let today = day("2026-11-15");
    let judge = |a: &str, proto, port, facts: Option<&ServiceFacts>| r.judge(addr(a), proto, port, facts, today);

    let nginx = ServiceFacts::named("http").product("nginx").version("1.24.0");
    let j = judge("198.18.1.5", Proto::Tcp, 443, Some(&nginx));
    assert!(matches!(j, Judgement::Documented { entry, expired: false } if entry.number == 1), "{j:?}");
    // The shop front's own entry beats the network's, and wants TLS.
    let j = judge("198.18.1.10", Proto::Tcp, 443, Some(&nginx));
    assert!(
        matches!(&j, Judgement::Different { entry, reasons, .. } if entry.number == 2 && matches!(reasons[..], [Difference::TlsMissing])),
        "{j:?}"
    );
    let mut shop = nginx.clone();
    shop.tls = Some(TlsFacts { version: "TLSv1.3".into(), ..Default::default() });
    assert!(matches!(judge("198.18.1.10", Proto::Tcp, 443, Some(&shop)), Judgement::Documented { .. }));

    let old_ssh = ServiceFacts::named("ssh").product("OpenSSH").version("8.9p1");
    let j = judge("198.18.0.1", Proto::Tcp, 22, Some(&old_ssh));
    let Judgement::Different { reasons, .. } = &j else { panic!("{j:?}") };
    assert_eq!(reasons.iter().map(ToString::to_string).collect::<Vec<_>>(), ["version 8.9p1 is outside >=9.0, <10.0"]);

    // The partner entry is past its review-by day: still documented, flagged.
    let sftp = ServiceFacts::named("ssh").product("OpenSSH").version("8.9p1");
    let j = judge("198.18.2.25", Proto::Tcp, 2222, Some(&sftp));
    assert!(matches!(j, Judgement::Documented { entry, expired: true } if entry.number == 4), "{j:?}");

    let j = judge("198.18.3.4", Proto::Udp, 123, None);
    assert!(matches!(&j, Judgement::Different { reasons, .. } if matches!(reasons[..], [Difference::Unidentified])));
    assert!(matches!(judge("198.18.3.4", Proto::Tcp, 123, None), Judgement::Undocumented));
    assert!(matches!(judge("198.18.1.5", Proto::Tcp, 8080, Some(&nginx)), Judgement::Undocumented));

    assert_eq!(numbers(r.expired(today)), [4]);
    assert_eq!(numbers(r.expired(day("2027-01-01"))), [3, 4]);
}

fn parse_named(text: &str) -> RegisterError {
    Register::parse(text).unwrap_err().in_file("register-sample.toml")
}

#[test]
fn mistakes_name_file_line_entry_and_field() {
    let cases = [
        ("versions = \">=9.0, <10.0\"", "versions = \">=9.0, <\"", 3, "versions"),
        ("review_by = \"2027-06-30\"", "review_by = \"2027-06-31\"", 2, "review_by"),
        ("port = 443\n", "port = 70000\n", 2, "port"),
        ("host = \"198.18.3.0/28\"", "host = \"198.18.3.0/33\"", 5, "host"),
        ("proto = \"udp\"", "proto = \"icmp\"", 5, "proto"),
        ("tls = true\n", "tls = true\ncolour = \"red\"\n", 2, "colour"),
    ];
    for (from, to, entry, field) in cases {
        let text = SAMPLE.replacen(from, to, 1);
        let line = line_of(&text, to.lines().last().unwrap());
        let e = parse_named(&text);
        assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(line), Some(entry), Some(field)), "{to}: {e}");
        let prefix = format!("register-sample.toml:{line}: service {entry}: {field}: ");
        assert!(e.to_string().starts_with(&prefix), "{e}");
    }
}

#[test]
fn a_missing_owner_is_reported_where_its_entry_starts() {
    let text = SAMPLE.replacen("owner = \"net-team\"\n", "", 1);
    let e = parse_named(&text);
    let fifth = text.match_indices("[[service]]").nth(4).unwrap().0;
    let line = text[..fifth].matches('\n').count() + 1;
    assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(line), Some(5), Some("owner")));
    assert!(matches!(e.problem, Problem::Missing), "{e:?}");
}

fn comments(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains('#')).collect()
}

fn gateway() -> NewEntry {
    NewEntry {
        host: "198.18.5.1".into(),
        port: "8443".into(),
        proto: Proto::Tcp,
        service: Some("http".into()),
        product: Some("envoy".into()),
        versions: Some(">=1.30".into()),
        tls: Some(true),
        justification: "API gateway for partners".into(),
        owner: "api-team".into(),
        contact: Some("api@example.invalid".into()),
        review_by: "2027-09-30".into(),
    }
}

#[test]
fn edits_keep_the_operators_comments() {
    let added = register::add_entry(SAMPLE, &gateway()).unwrap();
    assert!(added.starts_with(SAMPLE), "{added}");
    assert_eq!(comments(&added), comments(SAMPLE));
    let r = Register::parse(&added).unwrap();
    assert_eq!(r.entry_for(addr("198.18.5.1"), Proto::Tcp, 8443).map(|e| e.owner.as_str()), Some("api-team"));

    let bastion = Selector::parse("198.18.0.1", "22", Proto::Tcp).unwrap();
    let (renewed, n) = register::set_review_by(&added, &bastion, "2027-06-30").unwrap();
    assert_eq!(n, 1);
    assert!(renewed.contains("review_by = \"2027-06-30\" # agreed for the migration\n"), "{renewed}");
    assert_eq!(numbers(Register::parse(&renewed).unwrap().expired(day("2027-01-01"))), [4]);

    // Written as the last octet's range, the partner's addresses still select their entry.
    let partner = Selector::parse("198.18.2.20-29", "2222", Proto::Tcp).unwrap();
    let (removed, n) = register::remove_entries(&renewed, &partner).unwrap();
    assert_eq!(n, 1);
    let mut expected = comments(SAMPLE);
    expected.retain(|l| !l.starts_with("# The partner's SFTP drop"));
    let mut kept = comments(&removed);
    kept.retain(|l| !l.contains("agreed for the migration"));
    expected.retain(|l| !l.contains("agreed for the migration"));
    assert_eq!(kept, expected);
    let r = Register::parse(&removed).unwrap();
    assert_eq!(r.entries().len(), 5);
    assert!(r.entry_for(addr("198.18.2.25"), Proto::Tcp, 2222).is_none());
}
