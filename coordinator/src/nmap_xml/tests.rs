//! The report read back by Vantage's own nmap importer, and the escaping
//! of what services and banners send. (tests/tests/nmap_xml.rs validates a
//! real scan's report against nmap's DTD and feeds it to ndiff.)

use std::time::Duration;

use vantage_shared::TlsFacts;

use super::*;
use crate::review::import;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn obs(addr: &str, proto: Proto, port: u16, state: PortState) -> Observation {
    Observation {
        addr: addr.parse().unwrap(),
        proto,
        port,
        state,
        rtt: Duration::from_micros(120),
        seen_at: at(1_796_000_100),
        banner: Vec::new(),
        region: "eu-west".into(),
        agent: "a1".into(),
        service: None,
    }
}

fn run() -> Run {
    Run {
        args: "vantage results 7".into(),
        started: at(1_796_000_000),
        finished: at(1_796_000_200),
        ports: PortSpec::parse("22,53,443,8000-8100").unwrap(),
    }
}

fn render(observations: &[Observation]) -> String {
    let mut out = Vec::new();
    write(&mut out, &run(), observations).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn open_ports_and_their_services_read_back() {
    let mut ssh = obs("198.18.0.2", Proto::Tcp, 22, PortState::Open);
    ssh.banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec();
    let mut facts = ServiceFacts::named("ssh").product("OpenSSH").version("9.2p1").info("protocol 2.0");
    facts.cpe = vec!["cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*".into()];
    ssh.service = Some(facts);
    let mut https = obs("198.18.0.2", Proto::Tcp, 443, PortState::Open);
    let mut web = ServiceFacts::named("http").product("nginx");
    web.tls = Some(TlsFacts {
        version: "TLSv1.3".into(),
        subject: "CN=a.example".into(),
        issuer: "CN=a.example".into(),
        not_after: 1_800_000_000,
        self_signed: true,
        sha256: "ab".repeat(32),
        ..Default::default()
    });
    https.service = Some(web);
    let mut guess = obs("::1", Proto::Udp, 53, PortState::Open);
    guess.service = Some(ServiceFacts { method: Method::PortGuess, ..ServiceFacts::named("domain") });
    let closed = obs("198.18.0.2", Proto::Tcp, 8080, PortState::Closed);
    let tarpit = obs("198.18.0.9", Proto::Tcp, 0, PortState::AnswersAll);
    // Out of order on purpose: the report sorts.
    let text = render(&[https, tarpit, closed, guess, ssh]);

    let back = import::nmap_xml(&text, "x").unwrap();
    let keys: Vec<String> = back.iter().map(|e| format!("{}:{}/{}", e.addr, e.port, e.proto)).collect();
    assert_eq!(keys, ["198.18.0.2:22/tcp", "198.18.0.2:443/tcp", "::1:53/udp"], "{text}");
    let s = back[0].service.as_ref().unwrap();
    assert_eq!(
        (s.service.as_str(), s.product.as_deref(), s.version.as_deref()),
        ("ssh", Some("OpenSSH"), Some("9.2p1"))
    );
    assert_eq!(s.info.as_deref(), Some("protocol 2.0"));
    assert_eq!(s.cpe, ["cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*"]);
    assert_eq!(back[1].service.as_ref().unwrap().service, "ssl/http");
    assert_eq!(back[2].service.as_ref().unwrap().method, Method::PortGuess);
    assert_eq!(back[0].seen_at, at(1_796_000_100));

    assert!(text.contains("<cpe>cpe:/a:openbsd:openssh:9.2p1</cpe>"), "{text}");
    assert!(text.contains(r#"<script id="banner" output="SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"/>"#), "{text}");
    assert!(text.contains(r#"output="Subject: CN=a.example&#xa;Issuer: CN=a.example"#), "{text}");
    assert!(text.contains(r#"<state state="closed" reason="reset" reason_ttl="0"/>"#), "{text}");
    assert!(
        text.contains(r#"<scaninfo type="connect" protocol="tcp" numservices="104" services="22,53,443,8000-8100"/>"#)
    );
    assert!(text.contains(r#"<scaninfo type="udp" protocol="udp""#));
    assert!(text.contains(r#"<hosts up="3" down="0" total="3"/>"#), "{text}");
    assert!(text.contains("comment=\"answers on (nearly) every port"), "{text}");
}

#[test]
fn hostile_service_text_stays_inside_its_attribute() {
    let mut o = obs("198.18.0.3", Proto::Tcp, 8000, PortState::Open);
    let evil = "x\"/><host><address addr=\"198.18.6.6\"/></host><!-- \u{1b}[31m\u{0}\u{7}&amp;";
    o.service = Some(ServiceFacts::named("http").product(evil).version("1\n2\t3"));
    let text = render(&[o]);
    // Still one well-formed report with one host, and the product intact but for what XML cannot carry.
    let back = import::nmap_xml(&text, "x").unwrap();
    assert_eq!(back.len(), 1, "{text}");
    let s = back[0].service.as_ref().unwrap();
    assert_eq!(
        s.product.as_deref(),
        Some("x\"/><host><address addr=\"198.18.6.6\"/></host><!-- \\u{1b}[31m\\u{0}\\u{7}&amp;")
    );
    assert_eq!(s.version.as_deref(), Some("1\n2\t3"));
    assert!(!text.contains('\u{1b}') && !text.contains('\u{0}'));
}

#[test]
fn an_empty_scan_is_still_a_report() {
    let text = render(&[]);
    assert!(import::nmap_xml(&text, "x").unwrap().is_empty());
    assert!(text.contains(r#"<hosts up="0" down="0" total="0"/>"#), "{text}");
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>"), "{text}");
}
