//! Property tests: hostile probe files and hostile responses never panic,
//! and what comes out stays bounded and printable.

use std::sync::OnceLock;

use proptest::prelude::*;
use vantage_detect::nmap::{MAX_FIELD_LEN, NmapMatch, ProbeDb, cpe22_to_23};
use vantage_shared::Proto;

/// Lines that look like directives, with random tails, and random bytes.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let keyword = prop::sample::select(vec![
        "Exclude ",
        "Probe TCP ",
        "Probe UDP X q|",
        "match x m|",
        "softmatch x m/",
        "match x m|^(.*)$| p/",
        "match x m|^(a)?(.)| v/$",
        "ports ",
        "sslports ",
        "rarity ",
        "totalwaitms ",
        "tcpwrappedms ",
        "fallback ",
        "# ",
        "",
    ]);
    let tail = prop::collection::vec(
        prop_oneof![any::<u8>(), prop::sample::select(b"$()|/\\^[]{}*+?.,:\"0123456789PSUBSTIpvihodcpe: ".to_vec()),],
        0..60,
    );
    prop_oneof![
        (keyword, tail.clone()).prop_map(|(k, t)| [k.as_bytes(), &t].concat()),
        tail,
        Just(b"Probe TCP NULL q||".to_vec()),
        Just(b"Probe TCP GetRequest q|GET / HTTP/1.0\\r\\n\\r\\n|".to_vec()),
    ]
}

fn assert_bounded(m: &NmapMatch) {
    for v in [&m.product, &m.version, &m.info, &m.hostname, &m.ostype, &m.devicetype].into_iter().flatten() {
        assert!(!v.is_empty() && v.len() <= MAX_FIELD_LEN, "{v:?}");
        assert!(!v.chars().any(char::is_control), "{v:?}");
    }
    for c in &m.cpe {
        assert!(c.starts_with("cpe:/") && c.len() <= MAX_FIELD_LEN + 5, "{c:?}");
        assert!(c.bytes().all(|b| (0x21..0x7f).contains(&b)), "{c:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_files_never_panic(lines in prop::collection::vec(line(), 0..40)) {
        let text = lines.join(&b'\n');
        let (db, report) = ProbeDb::parse(&text);
        prop_assert_eq!(report.patterns_compiled + report.patterns_failed.len(), report.match_lines + report.softmatch_lines);
        prop_assert_eq!(report.probes, db.probes().len());
        for e in report.errors.iter().chain(&report.patterns_failed).chain(&report.warnings) {
            prop_assert!(e.line >= 1 && e.line <= report.lines);
            prop_assert!(!e.to_string().is_empty());
        }
        // Whatever loaded can be used.
        for probe in db.probes() {
            let _ = db.match_response(probe, b"220 SSH-2.0-x HTTP/1.0 200 OK\r\n");
        }
        let _ = db.probes_for(Proto::Tcp, 80, 9);
    }

    #[test]
    fn arbitrary_templates_render_bounded(
        pieces in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "$1", "$2", "$3", "$9", "$P(1)", "$P(3)", r#"$SUBST(1,"a","bbbbbbbbbbbbbbbb")"#,
                    r#"$SUBST(3,"\x00","\\")"#, r#"$I(2,">")"#, r#"$I(3,"<")"#, "x", " ", ",", "é",
                ]).prop_map(String::from),
                "[ -~&&[^/$]]{0,8}",
            ],
            0..12,
        ),
        response in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        let template = pieces.concat().replace('/', "");
        let file = format!(
            "Probe TCP NULL q||\nmatch x m|^(.{{0,3}})(.*?)(.*)$|s p/{template}/ v/{template}/ i/{template}/ h/{template}/ o/{template}/ d/{template}/ cpe:/a:{template}:{template}/\n"
        );
        let (db, report) = ProbeDb::parse(file.as_bytes());
        prop_assume!(report.errors.is_empty());
        let found = db.match_response(db.null_probe().unwrap(), &response);
        prop_assert_eq!(found.is_some(), !response.is_empty());
        if let Some(m) = found {
            assert_bounded(&m);
            if let Some(cpe) = m.cpe.first() {
                let _ = cpe22_to_23(cpe);
            }
        }
    }

    #[test]
    fn cpe_conversion_never_panics(s in "cpe:/[aho]?(:[ -~]{0,12}){0,9}", t in any::<String>()) {
        for input in [&s, &t] {
            if let Some(out) = cpe22_to_23(input) {
                prop_assert!(out.starts_with("cpe:2.3:"));
                prop_assert!(out.bytes().all(|b| (0x21..0x7f).contains(&b)));
            }
        }
    }
}

/// Debian's file, when present (tests/nmap_debian.rs insists on it in CI).
fn debian() -> Option<&'static ProbeDb> {
    static DB: OnceLock<Option<ProbeDb>> = OnceLock::new();
    DB.get_or_init(|| ProbeDb::load("/usr/share/nmap/nmap-service-probes").ok().map(|(db, _)| db)).as_ref()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_responses_against_nmaps_file(
        head in prop::sample::select(vec![
            &b""[..], b"SSH-2.0-", b"SSH-2.0-OpenSSH_", b"220 ", b"HTTP/1.1 200 OK\r\nServer: ", b"* OK ",
            b"+OK ", b"\x4a\0\0\0\x0a", b"$12\r\n# Server\r\nredis_version:", b"E\0\0\0\x80SFATAL\0",
        ]),
        tail in prop::collection::vec(any::<u8>(), 0..1500),
        probe in prop::sample::select(vec!["NULL", "GetRequest", "GenericLines", "SMBProgNeg", "redis-server"]),
    ) {
        let Some(db) = debian() else { return Ok(()) };
        let probe = db.find(Proto::Tcp, probe).unwrap();
        let response = [head, &tail].concat();
        if let Some(m) = db.match_response(probe, &response) {
            assert_bounded(&m);
            prop_assert!(!m.service.is_empty());
        }
    }
}
