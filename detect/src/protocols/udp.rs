//! UDP services: DNS, NTP, SNMP and memcached. A UDP port says nothing
//! unless asked in its own protocol, so the probe depends on the port, and
//! an answer both proves the port open and names what answered.

use asn1_rs::{Any, FromBer};
use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, TYPE};
use vantage_shared::{Access, ServiceFacts};

use super::ldap::children;
use super::version_prefix;
use crate::cpe;

/// The UDP ports Vantage has a probe for.
pub const PORTS: [u16; 4] = [53, 123, 161, 11211];

/// A UDP probe: which protocol, and the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpProbe {
    Dns,
    Ntp,
    Snmp,
    Memcached,
}

impl UdpProbe {
    pub const ALL: [UdpProbe; 4] = [UdpProbe::Dns, UdpProbe::Ntp, UdpProbe::Snmp, UdpProbe::Memcached];

    /// The probe for a well-known port.
    pub fn for_port(port: u16) -> Option<UdpProbe> {
        match port {
            53 | 5353 => Some(UdpProbe::Dns),
            123 => Some(UdpProbe::Ntp),
            161 | 1161 => Some(UdpProbe::Snmp),
            11211 => Some(UdpProbe::Memcached),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UdpProbe::Dns => "dns",
            UdpProbe::Ntp => "ntp",
            UdpProbe::Snmp => "snmp",
            UdpProbe::Memcached => "memcached",
        }
    }

    pub fn payload(self) -> Vec<u8> {
        match self {
            UdpProbe::Dns => dns_query(),
            // LI 0, version 4, mode 3 (client); the rest may be zero.
            UdpProbe::Ntp => {
                let mut p = vec![0u8; 48];
                p[0] = 0x23;
                p
            }
            UdpProbe::Snmp => SNMP_GET.to_vec(),
            UdpProbe::Memcached => b"\x56\x41\x00\x00\x00\x01\x00\x00version\r\n".to_vec(),
        }
    }

    /// What the answer says, if it is an answer in this protocol.
    pub fn parse(self, bytes: &[u8]) -> Option<ServiceFacts> {
        match self {
            UdpProbe::Dns => dns(bytes),
            UdpProbe::Ntp => ntp(bytes),
            UdpProbe::Snmp => snmp(bytes),
            UdpProbe::Memcached => memcached(bytes),
        }
    }
}

const DNS_ID: u16 = 0x5641;

/// The `version.bind` query over TCP: the same message behind a two-byte length.
pub fn dns_tcp_query() -> Vec<u8> {
    let q = dns_query();
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend(q);
    out
}

/// A DNS answer over TCP (length-prefixed).
pub fn dns_tcp(bytes: &[u8]) -> Option<ServiceFacts> {
    let [hi, lo, message @ ..] = bytes else { return None };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    dns(message.get(..len)?)
}

/// `version.bind` CH TXT: most servers say what they are.
fn dns_query() -> Vec<u8> {
    let mut q = Packet::new_query(DNS_ID);
    q.set_flags(PacketFlag::RECURSION_DESIRED);
    q.questions.push(Question::new(Name::new_unchecked("version.bind"), TYPE::TXT.into(), CLASS::CH.into(), false));
    q.build_bytes_vec().unwrap_or_default()
}

fn dns(bytes: &[u8]) -> Option<ServiceFacts> {
    let packet = Packet::parse(bytes).ok()?;
    if packet.id() != DNS_ID {
        return None;
    }
    let mut facts = ServiceFacts::named("domain");
    let txt = packet.answers.iter().find_map(|rr| match &rr.rdata {
        RData::TXT(t) => String::try_from(t.clone()).ok(),
        _ => None,
    });
    let Some(txt) = txt else { return Some(facts) };
    let txt: String = txt.chars().take(100).collect();
    if let Some(v) = txt.strip_prefix("dnsmasq-") {
        let v = version_prefix(v).unwrap_or_default();
        facts.cpe = vec![cpe::application("thekelleys", "dnsmasq", &v)];
        facts = facts.product("dnsmasq").version(v);
    } else if let Some(v) = txt.strip_prefix("unbound ") {
        let v = version_prefix(v).unwrap_or_default();
        facts.cpe = vec![cpe::application("nlnetlabs", "unbound", &v)];
        facts = facts.product("Unbound").version(v);
    } else if txt.starts_with(|c: char| c.is_ascii_digit()) {
        // BIND: "9.18.28-1~deb12u2-Debian".
        let v: String = txt.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        facts.cpe = vec![cpe::application("isc", "bind", &v)];
        let rest = txt[v.len()..].trim_start_matches('-').to_string();
        facts = facts.product("ISC BIND").version(v).info(rest);
    } else {
        facts = facts.info(txt);
    }
    Some(facts)
}

fn ntp(bytes: &[u8]) -> Option<ServiceFacts> {
    let [first, stratum, ..] = bytes else { return None };
    if bytes.len() < 48 || first & 0x07 != 4 {
        return None;
    }
    let version = (first >> 3) & 0x07;
    Some(ServiceFacts::named("ntp").info(format!("NTP v{version}, stratum {stratum}")))
}

/// SNMPv2c GetRequest, community `public`, for sysDescr.0 and sysObjectID.0.
const SNMP_GET: &[u8] = &[
    0x30, 0x37, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x2a, 0x02, 0x04, 0x56, 0x41,
    0x4e, 0x54, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x1c, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01,
    0x01, 0x01, 0x00, 0x05, 0x00, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x02, 0x00, 0x05, 0x00,
];

/// net-snmp's enterprise number (8072) as the start of a BER object id.
const NET_SNMP_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xbf, 0x08];

fn snmp(bytes: &[u8]) -> Option<ServiceFacts> {
    let (_, msg) = Any::from_ber(bytes).ok()?;
    let parts = children(msg.data, 3);
    let [version, community, pdu] = parts.as_slice() else { return None };
    // GetResponse-PDU is context-specific, tag 2.
    if version.tag().0 != 2 || community.tag().0 != 4 || pdu.tag().0 != 2 {
        return None;
    }
    let mut facts = ServiceFacts::named("snmp").access(Access::Open);
    let community = String::from_utf8_lossy(community.data).to_string();
    let v = match version.data {
        [0] => "SNMPv1",
        [1] => "SNMPv2c",
        _ => "SNMP",
    };
    let mut info = vec![format!("{v}, community {community}")];
    let fields = children(pdu.data, 4);
    if let Some(binds) = fields.get(3) {
        for bind in children(binds.data, 8) {
            let kv = children(bind.data, 2);
            let (Some(oid), Some(value)) = (kv.first(), kv.get(1)) else { continue };
            match oid.data {
                [0x2b, 6, 1, 2, 1, 1, 1, 0] if value.tag().0 == 4 => {
                    let descr: String = String::from_utf8_lossy(value.data).chars().take(120).collect();
                    info.push(descr);
                }
                [0x2b, 6, 1, 2, 1, 1, 2, 0] if value.data.starts_with(NET_SNMP_OID) => {
                    facts = facts.product("net-snmp");
                }
                _ => {}
            }
        }
    }
    Some(facts.info(info.join("; ")))
}

fn memcached(bytes: &[u8]) -> Option<ServiceFacts> {
    let text = bytes.get(8..)?;
    let rest = text.strip_prefix(b"VERSION ")?;
    let v = version_prefix(&String::from_utf8_lossy(&rest[..rest.len().min(64)]))?;
    let mut f = ServiceFacts::named("memcached").product("Memcached").version(&v).access(Access::Open);
    f.cpe = vec![cpe::application("memcached", "memcached", &v)];
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_request_is_well_formed() {
        let (rest, msg) = Any::from_ber(SNMP_GET).unwrap();
        assert!(rest.is_empty());
        assert_eq!(children(msg.data, 4).len(), 3);
    }

    #[test]
    fn snmp_answer() {
        // GetResponse with sysDescr "Linux lab" and sysObjectID net-snmp.
        let mut binds = vec![0x30, 0x15, 0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 1, 0, 0x04, 0x09];
        binds.extend_from_slice(b"Linux lab");
        binds.extend_from_slice(&[0x30, 0x16, 0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 2, 0, 0x06, 0x0a]);
        binds.extend_from_slice(&[0x2b, 6, 1, 4, 1, 0xbf, 0x08, 3, 2, 10]);
        let mut list = vec![0x30, binds.len() as u8];
        list.extend(binds);
        let mut pdu = vec![0xa2, (list.len() + 12) as u8, 2, 4, 0x56, 0x41, 0x4e, 0x54, 2, 1, 0, 2, 1, 0];
        pdu.extend(list);
        let mut msg = vec![0x30, (pdu.len() + 11) as u8, 2, 1, 1, 4, 6];
        msg.extend_from_slice(b"public");
        msg.extend(pdu);
        let f = UdpProbe::Snmp.parse(&msg).unwrap();
        assert_eq!(f.product.as_deref(), Some("net-snmp"));
        assert_eq!(f.info.as_deref(), Some("SNMPv2c, community public; Linux lab"));
        assert_eq!(f.access, Access::Open);
    }

    #[test]
    fn dns_version_bind() {
        let mut reply = Packet::new_reply(DNS_ID);
        let txt = simple_dns::rdata::TXT::try_from("dnsmasq-2.89").unwrap();
        reply.answers.push(simple_dns::ResourceRecord::new(
            Name::new_unchecked("version.bind"),
            CLASS::CH,
            0,
            RData::TXT(txt),
        ));
        let f = UdpProbe::Dns.parse(&reply.build_bytes_vec().unwrap()).unwrap();
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("dnsmasq"), Some("2.89")));
        assert!(UdpProbe::Dns.parse(&dns_query()).is_some_and(|f| f.product.is_none()));
        assert!(UdpProbe::Dns.parse(b"garbage").is_none());
    }

    #[test]
    fn ntp_and_memcached() {
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x24;
        ntp[1] = 2;
        assert_eq!(UdpProbe::Ntp.parse(&ntp).unwrap().info.as_deref(), Some("NTP v4, stratum 2"));
        assert!(UdpProbe::Ntp.parse(&UdpProbe::Ntp.payload()).is_none());
        let f = UdpProbe::Memcached.parse(b"\x56\x41\0\0\0\x01\0\0VERSION 1.6.18\r\n").unwrap();
        assert_eq!(f.version.as_deref(), Some("1.6.18"));
    }
}
