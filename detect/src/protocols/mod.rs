//! Built-in probes and parsers, a module per protocol.
//!
//! A parser looks at what a service said (to nothing, or to one of our
//! probes) and either recognises it or passes. Parsers never trust lengths
//! or text they are given: every input is bounded bytes from a stranger, and
//! every parser is fuzzed (see the proptests in each module and
//! `tests/parsers_fuzz.rs`).
//!
//! [`parse`] tries every parser in a fixed order, most specific first, so
//! the same bytes always give the same answer whichever probe drew them.

pub mod amqp;
pub mod banner;
pub mod http;
pub mod ldap;
pub mod mongodb;
pub mod mqtt;
pub mod mysql;
pub mod postgres;
pub mod rdp;
pub mod redis;
pub mod smb;
pub mod ssh;
pub mod udp;

use vantage_shared::ServiceFacts;

/// What a parser made of a response.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Not this protocol.
    No,
    /// Recognised.
    Match(ServiceFacts),
    /// Recognised, and one more exchange on the same connection would tell
    /// more (PostgreSQL's startup after its SSL answer, SMTP vs FTP).
    FollowUp { facts: ServiceFacts, send: Vec<u8>, refine: Refine },
    /// A TLS record: the conversation must go on inside TLS.
    Tls,
}

impl Verdict {
    pub fn is_no(&self) -> bool {
        matches!(self, Verdict::No)
    }
}

/// How a follow-up's answer refines the facts.
pub type Refine = fn(ServiceFacts, &[u8]) -> ServiceFacts;

/// A protocol's parser: the probe that drew the bytes (if any), and the bytes.
pub type Parser = fn(Option<&str>, &[u8]) -> Verdict;

/// A response to one of the built-in probes, or to none (`probe` = `None`).
pub fn parse(probe: Option<&str>, bytes: &[u8]) -> Verdict {
    if bytes.is_empty() {
        return Verdict::No;
    }
    if looks_like_tls(bytes) {
        return Verdict::Tls;
    }
    if probe == Some("dns")
        && let Some(f) = udp::dns_tcp(bytes)
    {
        return Verdict::Match(f);
    }
    let parsers: [Parser; 12] = [
        ssh::parse,
        mysql::parse,
        http::parse,
        redis::parse,
        postgres::parse,
        mongodb::parse,
        amqp::parse,
        mqtt::parse,
        rdp::parse,
        smb::parse,
        ldap::parse,
        banner::parse,
    ];
    parsers.iter().map(|p| p(probe, bytes)).find(|v| !v.is_no()).unwrap_or(Verdict::No)
}

/// The facts of a match; panics on anything else (tests only).
#[cfg(test)]
pub(crate) fn matched(v: Verdict) -> ServiceFacts {
    match v {
        Verdict::Match(f) => f,
        other => panic!("expected a match, got {other:?}"),
    }
}

/// A TLS record header: handshake or alert, SSL 3.0 to TLS 1.3 record versions.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

/// The first line of a text response, without its line ending, if it is
/// valid UTF-8 (lossy otherwise: banners are not always clean).
pub fn first_line(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
    let line = &bytes[..end.min(512)];
    String::from_utf8_lossy(line).trim_end_matches('\r').to_string()
}

/// Splits `Product/1.2.3` or `Product_1.2.3` into product and version.
pub fn split_version(token: &str, seps: &[char]) -> (String, Option<String>) {
    match token.find(seps) {
        Some(i) if token[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => {
            (token[..i].to_string(), Some(token[i + 1..].to_string()))
        }
        _ => (token.to_string(), None),
    }
}

/// The leading version-looking part of `s`: digits, dots, letters and
/// `-`/`+`/`~`, stopping at whitespace or anything else.
pub fn version_prefix(s: &str) -> Option<String> {
    let v: String =
        s.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~' | '_')).collect();
    let v = v.trim_end_matches(['.', '-']).to_string();
    (v.starts_with(|c: char| c.is_ascii_digit()) && v.len() <= 64).then_some(v)
}
