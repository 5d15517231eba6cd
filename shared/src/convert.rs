//! Conversions between the wire messages of `vantage-proto` and the domain
//! types of this crate. Everything that arrives off the wire passes through
//! here once and is validated; the rest of the code only sees domain types.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vantage_proto::v1;

use crate::addr::AddrRange;
use crate::baseline::BaselineEntry;
use crate::observation::{Observation, PortState, Proto};
use crate::ports::{PortRange, PortSpec};
use crate::scope::Scope;
use crate::service::{Access, Category, Method, ServiceFacts, TlsFacts};
use crate::target::TargetSet;

/// A wire message that does not describe a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("address of {0} bytes (expected 4 or 16)")]
    AddrLength(usize),
    #[error("invalid address range")]
    AddrRange,
    #[error("invalid port range {0}-{1}")]
    PortRange(u32, u32),
    #[error("empty port list")]
    NoPorts,
    #[error("unknown protocol or port state {0}")]
    Enum(i32),
}

pub fn addr_from_bytes(b: &[u8]) -> Result<IpAddr, ConvertError> {
    match b.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(b).unwrap())),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(b).unwrap())),
        n => Err(ConvertError::AddrLength(n)),
    }
}

pub fn addr_to_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl From<&AddrRange> for v1::AddrRange {
    fn from(r: &AddrRange) -> Self {
        v1::AddrRange { first: addr_to_bytes(r.first()), last: addr_to_bytes(r.last()) }
    }
}

impl TryFrom<&v1::AddrRange> for AddrRange {
    type Error = ConvertError;
    fn try_from(r: &v1::AddrRange) -> Result<Self, ConvertError> {
        AddrRange::new(addr_from_bytes(&r.first)?, addr_from_bytes(&r.last)?).ok_or(ConvertError::AddrRange)
    }
}

pub fn ranges_to_wire(ranges: &[AddrRange]) -> Vec<v1::AddrRange> {
    ranges.iter().map(Into::into).collect()
}

pub fn target_set_from_wire(ranges: &[v1::AddrRange]) -> Result<TargetSet, ConvertError> {
    Ok(TargetSet::from_ranges(ranges.iter().map(AddrRange::try_from).collect::<Result<_, _>>()?))
}

pub fn ports_to_wire(ports: &PortSpec) -> Vec<v1::PortRange> {
    ports.ranges().iter().map(|r| v1::PortRange { first: u32::from(r.first), last: u32::from(r.last) }).collect()
}

pub fn ports_from_wire(ranges: &[v1::PortRange]) -> Result<PortSpec, ConvertError> {
    if ranges.is_empty() {
        return Err(ConvertError::NoPorts);
    }
    let ranges = ranges
        .iter()
        .map(|r| match (u16::try_from(r.first), u16::try_from(r.last)) {
            (Ok(first), Ok(last)) if first >= 1 && first <= last => Ok(PortRange { first, last }),
            _ => Err(ConvertError::PortRange(r.first, r.last)),
        })
        .collect::<Result<_, _>>()?;
    Ok(PortSpec::from_ranges(ranges))
}

impl From<&Scope> for v1::Scope {
    fn from(s: &Scope) -> Self {
        v1::Scope { allow: ranges_to_wire(s.allow().ranges()), exclude: ranges_to_wire(s.exclude().ranges()) }
    }
}

impl TryFrom<&v1::Scope> for Scope {
    type Error = ConvertError;
    fn try_from(s: &v1::Scope) -> Result<Self, ConvertError> {
        Ok(Scope::new(target_set_from_wire(&s.allow)?, target_set_from_wire(&s.exclude)?))
    }
}

pub fn duration_to_wire(d: Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

/// Negative or missing durations read as `None`.
pub fn duration_from_wire(d: Option<&prost_types::Duration>) -> Option<Duration> {
    let d = d?;
    (d.seconds >= 0 && d.nanos >= 0).then(|| Duration::new(d.seconds as u64, d.nanos as u32))
}

pub fn time_to_wire(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

pub fn time_from_wire(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    (t.seconds >= 0 && t.nanos >= 0).then(|| UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32))
}

impl From<Proto> for v1::Proto {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Tcp => v1::Proto::Tcp,
            Proto::Udp => v1::Proto::Udp,
        }
    }
}

impl From<PortState> for v1::PortState {
    fn from(s: PortState) -> Self {
        match s {
            PortState::Open => v1::PortState::Open,
            PortState::Closed => v1::PortState::Closed,
            PortState::Filtered => v1::PortState::Filtered,
            PortState::AnswersAll => v1::PortState::AnswersAll,
        }
    }
}

impl From<&Observation> for v1::Observation {
    fn from(o: &Observation) -> Self {
        v1::Observation {
            addr: addr_to_bytes(o.addr),
            proto: v1::Proto::from(o.proto) as i32,
            port: u32::from(o.port),
            state: v1::PortState::from(o.state) as i32,
            rtt: Some(duration_to_wire(o.rtt)),
            seen_at: Some(time_to_wire(o.seen_at)),
            banner: o.banner.clone(),
            region: o.region.clone(),
            agent: o.agent.clone(),
            service: o.service.as_ref().map(Into::into),
        }
    }
}

/// Address, protocol, port and state off the wire, checked together: port 0
/// stands for "the whole host", which only an answers-all state is about.
fn port_from_wire(
    addr: &[u8],
    proto: i32,
    port: u32,
    state: i32,
) -> Result<(IpAddr, Proto, u16, PortState), ConvertError> {
    let proto_ = match v1::Proto::try_from(proto) {
        Ok(v1::Proto::Tcp) => Proto::Tcp,
        Ok(v1::Proto::Udp) => Proto::Udp,
        _ => return Err(ConvertError::Enum(proto)),
    };
    let state_ = match v1::PortState::try_from(state) {
        Ok(v1::PortState::Open) => PortState::Open,
        Ok(v1::PortState::Closed) => PortState::Closed,
        Ok(v1::PortState::Filtered) => PortState::Filtered,
        Ok(v1::PortState::AnswersAll) => PortState::AnswersAll,
        _ => return Err(ConvertError::Enum(state)),
    };
    let port_ = u16::try_from(port)
        .ok()
        .filter(|p| (*p == 0) == (state_ == PortState::AnswersAll))
        .ok_or(ConvertError::PortRange(port, port))?;
    Ok((addr_from_bytes(addr)?, proto_, port_, state_))
}

impl TryFrom<&v1::Observation> for Observation {
    type Error = ConvertError;
    fn try_from(o: &v1::Observation) -> Result<Self, ConvertError> {
        let (addr, proto, port, state) = port_from_wire(&o.addr, o.proto, o.port, o.state)?;
        Ok(Observation {
            addr,
            proto,
            port,
            state,
            rtt: duration_from_wire(o.rtt.as_ref()).unwrap_or_default(),
            seen_at: time_from_wire(o.seen_at.as_ref()).unwrap_or(UNIX_EPOCH),
            banner: o.banner.clone(),
            region: o.region.clone(),
            agent: o.agent.clone(),
            service: o.service.as_ref().map(Into::into),
        })
    }
}

impl From<&BaselineEntry> for v1::BaselineEntry {
    fn from(e: &BaselineEntry) -> Self {
        v1::BaselineEntry {
            addr: addr_to_bytes(e.addr),
            proto: v1::Proto::from(e.proto) as i32,
            port: u32::from(e.port),
            state: v1::PortState::from(e.state) as i32,
            open_in: e.open_in.clone(),
            service: e.service.as_ref().map(Into::into),
            scan_id: e.scan_id,
            seen_at: Some(time_to_wire(e.seen_at)),
        }
    }
}

/// By value: a baseline holds millions of entries, and reading one back
/// should move its strings, not copy them.
impl TryFrom<v1::BaselineEntry> for BaselineEntry {
    type Error = ConvertError;
    fn try_from(w: v1::BaselineEntry) -> Result<Self, ConvertError> {
        let (addr, proto, port, state) = port_from_wire(&w.addr, w.proto, w.port, w.state)?;
        Ok(BaselineEntry {
            addr,
            proto,
            port,
            state,
            open_in: w.open_in,
            service: w.service.map(Into::into),
            scan_id: w.scan_id,
            seen_at: time_from_wire(w.seen_at.as_ref()).unwrap_or(UNIX_EPOCH),
        })
    }
}

impl TryFrom<&v1::BaselineEntry> for BaselineEntry {
    type Error = ConvertError;
    fn try_from(w: &v1::BaselineEntry) -> Result<Self, ConvertError> {
        BaselineEntry::try_from(w.clone())
    }
}

impl From<&ServiceFacts> for v1::ServiceFacts {
    fn from(f: &ServiceFacts) -> Self {
        v1::ServiceFacts {
            service: f.service.clone(),
            product: f.product.clone().unwrap_or_default(),
            version: f.version.clone().unwrap_or_default(),
            info: f.info.clone().unwrap_or_default(),
            cpe: f.cpe.clone(),
            category: match f.category {
                Category::Database => v1::Category::Database,
                Category::RemoteAccess => v1::Category::RemoteAccess,
                Category::Management => v1::Category::Management,
                Category::Web => v1::Category::Web,
                Category::Mail => v1::Category::Mail,
                Category::FileTransfer => v1::Category::FileTransfer,
                Category::Messaging => v1::Category::Messaging,
                Category::Directory => v1::Category::Directory,
                Category::Other => v1::Category::Other,
            } as i32,
            access: match f.access {
                Access::Unknown => v1::Access::Unknown,
                Access::Open => v1::Access::Open,
                Access::AuthRequired => v1::Access::AuthRequired,
            } as i32,
            tls: f.tls.as_ref().map(|t| v1::TlsFacts {
                version: t.version.clone(),
                cipher: t.cipher.clone(),
                alpn: t.alpn.clone().unwrap_or_default(),
                subject: t.subject.clone(),
                issuer: t.issuer.clone(),
                sans: t.sans.clone(),
                not_before: t.not_before,
                not_after: t.not_after,
                self_signed: t.self_signed,
                sha256: t.sha256.clone(),
                error: t.error.clone().unwrap_or_default(),
            }),
            method: match f.method {
                Method::Probed => v1::DetectMethod::Probed,
                Method::Nmap => v1::DetectMethod::Nmap,
                Method::PortGuess => v1::DetectMethod::PortGuess,
            } as i32,
        }
    }
}

/// Service facts off the wire: text is kept as sent (it is escaped when
/// shown), unknown enum values fall back to "other" and "unknown".
impl From<&v1::ServiceFacts> for ServiceFacts {
    fn from(w: &v1::ServiceFacts) -> Self {
        ServiceFacts::from(w.clone())
    }
}

impl From<v1::ServiceFacts> for ServiceFacts {
    fn from(w: v1::ServiceFacts) -> Self {
        let some = |s: String| (!s.is_empty()).then_some(s);
        ServiceFacts {
            service: w.service,
            product: some(w.product),
            version: some(w.version),
            info: some(w.info),
            cpe: w.cpe,
            category: match v1::Category::try_from(w.category) {
                Ok(v1::Category::Database) => Category::Database,
                Ok(v1::Category::RemoteAccess) => Category::RemoteAccess,
                Ok(v1::Category::Management) => Category::Management,
                Ok(v1::Category::Web) => Category::Web,
                Ok(v1::Category::Mail) => Category::Mail,
                Ok(v1::Category::FileTransfer) => Category::FileTransfer,
                Ok(v1::Category::Messaging) => Category::Messaging,
                Ok(v1::Category::Directory) => Category::Directory,
                _ => Category::Other,
            },
            access: match v1::Access::try_from(w.access) {
                Ok(v1::Access::Open) => Access::Open,
                Ok(v1::Access::AuthRequired) => Access::AuthRequired,
                _ => Access::Unknown,
            },
            tls: w.tls.map(|t| TlsFacts {
                version: t.version,
                cipher: t.cipher,
                alpn: some(t.alpn),
                subject: t.subject,
                issuer: t.issuer,
                sans: t.sans,
                not_before: t.not_before,
                not_after: t.not_after,
                self_signed: t.self_signed,
                sha256: t.sha256,
                error: some(t.error),
            }),
            method: match v1::DetectMethod::try_from(w.method) {
                Ok(v1::DetectMethod::Nmap) => Method::Nmap,
                Ok(v1::DetectMethod::PortGuess) => Method::PortGuess,
                _ => Method::Probed,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observation_round_trips() {
        let o = Observation {
            addr: "::1".parse().unwrap(),
            proto: Proto::Tcp,
            port: 22,
            state: PortState::Open,
            rtt: Duration::from_micros(1234),
            seen_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            banner: b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec(),
            region: "r1".into(),
            agent: "a1".into(),
            service: Some(ServiceFacts {
                cpe: vec!["cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*".into()],
                access: Access::AuthRequired,
                tls: Some(TlsFacts { version: "TLSv1.3".into(), sans: vec!["a.invalid".into()], ..Default::default() }),
                method: Method::Nmap,
                ..ServiceFacts::named("ssh").product("OpenSSH").version("9.2p1").info("protocol 2.0")
            }),
        };
        assert_eq!(Observation::try_from(&v1::Observation::from(&o)).unwrap(), o);
    }

    #[test]
    fn bad_wire_values_are_refused() {
        let mut w = v1::Observation { addr: vec![1, 2, 3], proto: 1, port: 80, state: 1, ..Default::default() };
        assert_eq!(Observation::try_from(&w), Err(ConvertError::AddrLength(3)));
        w.addr = vec![127, 0, 0, 1];
        w.port = 70_000;
        assert!(Observation::try_from(&w).is_err());
        w.port = 0;
        assert!(Observation::try_from(&w).is_err(), "port 0 is only for answers-all");
        w.state = v1::PortState::AnswersAll as i32;
        assert!(Observation::try_from(&w).is_ok());
        w.port = 80;
        assert!(Observation::try_from(&w).is_err(), "answers-all is about the whole host");
        assert!(ports_from_wire(&[v1::PortRange { first: 9, last: 3 }]).is_err());
        assert_eq!(ports_from_wire(&[]), Err(ConvertError::NoPorts));
    }

    #[test]
    fn scope_round_trips() {
        let s = Scope::parse_file("198.18.0.0/24\n!198.18.0.9\n").unwrap();
        assert_eq!(Scope::try_from(&v1::Scope::from(&s)).unwrap(), s);
    }
}
