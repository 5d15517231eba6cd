//! Fuzzing every built-in parser with proptest: arbitrary bytes, and
//! arbitrary bytes behind each protocol's own header (so the parser gets
//! past its first check and into the length fields and tables), never
//! panic, and whatever comes out is bounded.
//!
//! The case counts are fixed, so the run is bounded in time (a few seconds
//! in CI); `PROPTEST_CASES` raises them for a longer local run.

use proptest::prelude::*;
use vantage_detect::protocols::udp::UdpProbe;
use vantage_detect::protocols::{self, Verdict};
use vantage_detect::{cpe, plan, tls};
use vantage_shared::ServiceFacts;

/// The longest a text field of parsed facts may be.
const MAX_FIELD: usize = 1024;

/// Openings that lead each parser past its first check.
const HEADERS: &[&[u8]] = &[
    b"SSH-2.0-",
    b"220 ",
    b"+OK ",
    b"* OK ",
    b"RFB ",
    b"VERSION ",
    b"@RSYNCD: ",
    b"\xff\xfb",
    b"HTTP/1.1 200 OK\r\nServer: ",
    b"HTTP/1.0 400 Bad Request\r\n\r\n",
    b"\x4a\x00\x00\x00\x0a",
    b"\x20\x00\x00\x00\xff\x6a\x04",
    b"$",
    b"-NOAUTH",
    b"-DENIED Redis",
    b"S",
    b"N",
    b"E\x00\x00\x00\x40S",
    b"R\x00\x00\x00\x08\x00\x00\x00\x00",
    b"\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00",
    b"AMQP",
    b"\x01\x00\x00\x00\x00\x01\x00\x00\x0a\x00\x0a\x00\x09",
    b"\x20\x02\x00\x00",
    b"\x03\x00\x00\x13\x0e\xd0",
    b"\x00\x00\x00\x50\xfeSMB",
    b"\x00\x00\x00\x50\xffSMB",
    b"\x30\x84",
    b"\x30\x25\x02\x01\x01\x64",
    b"\x16\x03\x03",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    let tail = proptest::collection::vec(any::<u8>(), 0..2048);
    prop_oneof![tail.clone(), (proptest::sample::select(HEADERS), tail).prop_map(|(h, t)| [h, t.as_slice()].concat()),]
}

fn probe_name() -> impl Strategy<Value = Option<&'static str>> {
    let mut names: Vec<Option<&'static str>> = plan::Probe::BY_LIKELIHOOD.iter().map(|p| Some(p.name())).collect();
    names.push(None);
    proptest::sample::select(names)
}

fn assert_bounded(f: &ServiceFacts) {
    assert!(!f.service.is_empty());
    for field in [&f.product, &f.version, &f.info].into_iter().flatten() {
        assert!(field.len() <= MAX_FIELD, "field of {} bytes", field.len());
    }
    for c in &f.cpe {
        assert!(c.starts_with("cpe:2.3:") && c.len() <= 3 * MAX_FIELD, "{c}");
    }
}

fn check(v: Verdict, answer: &[u8]) {
    match v {
        Verdict::Match(f) => assert_bounded(&f),
        Verdict::FollowUp { facts, send, refine } => {
            assert_bounded(&facts);
            assert!(send.len() <= 1024);
            // The follow-up's answer is just as hostile.
            assert_bounded(&refine(facts, answer));
        }
        Verdict::Tls | Verdict::No => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_parser_survives_any_answer(probe in probe_name(), bytes in input(), answer in input()) {
        check(protocols::parse(probe, &bytes), &answer);
        let parsers: [protocols::Parser; 13] = [
            protocols::ssh::parse,
            protocols::banner::parse,
            protocols::mysql::parse,
            protocols::http::parse,
            protocols::redis::parse,
            protocols::postgres::parse,
            protocols::mongodb::parse,
            protocols::amqp::parse,
            protocols::mqtt::parse,
            protocols::rdp::parse,
            protocols::smb::parse,
            protocols::ldap::parse,
            |p, b| match protocols::udp::dns_tcp(b) {
                Some(f) => Verdict::Match(f),
                None => protocols::banner::parse(p, b),
            },
        ];
        for parse in parsers {
            check(parse(probe, &bytes), &answer);
        }
    }

    #[test]
    fn udp_parsers_survive_any_datagram(bytes in input()) {
        for probe in UdpProbe::ALL {
            if let Some(f) = probe.parse(&bytes) {
                assert_bounded(&f);
            }
        }
    }

    #[test]
    fn certificates_of_any_shape_give_facts(bytes in input()) {
        let facts = tls::certificate_facts(&bytes);
        assert_eq!(facts.sha256.len(), 64);
        assert!(facts.subject.len() <= 64 * 1024 && facts.sans.len() <= 64);
    }

    #[test]
    fn cpe_components_are_escaped(s in ".{0,64}") {
        let c = cpe::component(&s);
        assert!(!c.is_empty() && c.chars().all(|ch| ch.is_ascii_graphic()), "{c}");
        // Every separator inside a component is quoted.
        for (i, ch) in c.char_indices() {
            assert!(ch != ':' || c[..i].ends_with('\\'), "{c}");
        }
    }
}
