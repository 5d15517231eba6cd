use vantage_shared::TlsFacts;
use vantage_shared::ports::PortProblem;

use super::*;

const REGISTER: &str = r#"# Web and remote access.

[[service]]
host = "198.18.1.0/24"
port = "80,443"
service = "http"
product = "nginx"
versions = ">=1.22, <1.23"
justification = "Public website"
owner = "web-team"
contact = "web@example.invalid"
review_by = "2027-03-31"

[[service]]
host = "198.18.1.10"
port = 443
service = "http"
tls = true
justification = "Shop front, TLS only"
owner = "shop-team"
review_by = 2026-12-31

[[service]]
host = "198.18.2.0-198.18.2.9"
port = "1-1024"
proto = "udp"
justification = "DNS and NTP appliances"
owner = "net-team"
review_by = "2027-01-31"
"#;

/// The start of a UTC day.
fn day(date: &str) -> SystemTime {
    humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn register() -> Register {
    Register::parse(REGISTER).unwrap()
}

fn err(text: &str) -> RegisterError {
    Register::parse(text).unwrap_err()
}

/// An entry's text with one line replaced, added (`field = ...` not present) or removed (`""`).
fn entry_with(field: &str, line: &str) -> String {
    let mut lines: Vec<String> = [
        "[[service]]",
        "host = \"198.18.0.1\"",
        "port = 22",
        "justification = \"bastion\"",
        "owner = \"ops\"",
        "review_by = \"2027-01-01\"",
    ]
    .map(String::from)
    .to_vec();
    match lines.iter().position(|l| l.starts_with(&format!("{field} "))) {
        Some(i) if line.is_empty() => drop(lines.remove(i)),
        Some(i) => lines[i] = line.to_string(),
        None => lines.push(line.to_string()),
    }
    // A first entry that is fine, so that the one at fault is the second.
    format!(
        "[[service]]\nhost = \"198.18.0.2\"\nport = 22\njustification = \"x\"\nowner = \"o\"\nreview_by = \"2027-01-01\"\n\n{}\n",
        lines.join("\n")
    )
}

#[test]
fn entries_parse_with_their_lines_and_defaults() {
    let r = register();
    let e = r.entries();
    assert_eq!(e.len(), 3);
    assert_eq!((e[0].number, e[0].line), (1, 3));
    assert_eq!((e[1].number, e[1].line), (2, 14));
    assert_eq!(e[0].proto, Proto::Tcp);
    assert_eq!(e[2].proto, Proto::Udp);
    assert_eq!(e[0].host_text, "198.18.1.0/24");
    assert_eq!(e[0].host.len(), 256);
    assert_eq!(e[0].ports.len(), 2);
    assert_eq!(e[0].versions.as_ref().map(|v| v.as_str()), Some(">=1.22, <1.23"));
    assert_eq!(e[0].contact.as_deref(), Some("web@example.invalid"));
    // A TOML date works as well as a quoted one.
    assert_eq!(e[1].review_by, "2026-12-31");
    assert_eq!(e[1].tls, Some(true));
    assert!(e[2].service.is_none());
}

#[test]
fn a_bad_range_names_line_entry_and_field() {
    let text = REGISTER.replace(">=1.22, <1.23", ">=1.22, <");
    let e = err(&text).in_file("register.toml");
    assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(8), Some(1), Some("versions")));
    assert!(matches!(&e.problem, Problem::Versions(r) if r.term == "<"), "{e:?}");
    assert!(e.to_string().starts_with("register.toml:8: service 1: versions: `<` is not a version bound"), "{e}");
}

#[test]
fn a_bad_date_is_located() {
    for bad in ["\"next week\"", "\"2027-02-30\"", "\"2027-1-5\"", "2027-01-01T10:00:00"] {
        let e = err(&entry_with("review_by", &format!("review_by = {bad}")));
        assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(13), Some(2), Some("review_by")), "{bad}");
        assert!(matches!(e.problem, Problem::Date(_)), "{bad}: {e:?}");
    }
}

#[test]
fn a_missing_field_is_reported_at_the_entry() {
    for field in ["owner", "justification", "review_by", "host", "port"] {
        let e = err(&entry_with(field, ""));
        assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(8), Some(2), Some(field)), "{field}");
        assert!(matches!(e.problem, Problem::Missing), "{field}: {e:?}");
    }
    let e = err(&entry_with("owner", "owner = \"  \""));
    assert!(matches!(e.problem, Problem::Empty) && e.field.as_deref() == Some("owner"), "{e:?}");
}

#[test]
fn an_unknown_field_is_rejected_at_its_line() {
    let e = err(&entry_with("colour", "colour = \"blue\""));
    assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(14), Some(2), Some("colour")));
    assert!(matches!(e.problem, Problem::UnknownField), "{e:?}");
    let e = err("owner = \"ops\"\n");
    assert!(matches!(e.problem, Problem::UnknownKey) && e.line == Some(1), "{e:?}");
}

#[test]
fn ports_out_of_range_or_of_the_wrong_type_are_rejected() {
    let e = err(&entry_with("port", "port = 70000"));
    assert_eq!((e.line, e.field.as_deref()), (Some(10), Some("port")));
    assert!(matches!(&e.problem, Problem::Port(p) if p.problem == PortProblem::OutOfRange(70000)), "{e:?}");
    let e = err(&entry_with("port", "port = \"22,70000\""));
    assert!(matches!(&e.problem, Problem::Port(p) if p.problem == PortProblem::OutOfRange(70000)), "{e:?}");
    let e = err(&entry_with("port", "port = 0"));
    assert!(matches!(e.problem, Problem::Port(_)), "{e:?}");
    let e = err(&entry_with("port", "port = true"));
    assert!(matches!(e.problem, Problem::Type(_)) && e.line == Some(10), "{e:?}");
}

#[test]
fn hosts_proto_and_service_are_checked() {
    let e = err(&entry_with("host", "host = \"198.18.0.0/33\""));
    assert_eq!((e.line, e.field.as_deref()), (Some(9), Some("host")));
    assert!(matches!(e.problem, Problem::Host(_)), "{e:?}");
    let e = err(&entry_with("host", "host = \"db.example.invalid\""));
    assert!(matches!(e.problem, Problem::Host(_)), "{e:?}");
    let e = err(&entry_with("proto", "proto = \"sctp\""));
    assert!(matches!(&e.problem, Problem::Proto(p) if p == "sctp") && e.line == Some(14), "{e:?}");
    let e = err(&entry_with("service", "service = \"ssl/http\""));
    assert!(matches!(e.problem, Problem::SslPrefix(_)), "{e:?}");
    // A wrong type is reported at the value, with its field.
    let e = err(&entry_with("tls", "tls = \"yes\""));
    assert!(matches!(e.problem, Problem::Type(_)) && e.field.as_deref() == Some("tls") && e.line == Some(14), "{e:?}");
}

#[test]
fn syntax_errors_carry_the_line() {
    let e = err("[[service]]\nhost = \n");
    assert!(matches!(e.problem, Problem::Syntax(_)) && e.line == Some(2), "{e:?}");
    assert!(e.to_string().starts_with("line 2: "), "{e}");
}

#[test]
fn the_most_specific_entry_wins() {
    let text = r#"
[[service]]
host = "198.18.0.0/24"
port = 443
justification = "network"
owner = "a"
review_by = "2027-01-01"

[[service]]
host = "198.18.0.7"
port = "1-1024"
justification = "host, many ports"
owner = "b"
review_by = "2027-01-01"

[[service]]
host = "198.18.0.7"
port = "22"
justification = "host, one port"
owner = "c"
review_by = "2027-01-01"

[[service]]
host = "198.18.0.7"
port = 22
justification = "same again, later"
owner = "d"
review_by = "2027-01-01"
"#;
    let r = Register::parse(text).unwrap();
    let owner = |a: &str, port| r.entry_for(addr(a), Proto::Tcp, port).map(|e| e.owner.as_str());
    // A single host beats its network, even with a wider port spec.
    assert_eq!(owner("198.18.0.7", 443), Some("b"));
    assert_eq!(owner("198.18.0.7", 80), Some("b"));
    // Same host: the narrower port spec; equal specs: the earlier entry.
    assert_eq!(owner("198.18.0.7", 22), Some("c"));
    assert_eq!(owner("198.18.0.8", 443), Some("a"));
    assert_eq!(owner("198.18.0.8", 80), None);
    assert!(r.entry_for(addr("198.18.0.7"), Proto::Udp, 443).is_none());
}

fn judge<'r>(r: &'r Register, a: &str, port: u16, facts: Option<&ServiceFacts>) -> Judgement<'r> {
    r.judge(addr(a), Proto::Tcp, port, facts, day("2026-11-15"))
}

fn reasons(j: Judgement<'_>) -> Vec<Difference> {
    match j {
        Judgement::Different { reasons, .. } => reasons,
        other => panic!("expected a difference, got {other:?}"),
    }
}

fn tls() -> Option<TlsFacts> {
    Some(TlsFacts { version: "TLSv1.3".into(), ..Default::default() })
}

#[test]
fn a_port_as_documented_is_documented() {
    let r = register();
    let nginx = ServiceFacts::named("http").product("nginx").version("1.22.1");
    let j = judge(&r, "198.18.1.20", 80, Some(&nginx));
    assert!(matches!(j, Judgement::Documented { entry, expired: false } if entry.number == 1), "{j:?}");
    // An entry that expects nothing is satisfied by no facts at all.
    let j = r.judge(addr("198.18.2.3"), Proto::Udp, 53, None, day("2026-11-15"));
    assert!(matches!(j, Judgement::Documented { entry, .. } if entry.number == 3), "{j:?}");
    assert!(matches!(judge(&r, "198.18.3.1", 80, Some(&nginx)), Judgement::Undocumented));
    assert!(matches!(judge(&r, "198.18.1.20", 8080, Some(&nginx)), Judgement::Undocumented));
}

#[test]
fn another_service_or_product_differs() {
    let r = register();
    let ssh = ServiceFacts::named("ssh").product("OpenSSH").version("9.2p1");
    let d = reasons(judge(&r, "198.18.1.20", 443, Some(&ssh)));
    assert!(matches!(&d[0], Difference::Service { expected, seen } if expected == "http" && seen == "ssh"), "{d:?}");
    assert!(matches!(&d[1], Difference::Product { expected, seen: Some(s) } if expected == "nginx" && s == "OpenSSH"));
    // The version of another product is not held against the range.
    assert_eq!(d.len(), 2, "{d:?}");
    let apache = ServiceFacts::named("HTTP").product("Apache httpd");
    let d = reasons(judge(&r, "198.18.1.20", 80, Some(&apache)));
    assert!(matches!(&d[..], [Difference::Product { .. }]), "service names compare case-insensitively: {d:?}");
    let unnamed = ServiceFacts::named("http");
    let d = reasons(judge(&r, "198.18.1.20", 80, Some(&unnamed)));
    assert!(matches!(&d[..], [Difference::Product { seen: None, .. }]), "{d:?}");
}

#[test]
fn a_version_outside_the_range_differs() {
    let r = register();
    let old = ServiceFacts::named("http").product("nginx/Debian").version("1.18.0");
    let d = reasons(judge(&r, "198.18.1.20", 80, Some(&old)));
    match &d[..] {
        [Difference::Version { allowed, seen }] => {
            assert_eq!((allowed.as_str(), seen.as_str()), (">=1.22, <1.23", "1.18.0"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d[0].to_string(), "version 1.18.0 is outside >=1.22, <1.23");
}

#[test]
fn an_unknown_version_is_unverifiable() {
    let r = register();
    let bare = ServiceFacts::named("http").product("nginx");
    let d = reasons(judge(&r, "198.18.1.20", 80, Some(&bare)));
    assert!(matches!(&d[..], [Difference::VersionUnverifiable { seen: None, .. }]), "{d:?}");
    assert!(d[0].to_string().contains("unverifiable"));
    let odd = ServiceFacts::named("http").product("nginx").version("unknown");
    let d = reasons(judge(&r, "198.18.1.20", 80, Some(&odd)));
    assert!(matches!(&d[..], [Difference::VersionUnverifiable { seen: Some(s), .. }] if s == "unknown"), "{d:?}");
}

#[test]
fn tls_must_be_as_documented() {
    let r = register();
    let plain = ServiceFacts::named("http");
    let d = reasons(judge(&r, "198.18.1.10", 443, Some(&plain)));
    assert!(matches!(&d[..], [Difference::TlsMissing]), "{d:?}");
    let mut wrapped = ServiceFacts::named("http");
    wrapped.tls = tls();
    assert!(matches!(judge(&r, "198.18.1.10", 443, Some(&wrapped)), Judgement::Documented { .. }));
    // An imported nmap report says `ssl/http` and has no TLS facts.
    let imported = ServiceFacts { method: Method::Nmap, ..ServiceFacts::named("ssl/http") };
    assert!(matches!(judge(&r, "198.18.1.10", 443, Some(&imported)), Judgement::Documented { .. }));
    let text = entry_with("tls", "tls = false");
    let plain_only = Register::parse(&text).unwrap();
    let d = reasons(judge(&plain_only, "198.18.0.1", 22, Some(&wrapped)));
    assert!(matches!(&d[..], [Difference::TlsUnexpected]), "{d:?}");
}

#[test]
fn what_nothing_identified_is_unverifiable() {
    let r = register();
    let d = reasons(judge(&r, "198.18.1.10", 443, None));
    assert!(matches!(&d[..], [Difference::Unidentified]), "{d:?}");
    // A name guessed from the port number is no evidence of the service.
    let guess = ServiceFacts { method: Method::PortGuess, ..ServiceFacts::named("https") };
    let d = reasons(judge(&r, "198.18.1.10", 443, Some(&guess)));
    assert!(matches!(&d[..], [Difference::Unidentified, Difference::TlsMissing]), "{d:?}");
}

#[test]
fn entries_expire_after_their_review_by_day() {
    let r = register();
    // 2026-12-31 is the shop's last day.
    assert!(r.expired(day("2026-12-31")).is_empty());
    let expired: Vec<usize> = r.expired(day("2027-01-01")).iter().map(|e| e.number).collect();
    assert_eq!(expired, [2]);
    let expired: Vec<usize> = r.expired(day("2027-02-01")).iter().map(|e| e.number).collect();
    assert_eq!(expired, [2, 3]);
    let mut facts = ServiceFacts::named("http");
    facts.tls = tls();
    let j = r.judge(addr("198.18.1.10"), Proto::Tcp, 443, Some(&facts), day("2027-01-01"));
    assert!(matches!(j, Judgement::Documented { expired: true, .. }), "{j:?}");
    let j = r.judge(addr("198.18.1.10"), Proto::Tcp, 443, None, day("2027-01-01"));
    assert!(matches!(j, Judgement::Different { expired: true, .. }), "{j:?}");
}
