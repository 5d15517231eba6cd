//! Probe options: how an agent probes, as typed data (never a command).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use vantage_proto::v1;

use crate::convert::{duration_from_wire, duration_to_wire};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    /// Full TCP handshakes through the kernel; needs no privileges.
    #[default]
    Connect,
    /// Half-open scanning with raw packets; needs CAP_NET_RAW.
    Syn,
    /// SYN when the agent may open raw sockets, connect otherwise.
    Auto,
    /// UDP probes in each port's own protocol (DNS, NTP, SNMP, memcached);
    /// an answer means open, an ICMP port-unreachable closed, silence
    /// open|filtered (reported as filtered).
    Udp,
}

impl std::fmt::Display for ScanMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScanMode::Connect => "connect",
            ScanMode::Syn => "syn",
            ScanMode::Auto => "auto",
            ScanMode::Udp => "udp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOptions {
    pub mode: ScanMode,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    pub max_in_flight: u32,
    #[serde(with = "humantime_serde")]
    pub banner_timeout: Duration,
    pub banner_max_bytes: u32,
    pub retries: u32,
    /// Probes per second for the agent as a whole; 0 means no cap.
    #[serde(default)]
    pub rate: u32,
    /// Probes per second to one host; 0 means no cap.
    #[serde(default)]
    pub host_rate: u32,
    /// Service and version detection on every open port.
    #[serde(default = "yes")]
    pub detect: bool,
    /// Cap on one port's whole detection conversation.
    #[serde(with = "humantime_serde", default = "default_detect_timeout")]
    pub detect_timeout: Duration,
    /// Which probes of an nmap-service-probes file to try (rarity at most this, 0-9).
    #[serde(default = "default_intensity")]
    pub version_intensity: u32,
    /// Cap on the bytes one port's detection conversation reads.
    #[serde(default = "default_detect_max_bytes")]
    pub detect_max_bytes: u32,
}

fn default_detect_max_bytes() -> u32 {
    64 * 1024
}

fn yes() -> bool {
    true
}

fn default_detect_timeout() -> Duration {
    Duration::from_secs(6)
}

fn default_intensity() -> u32 {
    7
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            mode: ScanMode::Connect,
            connect_timeout: Duration::from_millis(1000),
            max_in_flight: 4096,
            banner_timeout: Duration::from_millis(1500),
            banner_max_bytes: 1024,
            retries: 1,
            rate: 0,
            host_rate: 0,
            detect: true,
            detect_timeout: default_detect_timeout(),
            version_intensity: default_intensity(),
            detect_max_bytes: default_detect_max_bytes(),
        }
    }
}

impl From<&ProbeOptions> for v1::ProbeOptions {
    fn from(o: &ProbeOptions) -> Self {
        v1::ProbeOptions {
            mode: match o.mode {
                ScanMode::Connect => v1::ScanMode::Connect,
                ScanMode::Syn => v1::ScanMode::Syn,
                ScanMode::Auto => v1::ScanMode::Auto,
                ScanMode::Udp => v1::ScanMode::Udp,
            } as i32,
            connect_timeout: Some(duration_to_wire(o.connect_timeout)),
            max_in_flight: o.max_in_flight,
            banner_timeout: Some(duration_to_wire(o.banner_timeout)),
            banner_max_bytes: o.banner_max_bytes,
            retries: o.retries,
            rate: o.rate,
            host_rate: o.host_rate,
            detect: o.detect,
            detect_timeout: Some(duration_to_wire(o.detect_timeout)),
            version_intensity: o.version_intensity,
            detect_max_bytes: o.detect_max_bytes,
        }
    }
}

impl From<&v1::ProbeOptions> for ProbeOptions {
    /// Missing or zero fields take the defaults, so an old peer still works.
    fn from(w: &v1::ProbeOptions) -> Self {
        let d = ProbeOptions::default();
        let nonzero = |v: u32, default: u32| if v == 0 { default } else { v };
        ProbeOptions {
            mode: match v1::ScanMode::try_from(w.mode) {
                Ok(v1::ScanMode::Syn) => ScanMode::Syn,
                Ok(v1::ScanMode::Auto) => ScanMode::Auto,
                Ok(v1::ScanMode::Udp) => ScanMode::Udp,
                _ => ScanMode::Connect,
            },
            connect_timeout: duration_from_wire(w.connect_timeout.as_ref())
                .filter(|d| !d.is_zero())
                .unwrap_or(d.connect_timeout),
            max_in_flight: nonzero(w.max_in_flight, d.max_in_flight),
            banner_timeout: duration_from_wire(w.banner_timeout.as_ref()).unwrap_or(d.banner_timeout),
            banner_max_bytes: w.banner_max_bytes,
            retries: w.retries,
            rate: w.rate,
            host_rate: w.host_rate,
            detect: w.detect,
            detect_timeout: duration_from_wire(w.detect_timeout.as_ref())
                .filter(|d| !d.is_zero())
                .unwrap_or(d.detect_timeout),
            version_intensity: w.version_intensity.min(9),
            detect_max_bytes: nonzero(w.detect_max_bytes, d.detect_max_bytes),
        }
    }
}

/// Durations stored as humantime text ("1s 500ms") in JSON records.
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip() {
        let o = ProbeOptions {
            mode: ScanMode::Syn,
            retries: 3,
            banner_max_bytes: 0,
            rate: 50_000,
            host_rate: 100,
            ..Default::default()
        };
        assert_eq!(ProbeOptions::from(&v1::ProbeOptions::from(&o)), o);
    }

    #[test]
    fn empty_wire_options_take_defaults() {
        let o = ProbeOptions::from(&v1::ProbeOptions::default());
        assert_eq!(o.connect_timeout, ProbeOptions::default().connect_timeout);
        assert_eq!(o.max_in_flight, 4096);
    }
}
