//! Observations: what one agent saw at one (address, protocol, port).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::service::ServiceFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// What a probe concluded. A closed or filtered port is a result, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// The service completed a handshake.
    Open,
    /// The host answered that nothing listens (TCP RST).
    Closed,
    /// No answer, or an ICMP unreachable: something is in the way.
    Filtered,
    /// The host completed a handshake on (nearly) every port probed (tarpit,
    /// SYN proxy, accept-all firewall). One observation per host, port 0.
    #[serde(rename = "answers-all")]
    AnswersAll,
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::AnswersAll => "answers-all",
        })
    }
}

/// One agent's view of one port at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub addr: IpAddr,
    pub proto: Proto,
    pub port: u16,
    pub state: PortState,
    /// Round-trip time of the probe that decided the state.
    #[serde(with = "serde_micros")]
    pub rtt: Duration,
    pub seen_at: SystemTime,
    /// First bytes the service sent unprompted (bounded by the agent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub banner: Vec<u8>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub agent: String,
    /// What answers on the port, when detection ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceFacts>,
}

impl Observation {
    /// The banner as one line of printable text: control bytes and invalid
    /// UTF-8 are escaped, so a hostile banner cannot drive the terminal.
    pub fn banner_text(&self) -> String {
        printable(&self.banner)
    }
}

/// Escapes everything but printable ASCII and spaces, like `\x1b`, `\r\n` -> `\r\n` text.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.extend(c.escape_default()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Durations in observations are stored as whole microseconds.
mod serde_micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_banner_is_escaped() {
        let text = printable(b"SSH-2.0-x\x1b[2J\r\n\xff\xfe");
        assert_eq!(text, "SSH-2.0-x\\u{1b}[2J\\r\\n\\xff\\xfe");
        assert!(!text.chars().any(char::is_control));
    }

    #[test]
    fn unicode_text_survives() {
        assert_eq!(printable("Grüße".as_bytes()), "Grüße");
    }
}
