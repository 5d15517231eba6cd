//! MQTT: a CONNECT (3.1.1) draws a CONNACK whose return code tells whether
//! the broker lets anonymous clients in.

use vantage_shared::{Access, ServiceFacts};

use super::Verdict;

/// CONNECT, protocol level 4, clean session, keep-alive 60 s, client id `vantage`.
pub const PROBE: &[u8] = b"\x10\x13\x00\x04MQTT\x04\x02\x00\x3c\x00\x07vantage";

pub fn parse(probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let [0x20, 0x02, _, code, ..] = bytes else { return Verdict::No };
    if probe.is_some_and(|p| p != "mqtt") && *code > 5 {
        return Verdict::No;
    }
    let (access, info) = match code {
        0 => (Access::Open, "anonymous clients accepted"),
        4 | 5 => (Access::AuthRequired, "not authorized"),
        1 => (Access::Unknown, "protocol version refused"),
        _ => (Access::Unknown, "connection refused"),
    };
    Verdict::Match(ServiceFacts::named("mqtt").access(access).info(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connack() {
        assert_eq!(PROBE.len(), 2 + 0x13);
        let Verdict::Match(f) = parse(Some("mqtt"), &[0x20, 2, 0, 0]) else { panic!() };
        assert_eq!(f.access, Access::Open);
        let Verdict::Match(f) = parse(Some("mqtt"), &[0x20, 2, 0, 5]) else { panic!() };
        assert_eq!(f.access, Access::AuthRequired);
        assert!(parse(None, &[0x20, 3, 0, 0]).is_no());
    }
}
