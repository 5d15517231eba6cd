//! Debian's nmap-service-probes (nmap 7.93): every pattern compiles, and
//! real responses are recognised.
//!
//! The file comes with Debian's `nmap` package. Where it is missing these
//! tests skip, except under CI (`CI` set), where nmap is installed and a
//! missing file is a failure. `NMAP_SERVICE_PROBES` names another file.

use std::sync::OnceLock;

use vantage_detect::nmap::{LoadReport, NmapMatch, ProbeDb, cpe22_to_23};
use vantage_shared::Proto;

const DEFAULT_PATH: &str = "/usr/share/nmap/nmap-service-probes";

fn loaded() -> Option<&'static (ProbeDb, LoadReport)> {
    static DB: OnceLock<Option<(ProbeDb, LoadReport)>> = OnceLock::new();
    let path = std::env::var("NMAP_SERVICE_PROBES").unwrap_or_else(|_| DEFAULT_PATH.into());
    DB.get_or_init(|| match ProbeDb::load(&path) {
        Ok(loaded) => Some(loaded),
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI has nmap installed, but {path}: {e}"),
        Err(e) => {
            eprintln!("skipping: {path}: {e} (install Debian's nmap package)");
            None
        }
    })
    .as_ref()
}

fn db() -> Option<&'static ProbeDb> {
    loaded().map(|(db, _)| db)
}

fn matched(db: &ProbeDb, proto: Proto, probe: &str, response: &[u8]) -> NmapMatch {
    let probe = db.find(proto, probe).unwrap_or_else(|| panic!("no probe {probe}"));
    db.match_response(probe, response)
        .unwrap_or_else(|| panic!("no match for {:?} on {}", String::from_utf8_lossy(response), probe.name()))
}

#[test]
fn every_pattern_compiles() {
    let Some((db, report)) = loaded() else { return };
    eprintln!("{report}");
    let failed: Vec<String> = report.patterns_failed.iter().map(ToString::to_string).collect();
    assert!(failed.is_empty(), "{} patterns failed:\n{}", failed.len(), failed.join("\n"));
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{} lines rejected:\n{}", errors.len(), errors.join("\n"));
    assert_eq!(report.skipped_lines, 0);
    assert!(report.is_clean());
    assert!(report.probes >= 100, "{report}");
    assert!(report.match_lines >= 10_000, "{report}");
    assert!(report.softmatch_lines >= 100, "{report}");
    assert_eq!(report.patterns_compiled, report.match_lines + report.softmatch_lines);
    let rules: usize = db.probes().iter().map(|p| p.rules().len()).sum();
    assert_eq!(rules, report.patterns_compiled);
    assert_eq!(db.probes().len(), report.probes);
}

#[test]
fn structure_of_the_file() {
    let Some(db) = db() else { return };
    let null = db.null_probe().expect("NULL probe");
    assert!(null.payload().is_empty() && null.rules().len() > 3000);
    assert!(db.excluded(Proto::Tcp, 9100) && !db.excluded(Proto::Tcp, 80) && !db.excluded(Proto::Udp, 9100));
    let get = db.find(Proto::Tcp, "GetRequest").unwrap();
    assert_eq!(get.payload(), b"GET / HTTP/1.0\r\n\r\n");
    assert!(get.ports().contains(80) && get.sslports().contains(443));
    // nmap's order for TCP/80: NULL, then the probes whose ports list 80.
    let order = db.probes_for(Proto::Tcp, 80, 7);
    assert_eq!(order[0].name(), "NULL");
    assert_eq!(order[1].name(), "GetRequest");
    assert!(order.iter().any(|p| p.name() == "GenericLines"), "rarity 1, sent at intensity 7");
    assert!(
        order.iter().position(|p| p.name() == "HTTPOptions") < order.iter().position(|p| p.name() == "GenericLines")
    );
    assert!(order.iter().skip(1).all(|p| !p.is_null() && p.proto() == Proto::Tcp));
    let all = db.probes_for(Proto::Tcp, 80, 9);
    assert_eq!(all.len(), db.probes().iter().filter(|p| p.proto() == Proto::Tcp).count());
    assert!(db.probes_for(Proto::Udp, 53, 7).iter().all(|p| p.proto() == Proto::Udp));
    assert!(db.probes_for(Proto::Tcp, 80, 0).len() < order.len());
}

#[test]
fn openssh_banner_on_the_null_probe() {
    let Some(db) = db() else { return };
    let m = matched(db, Proto::Tcp, "NULL", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
    assert_eq!((m.service.as_str(), m.soft, m.product.as_deref()), ("ssh", false, Some("OpenSSH")));
    // nmap 7.93's line reads `v/$2 Debian $3/ i/protocol $1/`: the Debian
    // patch level goes with the version, as `nmap -sV` shows it.
    assert_eq!(m.version.as_deref(), Some("9.2p1 Debian 2+deb12u3"));
    assert_eq!(m.info.as_deref(), Some("protocol 2.0"));
    assert_eq!(m.ostype.as_deref(), Some("Linux"));
    assert_eq!(m.cpe, ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]);
    assert_eq!(cpe22_to_23(&m.cpe[0]).unwrap(), "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*");
}

#[test]
fn nginx_on_get_request() {
    let Some(db) = db() else { return };
    let resp = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 01 Jun 2024 10:00:00 GMT\r\n\
Content-Type: text/html\r\nContent-Length: 615\r\nLast-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n\
Connection: close\r\nETag: \"6434bbbe-267\"\r\nAccept-Ranges: bytes\r\n\r\n<!DOCTYPE html>\n<html>\n<head>\n\
<title>Welcome to nginx!</title>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n</body>\n</html>\n";
    let m = matched(db, Proto::Tcp, "GetRequest", resp);
    assert_eq!((m.service.as_str(), m.soft), ("http", false));
    assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("nginx"), Some("1.22.1")));
    assert_eq!(m.cpe, ["cpe:/a:igor_sysoev:nginx:1.22.1"]);
    // The same answer to HTTPOptions comes through its fallback to GetRequest.
    let m = matched(db, Proto::Tcp, "HTTPOptions", resp);
    assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("nginx"), Some("1.22.1")));
}

/// A MySQL protocol-10 greeting as a server sends it first.
fn mysql_greeting(version: &str) -> Vec<u8> {
    let mut body = vec![0x0a];
    body.extend_from_slice(version.as_bytes());
    body.push(0);
    body.extend_from_slice(&[0x1f, 0, 0, 0]); // thread id 31
    body.extend_from_slice(b"Xy;2&v`K\0"); // salt part 1 and filler
    body.extend_from_slice(&[0xfe, 0xf7, 0x2d, 0x02, 0, 0xff, 0x81, 0x15]); // caps, charset, status, caps
    body.extend_from_slice(&[0; 10]);
    body.extend_from_slice(b"a5/lP}}x:r%=\0mysql_native_password\0");
    let len = body.len() as u32;
    let mut packet = len.to_le_bytes()[..3].to_vec();
    packet.push(0); // sequence id
    packet.extend_from_slice(&body);
    packet
}

#[test]
fn mariadb_and_mysql_greetings() {
    let Some(db) = db() else { return };
    let m = matched(db, Proto::Tcp, "NULL", &mysql_greeting("5.5.5-10.11.6-MariaDB-0+deb12u1"));
    assert_eq!((m.service.as_str(), m.soft, m.product.as_deref()), ("mysql", false, Some("MySQL")));
    assert_eq!(m.version.as_deref(), Some("5.5.5-10.11.6-MariaDB-0+deb12u1"));
    // The version goes into the CPE the way nmap writes it: lower case, `+` escaped.
    assert_eq!(m.cpe, ["cpe:/a:mariadb:mariadb:5.5.5-10.11.6-mariadb-0%2Bdeb12u1"]);
    assert_eq!(
        cpe22_to_23(&m.cpe[0]).unwrap(),
        "cpe:2.3:a:mariadb:mariadb:5.5.5-10.11.6-mariadb-0\\+deb12u1:*:*:*:*:*:*:*"
    );
    let m = matched(db, Proto::Tcp, "NULL", &mysql_greeting("8.0.36"));
    assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("MySQL"), Some("8.0.36")));
    assert_eq!(m.cpe, ["cpe:/a:mysql:mysql:8.0.36"]);
}

#[test]
fn redis_info_reply() {
    let Some(db) = db() else { return };
    let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
redis_mode:standalone\r\nos:Linux 6.1.0-18-amd64 x86_64\r\narch_bits:64\r\n";
    let resp = format!("${}\r\n{info}\r\n", info.len());
    let m = matched(db, Proto::Tcp, "redis-server", resp.as_bytes());
    assert_eq!((m.service.as_str(), m.soft), ("redis", false));
    assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("Redis key-value store"), Some("7.0.15")));
    assert_eq!(m.cpe, ["cpe:/a:redislabs:redis:7.0.15"]);
    // With a password set Redis answers `-NOAUTH`; nmap 7.93's file has no
    // line for it, so nothing may claim another service.
    let noauth =
        db.match_response(db.find(Proto::Tcp, "redis-server").unwrap(), b"-NOAUTH Authentication required.\r\n");
    assert!(noauth.as_ref().is_none_or(|m| m.service == "redis"), "{noauth:?}");
}

/// PostgreSQL's answer to nmap's SMBProgNeg probe, read as a startup packet
/// with protocol version 65363.19778.
fn postgres_error(line: u32) -> Vec<u8> {
    let fields = format!(
        "SFATAL\0VFATAL\0C0A000\0Munsupported frontend protocol 65363.19778: server supports 3.0 to 3.0\0\
Fpostmaster.c\0L{line}\0RProcessStartupPacket\0\0"
    );
    let mut packet = b"E".to_vec();
    packet.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    packet.extend_from_slice(fields.as_bytes());
    packet
}

#[test]
fn postgres_error_reply() {
    let Some(db) = db() else { return };
    // Line 2194 of postmaster.c is PostgreSQL 15's.
    let m = matched(db, Proto::Tcp, "SMBProgNeg", &postgres_error(2194));
    assert_eq!((m.service.as_str(), m.soft), ("postgresql", false));
    assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("PostgreSQL DB"), Some("15")));
    assert_eq!(m.cpe, ["cpe:/a:postgresql:postgresql:15"]);
    // A source line the file does not know: the soft match says what it is.
    let m = matched(db, Proto::Tcp, "SMBProgNeg", &postgres_error(2999));
    assert_eq!((m.service.as_str(), m.soft), ("postgresql", true));
    assert_eq!(m.product.as_deref(), Some("PostgreSQL DB"));
}

#[test]
fn more_banners() {
    let Some(db) = db() else { return };
    /// Probe, response, then the expected service, product and version.
    type Case<'a> = (&'a str, &'a [u8], &'a str, Option<&'a str>, Option<&'a str>);
    let cases: &[Case] = &[
        ("NULL", b"220 (vsFTPd 3.0.3)\r\n", "ftp", Some("vsftpd"), Some("3.0.3")),
        ("NULL", b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n", "smtp", Some("Postfix smtpd"), None),
        (
            "NULL",
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
            "imap",
            Some("Dovecot imapd"),
            None,
        ),
        ("NULL", b"SSH-2.0-dropbear_2022.83\r\n", "ssh", Some("Dropbear sshd"), Some("2022.83")),
    ];
    for &(probe, resp, service, product, version) in cases {
        let m = matched(db, Proto::Tcp, probe, resp);
        assert_eq!(
            (m.service.as_str(), m.product.as_deref(), m.version.as_deref()),
            (service, product, version),
            "{:?} (line {})",
            String::from_utf8_lossy(resp),
            m.line
        );
    }
}

#[test]
fn soft_match_on_a_real_banner() {
    let Some(db) = db() else { return };
    // 7.93 knows "Dovecot ready" and "Dovecot (Ubuntu) ready", not Debian's:
    // only the generic IMAP softmatch applies.
    let resp = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] \
Dovecot (Debian) ready.\r\n";
    let m = matched(db, Proto::Tcp, "NULL", resp);
    assert_eq!((m.service.as_str(), m.soft, m.product), ("imap", true, None));
    // After it nmap only sends probes with lines for imap, and only hard
    // imap matches count; the same banner again gives nothing new.
    assert!(db.null_probe().unwrap().can_detect("imap"));
    assert!(!db.find(Proto::Tcp, "X11Probe").unwrap().can_detect("imap"));
    let generic = db.find(Proto::Tcp, "GenericLines").unwrap();
    assert_eq!(db.match_response_with(generic, resp, Some("imap")), None);
}

#[test]
fn unknown_and_empty_responses() {
    let Some(db) = db() else { return };
    let null = db.null_probe().unwrap();
    assert_eq!(db.match_response(null, b""), None);
    assert_eq!(db.match_response(null, b"HELLO from a service nobody knows v0.1\r\n"), None);
}
