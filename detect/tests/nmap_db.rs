//! ProbeDb on small hand-written files: loading, errors, selection, matching.

use vantage_detect::nmap::{LineErrorKind, MAX_FIELD_LEN, MAX_RESPONSE_LEN, NmapMatch, ProbeDb, cpe22_to_23};
use vantage_shared::Proto;

const FILE: &str = r#"# A small probes file in nmap's format.
Exclude T:9100-9107,U:30000-30010

Probe TCP NULL q||
totalwaitms 6000
tcpwrappedms 3000
softmatch ftp m/^220 /
match smtp m/^220 .*ESMTP/ p/Some SMTP/
match ftp m/^220 ProFTPD ([\d.]+)/ p/ProFTPD/ v/$1/ cpe:/a:proftpd:proftpd:$1/
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)\r?\n| p/OpenSSH/ v/$2/ i/protocol $1/ cpe:/a:openbsd:openssh:$2/a
match echo m|^(.*)$|s p/$P(1)/ v/$SUBST(1,"_",".")/ i/$I(1,">")/ h/$1/ cpe:/a:x:$1/

Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80,8000-8010
sslports 443
match http m|^HTTP/1\.[01] \d\d\d .*\r\nServer: nginx/([\d.]+)\r\n|s p/nginx/ v/$1/ cpe:/a:igor_sysoev:nginx:$1/
softmatch http m|^HTTP/1\.[01] \d\d\d|

Probe TCP HTTPOptions q|OPTIONS / HTTP/1.0\r\n\r\n|
rarity 4
ports 80
fallback GetRequest
match rtsp m|^RTSP/1\.0 200 OK\r\n| p/Generic RTSP/

Probe UDP DNSStatusRequest q|\0\0\x10\0\0\0\0\0\0\0\0\0|
rarity 1
ports 53
match domain m|^\0\0\x90\x04| p/a DNS server/

Probe TCP DNSStatusRequestTCP q|\0\x0C\0\0\x10\0\0\0\0\0\0\0\0\0|
rarity 8
ports 53
fallback DNSStatusRequest
match domain-tcp m|^\0\x0c| p/a TCP DNS server/

Probe TCP Rare q|x| no-payload
rarity 9
match rare m|^rare|
"#;

fn db() -> ProbeDb {
    let (db, report) = ProbeDb::parse(FILE.as_bytes());
    assert!(report.is_clean(), "{report}: {:?} {:?}", report.errors, report.patterns_failed);
    db
}

fn names(probes: &[&vantage_detect::nmap::Probe]) -> Vec<String> {
    probes.iter().map(|p| p.name().to_string()).collect()
}

#[test]
fn loads_everything_with_counts() {
    let (db, report) = ProbeDb::parse(FILE.as_bytes());
    assert_eq!(report.lines, FILE.lines().count());
    assert_eq!(report.probes, 6);
    assert_eq!(report.match_lines, 9);
    assert_eq!(report.softmatch_lines, 2);
    assert_eq!(report.patterns_compiled, 11);
    assert!(report.patterns_failed.is_empty() && report.errors.is_empty() && report.warnings.is_empty());
    assert!(report.to_string().contains("6 probes"), "{report}");

    let null = db.null_probe().unwrap();
    assert!(null.is_null() && null.payload().is_empty() && null.proto() == Proto::Tcp);
    assert_eq!((null.totalwaitms(), null.tcpwrappedms(), null.rarity()), (Some(6000), Some(3000), 5));
    assert_eq!(null.total_wait(), std::time::Duration::from_secs(6));
    assert_eq!(null.rules().len(), 5);
    assert!(null.rules()[0].is_soft() && null.rules()[0].service() == "ftp" && null.rules()[0].line() == 7);

    let get = db.find(Proto::Tcp, "GetRequest").unwrap();
    assert_eq!(get.payload(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((get.rarity(), get.totalwaitms()), (1, None));
    assert!(get.ports().contains(8005) && !get.ports().contains(443) && get.sslports().contains(443));
    assert!(get.can_detect("http") && !get.can_detect("ssh"));
    assert_eq!(db.find(Proto::Udp, "DNSStatusRequest").unwrap().payload(), b"\0\0\x10\0\0\0\0\0\0\0\0\0");
    assert!(db.find(Proto::Tcp, "Rare").unwrap().no_payload());
    assert!(db.find(Proto::Udp, "GetRequest").is_none());
}

#[test]
fn exclude() {
    let db = db();
    assert!(db.excluded(Proto::Tcp, 9100) && db.excluded(Proto::Tcp, 9107) && !db.excluded(Proto::Tcp, 9108));
    assert!(!db.excluded(Proto::Udp, 9100) && db.excluded(Proto::Udp, 30005) && !db.excluded(Proto::Tcp, 30005));
}

#[test]
fn probe_order_follows_nmap() {
    let db = db();
    // NULL, then the probes listing port 80 in file order, then the rest by intensity.
    assert_eq!(names(&db.probes_for(Proto::Tcp, 80, 7)), ["NULL", "GetRequest", "HTTPOptions"]);
    assert_eq!(
        names(&db.probes_for(Proto::Tcp, 80, 9)),
        ["NULL", "GetRequest", "HTTPOptions", "DNSStatusRequestTCP", "Rare"]
    );
    // A port-listed probe is sent whatever its rarity; others need rarity <= intensity.
    assert_eq!(names(&db.probes_for(Proto::Tcp, 53, 0)), ["NULL", "DNSStatusRequestTCP"]);
    assert_eq!(names(&db.probes_for(Proto::Tcp, 22, 0)), ["NULL"]);
    assert_eq!(names(&db.probes_for(Proto::Tcp, 22, 4)), ["NULL", "GetRequest", "HTTPOptions"]);
    assert_eq!(names(&db.probes_for(Proto::Tcp, 22, 200)), names(&db.probes_for(Proto::Tcp, 22, 9)), "clamped to 9");
    // sslports count for probes_for; probes_for_tunnel picks ports or sslports.
    assert_eq!(names(&db.probes_for(Proto::Tcp, 443, 0)), ["NULL", "GetRequest"]);
    assert_eq!(names(&db.probes_for_tunnel(Proto::Tcp, 443, 0, false)), ["NULL"]);
    assert_eq!(names(&db.probes_for_tunnel(Proto::Tcp, 443, 0, true)), ["NULL", "GetRequest"]);
    assert_eq!(names(&db.probes_for_tunnel(Proto::Tcp, 80, 0, true)), ["NULL"]);
    // UDP: no NULL probe.
    assert_eq!(names(&db.probes_for(Proto::Udp, 53, 7)), ["DNSStatusRequest"]);
    assert_eq!(names(&db.probes_for(Proto::Udp, 5353, 0)), Vec::<String>::new());
}

fn m(db: &ProbeDb, probe: &str, response: &[u8]) -> Option<NmapMatch> {
    let proto = if probe == "DNSStatusRequest" { Proto::Udp } else { Proto::Tcp };
    db.match_response(db.find(proto, probe).unwrap(), response)
}

#[test]
fn hard_match_with_templates() {
    let db = db();
    let found = m(&db, "NULL", b"SSH-2.0-OpenSSH_9.2p1\r\n").unwrap();
    assert_eq!(
        found,
        NmapMatch {
            service: "ssh".into(),
            soft: false,
            product: Some("OpenSSH".into()),
            version: Some("9.2p1".into()),
            info: Some("protocol 2.0".into()),
            hostname: None,
            ostype: None,
            devicetype: None,
            cpe: vec!["cpe:/a:openbsd:openssh:9.2p1".into()],
            line: 10,
            probe: "NULL".into(),
        }
    );
    assert_eq!(cpe22_to_23(&found.cpe[0]).unwrap(), "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*");
}

#[test]
fn soft_match_then_only_hard_matches_of_that_service() {
    let db = db();
    // softmatch ftp, then `match smtp` would match but is another service:
    // skipped; nothing else matches, so the soft match is the answer.
    let found = m(&db, "NULL", b"220 mail ESMTP ready\r\n").unwrap();
    assert_eq!((found.service.as_str(), found.soft, found.line, found.product), ("ftp", true, 7, None));
    // A hard match of the same service after the soft match wins.
    let found = m(&db, "NULL", b"220 ProFTPD 1.3.8 Server (ESMTP?)\r\n").unwrap();
    assert_eq!((found.service.as_str(), found.soft, found.version.as_deref()), ("ftp", false, Some("1.3.8")));
    assert_eq!(found.cpe, ["cpe:/a:proftpd:proftpd:1.3.8"]);
    // A soft match from an earlier probe: only hard matches of that service count.
    let null = db.null_probe().unwrap();
    assert_eq!(db.match_response_with(null, b"SSH-2.0-OpenSSH_9.2p1\r\n", Some("ftp")), None);
    let found = db.match_response_with(null, b"220 ProFTPD 1.3.8\r\n", Some("ftp")).unwrap();
    assert!(!found.soft && found.version.as_deref() == Some("1.3.8"));
    assert_eq!(db.match_response_with(null, b"220 x ESMTP\r\n", Some("ftp")), None, "soft lines don't count then");
}

#[test]
fn fallbacks_then_null() {
    let db = db();
    let nginx = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n";
    let found = m(&db, "GetRequest", nginx).unwrap();
    assert_eq!(
        (found.product.as_deref(), found.version.as_deref(), found.probe.as_str()),
        (Some("nginx"), Some("1.22.1"), "GetRequest")
    );
    // HTTPOptions has no http line of its own: GetRequest's lines through `fallback`.
    let found = m(&db, "HTTPOptions", nginx).unwrap();
    assert_eq!((found.service.as_str(), found.probe.as_str()), ("http", "GetRequest"));
    // Its own line first.
    assert_eq!(m(&db, "HTTPOptions", b"RTSP/1.0 200 OK\r\n").unwrap().service, "rtsp");
    // Any TCP probe falls back to the NULL probe's lines at the end.
    assert_eq!(m(&db, "GetRequest", b"SSH-2.0-OpenSSH_9.2p1\r\n").unwrap().probe, "NULL");
    // Soft http from GetRequest.
    let found = m(&db, "GetRequest", b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap();
    assert!(found.soft && found.service == "http");
    // A TCP probe may fall back to a UDP probe of that name (nmap's DNS probes do).
    assert_eq!(m(&db, "DNSStatusRequestTCP", b"\0\0\x90\x04").unwrap().service, "domain");
    // UDP probes do not fall back to NULL.
    assert_eq!(m(&db, "DNSStatusRequest", b"SSH-2.0-OpenSSH_9.2p1\r\n"), None);
    assert_eq!(m(&db, "DNSStatusRequest", b"\0\0\x90\x04\0").unwrap().service, "domain");
    // Nothing matches an empty response.
    assert_eq!(m(&db, "NULL", b""), None);
}

#[test]
fn template_forms_end_to_end() {
    let db = db();
    // match echo m|^(.*)$|s p/$P(1)/ v/$SUBST(1,"_",".")/ i/$I(1,">")/ h/$1/ cpe:/a:x:$1/
    let found = m(&db, "NULL", b"1_2\x01").unwrap();
    assert_eq!(found.service, "echo");
    assert_eq!(found.product.as_deref(), Some("1_2"));
    assert_eq!(found.version.as_deref(), Some("1.2\\x01"));
    assert_eq!(found.info.as_deref(), Some(u64::from_be_bytes([0, 0, 0, 0, b'1', b'_', b'2', 1]).to_string().as_str()));
    assert_eq!(found.hostname.as_deref(), Some("1_2\\x01"));
    assert_eq!(found.cpe, ["cpe:/a:x:1_2%01"]);
    // More than 8 bytes: no integer, so no info at all.
    let found = m(&db, "NULL", b"123456789").unwrap();
    assert_eq!(found.info, None);
    // Hostile input: values stay bounded and printable.
    let big: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let found = m(&db, "NULL", &big).unwrap();
    for v in [&found.product, &found.version, &found.info, &found.hostname].into_iter().flatten() {
        assert!(v.len() <= MAX_FIELD_LEN && !v.chars().any(char::is_control), "{v:?}");
    }
    assert!(found.cpe.iter().all(|c| c.len() <= MAX_FIELD_LEN + 5));
}

#[test]
fn long_responses_are_cut() {
    let db = db();
    let mut resp = b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec();
    assert!(m(&db, "NULL", &resp).is_some_and(|f| f.service == "ssh"));
    // `^(.*)$` with /s needs the end of the response: past the cut it still matches (at the cut).
    resp = vec![b'a'; MAX_RESPONSE_LEN * 4];
    let found = m(&db, "NULL", &resp).unwrap();
    assert_eq!(found.service, "echo");
}

#[test]
fn malformed_lines_are_reported_and_the_rest_loads() {
    let text = "\
match ssh m/^SSH/
Exclude T:1
Probe TCP NULL q||
match ssh m|^SSH-([\\d.]+)-| p/OpenSSH/ v/$1/
match broken m|^(unclosed| p/x/
match ssh m|^x| p/unterminated
bogus directive here
rarity 12
ports 1,,2
Exclude T:2
fallback Nowhere
match ok m|^ok|
Probe TCP NULL q||
match lost m|^lost|
rarity 3
Probe UDP Bad q|\\q|
match lost2 m|^lost2|
Probe TCP Last q|x|
ports 7
ports 8
match last m|^last| p/Last/ v/$1/
";
    let (db, report) = ProbeDb::parse(text.as_bytes());
    let lines: Vec<(usize, &LineErrorKind)> = report.errors.iter().map(|e| (e.line, &e.kind)).collect();
    assert!(matches!(lines[0], (1, LineErrorKind::OutsideProbe("match"))), "{lines:?}");
    assert!(matches!(lines[1], (6, LineErrorKind::Syntax { directive: "match", .. })), "{lines:?}");
    assert!(matches!(lines[2], (7, LineErrorKind::UnknownDirective(d)) if d == "bogus"), "{lines:?}");
    assert!(matches!(lines[3], (8, LineErrorKind::Syntax { directive: "rarity", .. })), "{lines:?}");
    assert!(matches!(lines[4], (9, LineErrorKind::Syntax { directive: "ports", .. })), "{lines:?}");
    assert!(matches!(lines[5], (10, LineErrorKind::MisplacedExclude)), "{lines:?}");
    assert!(matches!(lines[6], (11, LineErrorKind::UnknownFallback(n)) if n == "Nowhere"), "{lines:?}");
    assert!(matches!(lines[7], (13, LineErrorKind::DuplicateProbe { first: 3, .. })), "{lines:?}");
    assert!(matches!(lines[8], (16, LineErrorKind::Probe(_))), "{lines:?}");
    assert!(matches!(lines[9], (20, LineErrorKind::Repeated("ports"))), "{lines:?}");
    assert_eq!(lines.len(), 10, "{lines:?}");
    // Line 2's Exclude before any Probe is fine.
    assert!(db.excluded(Proto::Tcp, 1) && !db.excluded(Proto::Tcp, 2));
    // The pattern that PCRE2 rejects, with its line and PCRE2's reason.
    assert_eq!(report.patterns_failed.len(), 1);
    assert_eq!(report.patterns_failed[0].line, 5);
    assert!(
        report.patterns_failed[0].to_string().starts_with("line 5: pattern does not compile"),
        "{}",
        report.patterns_failed[0]
    );
    // Lines under a rejected Probe are skipped, and counted.
    assert_eq!(report.skipped_lines, 3);
    // $1 without a group loads with a warning.
    assert_eq!(report.warnings.len(), 1);
    assert!(matches!(report.warnings[0].kind, LineErrorKind::NoSuchGroup { group: 1, groups: 0 }));
    assert_eq!(report.warnings[0].line, 21);
    assert!(!report.is_clean());
    // The rest works.
    assert_eq!((report.probes, report.match_lines, report.softmatch_lines, report.patterns_compiled), (2, 4, 0, 3));
    let found = db.match_response(db.null_probe().unwrap(), b"SSH-2.0-x").unwrap();
    assert_eq!((found.product.as_deref(), found.version.as_deref()), (Some("OpenSSH"), Some("2.0")));
    assert_eq!(db.match_response(db.null_probe().unwrap(), b"ok").unwrap().service, "ok");
    let last = db.find(Proto::Tcp, "Last").unwrap();
    assert!(last.ports().contains(7) && !last.ports().contains(8));
    let found = db.match_response(last, b"last").unwrap();
    assert_eq!((found.product.as_deref(), found.version), (Some("Last"), None));
}

#[test]
fn errors_read_well() {
    let (_, report) = ProbeDb::parse(b"Probe TCP NULL q||\nrarity 0\n");
    assert_eq!(report.errors[0].to_string(), "line 2: rarity line: `0` is not a number from 1 to 9");
    let (_, report) = ProbeDb::parse(b"Probe TCP NULL q||\nmatch x m/a/ p/$7x/\n");
    assert_eq!(report.errors.len(), 0);
    assert_eq!(report.warnings[0].to_string(), "line 2: a template uses group $7 but the pattern has 0 capture groups");
}

#[test]
fn crlf_and_no_final_newline() {
    let (db, report) = ProbeDb::parse(b"Probe TCP NULL q||\r\nmatch a m|^a$| p/A/\r\nmatch b m|^b|");
    assert!(report.is_clean(), "{:?}", report.errors);
    assert_eq!(report.lines, 3);
    assert_eq!(db.match_response(db.null_probe().unwrap(), b"a").unwrap().product.as_deref(), Some("A"));
    assert_eq!(db.match_response(db.null_probe().unwrap(), b"b").unwrap().service, "b");
}

#[test]
fn a_probe_of_another_database_uses_its_own_lines() {
    let a = db();
    let (b, _) = ProbeDb::parse(b"Probe TCP Other q|x|\nmatch other m|^o|\n");
    let other = b.find(Proto::Tcp, "Other").unwrap();
    assert_eq!(a.match_response(other, b"o").unwrap().service, "other");
    // ... and the NULL probe of the database asked.
    assert_eq!(a.match_response(other, b"SSH-2.0-OpenSSH_1\n").unwrap().service, "ssh");
    // Same name in both: the asked database's probe is used.
    let (c, _) = ProbeDb::parse(b"Probe TCP GetRequest q|x|\nmatch mine m|^HTTP|\n");
    let theirs = c.find(Proto::Tcp, "GetRequest").unwrap();
    assert_eq!(a.match_response(theirs, b"HTTP/1.0 200 OK\r\n").unwrap().service, "http");
}

#[test]
fn load_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("vantage-nmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nmap-service-probes");
    std::fs::write(&path, FILE).unwrap();
    let (db, report) = ProbeDb::load(&path).unwrap();
    assert_eq!((report.probes, db.probes().len()), (6, 6));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(ProbeDb::load(dir.join("missing")).is_err());
}

#[test]
fn the_database_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<ProbeDb>();
    shareable::<NmapMatch>();
    let db = std::sync::Arc::new(db());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let db = std::sync::Arc::clone(&db);
            std::thread::spawn(move || {
                let null = db.null_probe().unwrap();
                (0..200).all(|_| db.match_response(null, b"SSH-2.0-OpenSSH_9.2p1\r\n").is_some())
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}
