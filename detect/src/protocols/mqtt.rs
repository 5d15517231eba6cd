//! MQTT: a CONNECT (3.1.1) draws a CONNACK whose return code tells whether
//! the broker lets anonymous clients in. A broker that does is then asked
//! for `$SYS/broker/version`, where Mosquitto names itself.

use vantage_shared::{Access, ServiceFacts};

use super::{Verdict, version_prefix};
use crate::cpe;

/// CONNECT, protocol level 4, clean session, keep-alive 60 s, client id `vantage`.
pub const PROBE: &[u8] = b"\x10\x13\x00\x04MQTT\x04\x02\x00\x3c\x00\x07vantage";

/// SUBSCRIBE (packet id 1) to `$SYS/broker/version`, QoS 0.
pub const SUBSCRIBE_VERSION: &[u8] = b"\x82\x18\x00\x01\x00\x13$SYS/broker/version\x00";

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
    let facts = ServiceFacts::named("mqtt").access(access).info(info);
    if *code == 0 {
        return Verdict::FollowUp { facts, send: SUBSCRIBE_VERSION.to_vec(), refine };
    }
    Verdict::Match(facts)
}

/// The retained `$SYS/broker/version` message, if the broker sent one.
fn refine(facts: ServiceFacts, answer: &[u8]) -> ServiceFacts {
    const MARK: &[u8] = b"mosquitto version ";
    let Some(at) = answer.windows(MARK.len()).position(|w| w == MARK) else { return facts };
    let rest = String::from_utf8_lossy(&answer[at + MARK.len()..answer.len().min(at + MARK.len() + 32)]).to_string();
    let Some(v) = version_prefix(&rest) else { return facts.product("Mosquitto") };
    let mut f = facts.product("Mosquitto").version(&v);
    f.cpe = vec![cpe::application("eclipse", "mosquitto", &v)];
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connack() {
        assert_eq!(PROBE.len(), 2 + 0x13);
        let Verdict::FollowUp { facts, send, refine } = parse(Some("mqtt"), &[0x20, 2, 0, 0]) else { panic!() };
        assert_eq!(facts.access, Access::Open);
        assert_eq!(send.len(), 2 + 0x18);
        let mut publish = b"\x90\x03\x00\x01\x00\x31\x2a\x00\x13$SYS/broker/version".to_vec();
        publish.extend_from_slice(b"mosquitto version 2.0.11");
        let f = refine(facts.clone(), &publish);
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("Mosquitto"), Some("2.0.11")));
        assert_eq!(refine(facts, b"\x90\x03\x00\x01\x80").product, None);
        let Verdict::Match(f) = parse(Some("mqtt"), &[0x20, 2, 0, 5]) else { panic!() };
        assert_eq!(f.access, Access::AuthRequired);
        assert!(parse(None, &[0x20, 3, 0, 0]).is_no());
    }
}
