//! Importing history: an nmap XML report (`nmap -oX`) as a period's
//! baseline, so that a team starts with the history it already has.
//!
//! Open ports (TCP and UDP) become entries; nmap's service, product,
//! version, extra info and CPEs become service facts (method `nmap`). A
//! TLS tunnel is kept in the service name (`ssl/http`): nmap's XML has no
//! certificate to compare with later.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use vantage_detect::nmap::cpe22_to_23;
use vantage_shared::{BaselineEntry, Category, Method, PortState, Proto, ServiceFacts};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not XML at byte {position}: {detail}")]
    Xml { position: u64, detail: String },
    #[error("not an nmap XML report (no <nmaprun> element)")]
    NotNmap,
    #[error("at byte {position}: {what}")]
    Bad { position: u64, what: String },
}

/// The open ports of an nmap report, in key order, one entry per
/// (address, protocol, port); `source` is recorded as their region.
pub fn nmap_xml(text: &str, source: &str) -> Result<Vec<BaselineEntry>, ImportError> {
    let mut reader = Reader::from_str(text);
    let mut seen_run = false;
    let mut host: Option<Host> = None;
    let mut port: Option<PortDraft> = None;
    let mut out = Vec::new();
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| ImportError::Xml { position: reader.error_position(), detail: e.to_string() })?;
        let bad = |what: String| ImportError::Bad { position, what };
        let (tag, empty) = match &event {
            Event::Start(t) => (t, false),
            Event::Empty(t) => (t, true),
            Event::End(t) => {
                match t.name().as_ref() {
                    "port" => finish_port(&mut port, &host, source, &mut out),
                    "host" => host = None,
                    _ => {}
                }
                continue;
            }
            Event::Text(t) if port.as_ref().is_some_and(|p| p.in_cpe) => {
                let text = t.xml10_content();
                if let (Some(p), Some(cpe)) = (port.as_mut(), cpe22_to_23(text.trim())) {
                    p.cpe.push(cpe);
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match tag.name().as_ref() {
            "nmaprun" => seen_run = true,
            "host" => host = Some(Host { addr: None, seen_at: attr(tag, "endtime").and_then(unix_time) }),
            "address" if host.is_some() => {
                if matches!(attr(tag, "addrtype").as_deref(), Some("ipv4" | "ipv6")) {
                    let a = attr(tag, "addr").unwrap_or_default();
                    let addr = a.parse().map_err(|_| bad(format!("bad address `{a}`")))?;
                    host.as_mut().expect("checked").addr = Some(addr);
                }
            }
            "port" if host.is_some() => {
                let proto = match attr(tag, "protocol").as_deref() {
                    Some("tcp") => Proto::Tcp,
                    Some("udp") => Proto::Udp,
                    // SCTP and IP protocol scans have no place in a port baseline.
                    _ => continue,
                };
                let p = attr(tag, "portid").unwrap_or_default();
                let number = p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| bad(format!("bad port `{p}`")))?;
                port =
                    Some(PortDraft { proto, port: number, open: false, service: None, cpe: Vec::new(), in_cpe: false });
                if empty {
                    finish_port(&mut port, &host, source, &mut out);
                }
            }
            "state" => {
                if let Some(p) = port.as_mut() {
                    p.open = attr(tag, "state").as_deref() == Some("open");
                }
            }
            "service" => {
                if let Some(p) = port.as_mut() {
                    p.service = Some(service(tag));
                }
            }
            "cpe" => {
                if let Some(p) = port.as_mut() {
                    p.in_cpe = !empty;
                }
            }
            _ => {}
        }
    }
    if !seen_run {
        return Err(ImportError::NotNmap);
    }
    out.sort_by_key(BaselineEntry::key);
    out.dedup_by_key(|e| e.key());
    Ok(out)
}

struct Host {
    addr: Option<IpAddr>,
    seen_at: Option<SystemTime>,
}

struct PortDraft {
    proto: Proto,
    port: u16,
    open: bool,
    service: Option<ServiceFacts>,
    cpe: Vec<String>,
    in_cpe: bool,
}

fn finish_port(port: &mut Option<PortDraft>, host: &Option<Host>, source: &str, out: &mut Vec<BaselineEntry>) {
    let Some(p) = port.take() else { return };
    let Some(Host { addr: Some(addr), seen_at }) = host else { return };
    if !p.open {
        return;
    }
    let service = p.service.map(|mut f| {
        f.cpe = p.cpe;
        f
    });
    out.push(BaselineEntry {
        addr: *addr,
        proto: p.proto,
        port: p.port,
        state: PortState::Open,
        open_in: vec![source.to_string()],
        service,
        scan_id: 0,
        seen_at: seen_at.unwrap_or(UNIX_EPOCH),
    });
}

/// `<service name="http" product="nginx" version="1.22.1" extrainfo=".." tunnel="ssl"/>`.
fn service(tag: &BytesStart<'_>) -> ServiceFacts {
    let name = attr(tag, "name").unwrap_or_else(|| "unknown".into());
    let name = if attr(tag, "tunnel").as_deref() == Some("ssl") { format!("ssl/{name}") } else { name };
    let mut f = ServiceFacts::named(&name)
        .product(attr(tag, "product").unwrap_or_default())
        .version(attr(tag, "version").unwrap_or_default())
        .info(attr(tag, "extrainfo").unwrap_or_default());
    f.category = Category::of_service(&name);
    // "table": nmap only looked the port number up.
    f.method = if attr(tag, "method").as_deref() == Some("table") { Method::PortGuess } else { Method::Nmap };
    f
}

fn attr(tag: &BytesStart<'_>, key: &str) -> Option<String> {
    let a = tag.try_get_attribute(key).ok()??;
    // nmap writes XML 1.0.
    a.normalized_value(XmlVersion::Explicit1_0).ok().map(|v| v.chars().take(256).collect())
}

fn unix_time(s: String) -> Option<SystemTime> {
    s.parse::<u64>().ok().map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sV" start="1790000000">
<host starttime="1790000000" endtime="1790000100"><status state="up"/>
<address addr="198.18.1.1" addrtype="ipv4"/>
<address addr="02:00:C6:12:01:00" addrtype="mac"/>
<ports>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/><service name="http" product="nginx" version="1.22.1" tunnel="ssl" method="probed" conf="10"><cpe>cpe:/a:igor_sysoev:nginx:1.22.1</cpe></service></port>
<port protocol="tcp" portid="22"><state state="open"/><service name="ssh" product="OpenSSH" version="9.2p1 Debian 2+deb12u3" extrainfo="protocol 2.0" method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service></port>
<port protocol="tcp" portid="23"><state state="closed"/></port>
<port protocol="udp" portid="161"><state state="open"/><service name="snmp" method="table" conf="3"/></port>
</ports></host>
<host><address addr="::1" addrtype="ipv6"/><ports><port protocol="tcp" portid="80"><state state="open"/></port></ports></host>
</nmaprun>"#;

    #[test]
    fn open_ports_with_their_services() {
        let e = nmap_xml(REPORT, "import").unwrap();
        let keys: Vec<String> = e.iter().map(|e| format!("{}:{}/{}", e.addr, e.port, e.proto)).collect();
        assert_eq!(keys, ["198.18.1.1:22/tcp", "198.18.1.1:443/tcp", "198.18.1.1:161/udp", "::1:80/tcp"]);
        let ssh = e[0].service.as_ref().unwrap();
        assert_eq!((ssh.product.as_deref(), ssh.info.as_deref()), (Some("OpenSSH"), Some("protocol 2.0")));
        assert_eq!(ssh.cpe[0], "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*");
        assert_eq!(ssh.cpe.len(), 2);
        let https = e[1].service.as_ref().unwrap();
        assert_eq!(https.display_service(), "ssl/http");
        assert_eq!(https.category, Category::Web);
        assert_eq!(e[2].service.as_ref().unwrap().method, Method::PortGuess);
        assert_eq!(e[3].service, None);
        assert_eq!(e[0].open_in, ["import"]);
        assert_eq!(e[0].seen_at, UNIX_EPOCH + Duration::from_secs(1_790_000_100));
    }

    #[test]
    fn bad_input_is_refused_with_a_position() {
        assert!(matches!(nmap_xml("<html></html>", "x"), Err(ImportError::NotNmap)));
        assert!(matches!(
            nmap_xml("<nmaprun><host><address addr=\"x\" addrtype=\"ipv4\"/></host></nmaprun>", "x"),
            Err(ImportError::Bad { .. })
        ));
        let broken = nmap_xml("<nmaprun><host></nmaprun>", "x").unwrap_err();
        assert!(matches!(broken, ImportError::Xml { .. }), "{broken}");
        let port = nmap_xml(
            "<nmaprun><host><address addr=\"198.18.0.1\" addrtype=\"ipv4\"/><ports><port protocol=\"tcp\" portid=\"99999\"/></ports></host></nmaprun>",
            "x",
        );
        assert!(port.unwrap_err().to_string().contains("bad port"));
    }
}
