//! PostgreSQL: an `SSLRequest` draws a single `S` or `N`; a startup message
//! for a user that should not exist then draws an authentication request or
//! an error. The server states its version only to a client it let in (the
//! `server_version` parameter), which is itself the finding: trust
//! authentication on an exposed port.

use vantage_shared::{Access, ServiceFacts};

use super::{Verdict, version_prefix};
use crate::cpe;

/// SSLRequest: length 8, code 80877103.
pub const SSL_REQUEST: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A protocol 3.0 startup message for user and database `vantage`.
pub fn startup() -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for (k, v) in [("user", "vantage"), ("database", "vantage"), ("application_name", "vantage-scan")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

fn postgres() -> ServiceFacts {
    ServiceFacts::named("postgresql").product("PostgreSQL DB")
}

pub fn parse(probe: Option<&str>, bytes: &[u8]) -> Verdict {
    match (probe, bytes) {
        (Some("postgres"), [b'S' | b'N']) => {
            let info = if bytes[0] == b'S' { "SSL supported" } else { "SSL not offered" };
            Verdict::FollowUp { facts: postgres().info(info), send: startup(), refine }
        }
        (Some("postgres"), [b'E', ..]) | (_, [b'E', _, _, _, _, b'S', ..]) if error_fields(bytes).is_some() => {
            Verdict::Match(refine(postgres(), bytes))
        }
        _ => Verdict::No,
    }
}

/// The startup answer: authentication request or error.
fn refine(facts: ServiceFacts, answer: &[u8]) -> ServiceFacts {
    let keep = facts.info.clone().unwrap_or_default();
    let with = |f: ServiceFacts, more: &str| {
        let info = [keep.as_str(), more].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("; ");
        f.info(info)
    };
    match answer {
        [b'R', _, _, _, _, a, b, c, d, ..] => match u32::from_be_bytes([*a, *b, *c, *d]) {
            0 => {
                let mut f = with(facts, "no authentication").access(Access::Open);
                if let Some(v) = parameter(answer, "server_version") {
                    let version = version_prefix(&v).unwrap_or_default();
                    f.cpe = vec![cpe::application("postgresql", "postgresql", &version)];
                    f = f.version(version);
                }
                f
            }
            3 => with(facts, "password").access(Access::AuthRequired),
            5 => with(facts, "md5").access(Access::AuthRequired),
            10 => with(facts, "SCRAM; 10 or later").access(Access::AuthRequired),
            other => with(facts, &format!("auth method {other}")).access(Access::AuthRequired),
        },
        [b'E', ..] => match error_fields(answer) {
            // The non-localised severity (V) exists since 9.6.
            Some(fields) => {
                let code = fields.iter().find(|(k, _)| *k == b'C').map(|(_, v)| v.as_str()).unwrap_or("");
                let since = if fields.iter().any(|(k, _)| *k == b'V') { "; 9.6 or later" } else { "" };
                let f = with(facts, &format!("error {code}{since}"));
                if code == "28000" || code == "28P01" { f.access(Access::AuthRequired) } else { f }
            }
            None => facts,
        },
        _ => facts,
    }
}

/// Fields of an ErrorResponse: (type byte, text) pairs, NUL-separated.
fn error_fields(bytes: &[u8]) -> Option<Vec<(u8, String)>> {
    let len = u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?) as usize;
    if !(8..=64 * 1024).contains(&len) {
        return None;
    }
    let body = bytes.get(5..(1 + len).min(bytes.len()))?;
    let mut fields = Vec::new();
    for field in body.split(|&b| b == 0).take(32) {
        if let [kind, text @ ..] = field {
            fields.push((*kind, String::from_utf8_lossy(&text[..text.len().min(200)]).to_string()));
        }
    }
    fields.iter().any(|(k, _)| *k == b'S').then_some(fields)
}

/// A ParameterStatus value after authentication succeeded.
fn parameter(bytes: &[u8], name: &str) -> Option<String> {
    let mut needle = name.as_bytes().to_vec();
    needle.push(0);
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_slice())? + needle.len();
    let value = &bytes[at..];
    let end = value.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&value[..end.min(100)]).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_answer_then_startup() {
        let Verdict::FollowUp { facts, send, refine } = parse(Some("postgres"), b"N") else { panic!() };
        assert_eq!(send, startup());
        let mut err = b"E\0\0\0\x5cSFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry for host\0Fauth.c\0L543\0RClientAuthentication\0\0".to_vec();
        let len = (err.len() - 1) as u32;
        err[1..5].copy_from_slice(&len.to_be_bytes());
        let f = refine(facts, &err);
        assert_eq!(f.info.as_deref(), Some("SSL not offered; error 28000; 9.6 or later"));
        assert_eq!(f.access, Access::AuthRequired);
        assert!(parse(None, b"N").is_no());
    }

    #[test]
    fn trust_authentication_shows_the_version() {
        let mut ok = b"R\0\0\0\x08\0\0\0\0".to_vec();
        ok.extend_from_slice(b"S\0\0\0\x2dserver_version\x0015.18 (Debian 15.18-0+deb12u1)\0");
        let f = refine(postgres(), &ok);
        assert_eq!((f.version.as_deref(), f.access), (Some("15.18"), Access::Open));
        let f = refine(postgres(), b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0");
        assert_eq!(f.access, Access::AuthRequired);
    }
}
