//! Open ports out of each tool's output: Vantage's JSON document, nmap's
//! XML (`-oX -`) and masscan's list format (`-oL -`); and, for the service
//! comparison, what Vantage and `nmap -sV` say runs on each port.
//!
//! nmap's XML is read as a stream of events (quick-xml): only `host`,
//! `address`, `port`, `state`, `service` and `cpe` elements matter.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde::Serialize;
use vantage_tests::lab::Proto;

/// Output that does not look like what the tool should have written.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a Vantage JSON document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{what}: `{input}`")]
    Bad { what: &'static str, input: String },
}

fn bad(what: &'static str, input: &str) -> ParseError {
    ParseError::Bad { what, input: input.chars().take(120).collect() }
}

pub type OpenSet = BTreeSet<SocketAddrV4>;

/// `vantage scan --format json`: `observations: [{addr, port, state}]`.
pub fn vantage_json(text: &str) -> Result<OpenSet, ParseError> {
    let doc: serde_json::Value = serde_json::from_str(text)?;
    let observations = doc["observations"].as_array().ok_or_else(|| bad("no observations array", text))?;
    let mut out = OpenSet::new();
    for o in observations.iter().filter(|o| o["state"] == "open") {
        let addr = o["addr"].as_str().and_then(|a| a.parse::<Ipv4Addr>().ok());
        let port = o["port"].as_u64().and_then(|p| u16::try_from(p).ok());
        let (Some(addr), Some(port)) = (addr, port) else {
            return Err(bad("observation without addr or port", &o.to_string()));
        };
        out.insert(SocketAddrV4::new(addr, port));
    }
    Ok(out)
}

/// masscan `-oL`: `open tcp PORT ADDR TIMESTAMP` lines, `#` comments.
/// masscan may report a port more than once; the set keeps one.
pub fn masscan_list(text: &str) -> Result<OpenSet, ParseError> {
    let mut out = OpenSet::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["open", "tcp", port, addr, ..] => {
                let port = port.parse().map_err(|_| bad("bad port", line))?;
                let addr = addr.parse().map_err(|_| bad("bad address", line))?;
                out.insert(SocketAddrV4::new(addr, port));
            }
            [_, _, _, _, ..] => {}
            _ => return Err(bad("expected `open tcp PORT ADDR TS`", line)),
        }
    }
    Ok(out)
}

/// rustscan `-g`: `ADDR -> [PORT,PORT,...]` lines.
pub fn rustscan_greppable(text: &str) -> Result<OpenSet, ParseError> {
    let mut out = OpenSet::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((addr, ports)) = line.split_once(" -> ") else { return Err(bad("expected `ADDR -> [PORTS]`", line)) };
        let addr = addr.trim().parse().map_err(|_| bad("bad address", line))?;
        let ports = ports.trim().trim_start_matches('[').trim_end_matches(']');
        for port in ports.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out.insert(SocketAddrV4::new(addr, port.parse().map_err(|_| bad("bad port", line))?));
        }
    }
    Ok(out)
}

/// nmap `-oX`: inside each `<host>`, the ipv4 `<address>`, then
/// `<port protocol="tcp" portid="N"><state state="open" .../>`.
pub fn nmap_xml(text: &str) -> Result<OpenSet, ParseError> {
    let mut reader = Reader::from_str(text);
    let (mut out, mut seen_run, mut in_host) = (OpenSet::new(), false, false);
    let (mut addr, mut port): (Option<Ipv4Addr>, Option<u16>) = (None, None);
    loop {
        let event = reader.read_event().map_err(|e| bad("malformed XML", &e.to_string()))?;
        let tag = match &event {
            Event::Start(t) | Event::Empty(t) => t,
            Event::End(t) if t.name().into_inner() == "host" => {
                in_host = false;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match tag.name().into_inner() {
            "nmaprun" => seen_run = true,
            "host" => (in_host, addr, port) = (true, None, None),
            "address" if in_host && attr(tag, "addrtype").as_deref() == Some("ipv4") => {
                addr = attr(tag, "addr").and_then(|a| a.parse().ok());
            }
            "port" if in_host => {
                let tcp = attr(tag, "protocol").as_deref() == Some("tcp");
                port = if tcp { attr(tag, "portid").and_then(|p| p.parse().ok()) } else { None };
            }
            "state" if in_host => {
                if let (Some(a), Some(p), Some("open")) = (addr, port.take(), attr(tag, "state").as_deref()) {
                    out.insert(SocketAddrV4::new(a, p));
                }
            }
            _ => {}
        }
    }
    if !seen_run {
        return Err(bad("no <nmaprun> element", text));
    }
    Ok(out)
}

/// What a scanner says about one port: its state and, when it named one,
/// the service. Absent fields are unknown (nmap's empty attributes too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceFinding {
    /// `open`, `closed`, `filtered`, `open|filtered`, ...
    pub state: String,
    /// The service inside any TLS tunnel (`http` for nmap's `ssl/http`).
    pub service: Option<String>,
    /// Wrapped in TLS (Vantage's `service.tls`, nmap's `tunnel="ssl"`).
    pub tls: bool,
    pub product: Option<String>,
    pub version: Option<String>,
    /// Vantage's `info`, nmap's `extrainfo`.
    pub info: Option<String>,
    /// How it was found: Vantage's `probed`/`nmap`/`port`, nmap's `probed`/`table`.
    pub method: Option<String>,
    pub cpe: Vec<String>,
}

impl ServiceFinding {
    /// The service as nmap prints it: `ssl/http` for HTTP in TLS.
    pub fn display_service(&self) -> Option<String> {
        let name = self.service.as_deref()?;
        Some(if self.tls { format!("ssl/{name}") } else { name.to_string() })
    }
}

/// Findings by protocol and address.
pub type Findings = BTreeMap<(Proto, SocketAddrV4), ServiceFinding>;

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// `vantage scan --format json`, every observation:
/// `{addr, proto, port, state, service: {service, product, version, info, cpe, tls, method}}`.
pub fn vantage_services(text: &str) -> Result<Findings, ParseError> {
    let doc: serde_json::Value = serde_json::from_str(text)?;
    let observations = doc["observations"].as_array().ok_or_else(|| bad("no observations array", text))?;
    let mut out = Findings::new();
    for o in observations {
        let addr = o["addr"].as_str().and_then(|a| a.parse::<Ipv4Addr>().ok());
        let port = o["port"].as_u64().and_then(|p| u16::try_from(p).ok());
        let proto = match o["proto"].as_str() {
            Some("tcp") => Some(Proto::Tcp),
            Some("udp") => Some(Proto::Udp),
            _ => None,
        };
        let (Some(addr), Some(port), Some(proto)) = (addr, port, proto) else {
            return Err(bad("observation without addr, proto or port", &o.to_string()));
        };
        let f = &o["service"];
        let text = |key: &str| nonempty(f[key].as_str());
        let finding = ServiceFinding {
            state: o["state"].as_str().unwrap_or_default().to_string(),
            service: text("service"),
            tls: f["tls"].is_object(),
            product: text("product"),
            version: text("version"),
            info: text("info"),
            method: text("method"),
            cpe: f["cpe"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(String::from)).collect(),
        };
        out.insert((proto, SocketAddrV4::new(addr, port)), finding);
    }
    Ok(out)
}

/// nmap `-sV -oX`: every `<port protocol portid>` of each `<host>`, its
/// `<state state>` and `<service name product version extrainfo tunnel
/// method><cpe>..</cpe></service>`.
pub fn nmap_services(text: &str) -> Result<Findings, ParseError> {
    let mut reader = Reader::from_str(text);
    let (mut out, mut seen_run) = (Findings::new(), false);
    let mut addr: Option<Ipv4Addr> = None;
    // The port being read, and the text of the <cpe> being read (CPEs hold no entities).
    let mut port: Option<((Proto, SocketAddrV4), ServiceFinding)> = None;
    let mut cpe: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| bad("malformed XML", &e.to_string()))?;
        let (tag, empty) = match &event {
            Event::Start(t) => (t, false),
            Event::Empty(t) => (t, true),
            Event::End(t) => {
                match t.name().into_inner() {
                    "port" => {
                        if let Some((key, finding)) = port.take() {
                            out.insert(key, finding);
                        }
                    }
                    "host" => addr = None,
                    "cpe" => {
                        if let (Some((_, finding)), Some(text)) = (port.as_mut(), cpe.take()) {
                            finding.cpe.extend(nonempty(Some(&text)));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            Event::Text(t) => {
                if let Some(text) = cpe.as_mut() {
                    text.push_str(&t.xml_content(XmlVersion::Explicit1_0));
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match tag.name().into_inner() {
            "nmaprun" => seen_run = true,
            "host" => addr = None,
            "address" if attr(tag, "addrtype").as_deref() == Some("ipv4") => {
                addr = attr(tag, "addr").and_then(|a| a.parse().ok());
            }
            "port" => {
                let proto = match attr(tag, "protocol").as_deref() {
                    Some("tcp") => Proto::Tcp,
                    Some("udp") => Proto::Udp,
                    _ => continue,
                };
                let number = attr(tag, "portid").and_then(|p| p.parse().ok());
                let (Some(a), Some(number)) = (addr, number) else {
                    return Err(bad("<port> without a host address or portid", text));
                };
                let key = (proto, SocketAddrV4::new(a, number));
                if empty {
                    out.insert(key, ServiceFinding::default());
                } else {
                    port = Some((key, ServiceFinding::default()));
                }
            }
            "state" => {
                if let Some((_, finding)) = port.as_mut() {
                    finding.state = attr(tag, "state").unwrap_or_default();
                }
            }
            "service" => {
                if let Some((_, finding)) = port.as_mut() {
                    let get = |key: &str| nonempty(attr(tag, key).as_deref());
                    finding.service = get("name");
                    finding.tls = attr(tag, "tunnel").as_deref() == Some("ssl");
                    finding.product = get("product");
                    finding.version = get("version");
                    finding.info = get("extrainfo");
                    finding.method = get("method");
                }
            }
            "cpe" if !empty => cpe = Some(String::new()),
            _ => {}
        }
    }
    if !seen_run {
        return Err(bad("no <nmaprun> element", text));
    }
    Ok(out)
}

fn attr(tag: &BytesStart<'_>, key: &str) -> Option<String> {
    let a = tag.try_get_attribute(key).ok()??;
    // nmap writes XML 1.0.
    a.normalized_value(XmlVersion::Explicit1_0).ok().map(|v| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn vantage_keeps_open_observations() {
        let doc = r#"{"scan": {}, "observations": [
            {"addr": "198.18.1.0", "port": 22, "state": "open"},
            {"addr": "198.18.1.0", "port": 23, "state": "closed"}]}"#;
        assert_eq!(vantage_json(doc).unwrap(), OpenSet::from([sa("198.18.1.0:22")]));
    }

    #[test]
    fn vantage_rejects_other_json() {
        assert!(vantage_json("{}").is_err());
        assert!(vantage_json("scan failed").is_err());
    }

    #[test]
    fn rustscan_lines_list_ports() {
        let got = rustscan_greppable("198.18.1.0 -> [22,80]\n198.18.1.7 -> [443]\n").unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.contains(&"198.18.1.7:443".parse().unwrap()));
        assert!(rustscan_greppable("Open 198.18.1.0:22").is_err());
    }

    #[test]
    fn masscan_lines_dedupe() {
        let text = "#masscan\nopen tcp 80 198.18.1.2 1700000000\nopen tcp 80 198.18.1.2 1700000001\n# end\n";
        assert_eq!(masscan_list(text).unwrap(), OpenSet::from([sa("198.18.1.2:80")]));
    }

    #[test]
    fn masscan_rejects_garbage() {
        assert!(masscan_list("open tcp eighty 198.18.1.2 1").is_err());
        assert!(masscan_list("what").is_err());
    }

    const NMAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sS" start="1">
<hosthint><status state="up" reason="arp-response"/>
<address addr="198.18.1.9" addrtype="ipv4"/>
</hosthint>
<host starttime="1" endtime="2"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="198.18.1.0" addrtype="ipv4"/>
<address addr="02:00:C6:12:01:00" addrtype="mac"/>
<hostnames>
</hostnames>
<ports><extraports state="closed" count="997">
<extrareasons reason="resets" count="997" proto="tcp" ports="1-21,23-79"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh" method="table" conf="3"/></port>
<port protocol="tcp" portid="80"><state state="filtered" reason="no-response" reason_ttl="0"/></port>
<port protocol="udp" portid="53"><state state="open" reason="udp-response" reason_ttl="64"/></port>
</ports>
</host>
<host><status state="up"/>
<address addr="198.18.1.1" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="443"><state state="open"/></port></ports>
</host>
<runstats><finished time="3"/><hosts up="2" down="0" total="2"/></runstats>
</nmaprun>
"#;

    #[test]
    fn nmap_open_tcp_ports_per_host() {
        assert_eq!(nmap_xml(NMAP).unwrap(), OpenSet::from([sa("198.18.1.0:22"), sa("198.18.1.1:443")]));
    }

    #[test]
    fn nmap_rejects_non_xml() {
        assert!(nmap_xml("Starting Nmap 7.93").is_err());
    }

    const NMAP_SV: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sV -Pn -n -p 22,443,3306,5353,9418 198.18.1.1 -oX x.xml" start="1" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="5" services="22,443,3306,5353,9418"/>
<host starttime="1" endtime="2"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="198.18.1.1" addrtype="ipv4"/>
<hostnames>
</hostnames>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh" product="OpenSSH" version="9.2p1 Debian 2+deb12u5" extrainfo="protocol 2.0" ostype="Linux" method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" product="nginx" version="1.22.1" tunnel="ssl" method="probed" conf="10"><cpe>cpe:/a:igor_sysoev:nginx:1.22.1</cpe></service></port>
<port protocol="tcp" portid="3306"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="mysql" product="MySQL" version="5.5.5-10.11.6-MariaDB-0+deb12u1" extrainfo="" method="probed" conf="10"><cpe>cpe:/a:mysql:mysql:5.5.5-10.11.6-mariadb-0+deb12u1</cpe></service></port>
<port protocol="tcp" portid="9418"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="git" method="table" conf="3"/></port>
<port protocol="udp" portid="5353"><state state="open" reason="udp-response" reason_ttl="64"/><service name="domain" product="dnsmasq" version="2.89" method="probed" conf="10"><cpe>cpe:/a:thekelleys:dnsmasq:2.89</cpe></service></port>
<port protocol="udp" portid="69"><state state="open|filtered" reason="no-response" reason_ttl="0"/><service name="tftp" method="table" conf="3"/></port>
</ports>
</host>
<runstats><finished time="3" timestr="x" summary="Nmap done" elapsed="20.1" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"#;

    fn tcp(port: u16) -> (Proto, SocketAddrV4) {
        (Proto::Tcp, SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), port))
    }

    #[test]
    fn nmap_services_read_names_products_versions_and_cpes() {
        let found = nmap_services(NMAP_SV).unwrap();
        assert_eq!(found.len(), 6);
        let ssh = &found[&tcp(22)];
        assert_eq!(ssh.state, "open");
        assert_eq!(ssh.service.as_deref(), Some("ssh"));
        assert_eq!((ssh.product.as_deref(), ssh.version.as_deref()), (Some("OpenSSH"), Some("9.2p1 Debian 2+deb12u5")));
        assert_eq!(ssh.info.as_deref(), Some("protocol 2.0"));
        assert_eq!(ssh.cpe, ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]);
        assert!(!ssh.tls);
        let https = &found[&tcp(443)];
        assert!(https.tls);
        assert_eq!(https.display_service().as_deref(), Some("ssl/http"));
        // An empty extrainfo is no info.
        assert_eq!(found[&tcp(3306)].info, None);
        let git = &found[&tcp(9418)];
        assert_eq!((git.product.as_deref(), git.method.as_deref(), git.cpe.len()), (None, Some("table"), 0));
        let udp = |port| (Proto::Udp, SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), port));
        assert_eq!(found[&udp(5353)].product.as_deref(), Some("dnsmasq"));
        assert_eq!(found[&udp(69)].state, "open|filtered");
        // The port-scan reader sees only the open TCP ports of the same document.
        assert_eq!(nmap_xml(NMAP_SV).unwrap().len(), 4);
    }

    #[test]
    fn nmap_services_reject_other_documents() {
        assert!(nmap_services("Starting Nmap 7.93").is_err());
        assert!(
            nmap_services("<nmaprun><host><ports><port protocol=\"tcp\" portid=\"22\"/></ports></host></nmaprun>")
                .is_err(),
            "a port outside any address"
        );
        assert!(nmap_services("<nmaprun></nmaprun>").unwrap().is_empty());
    }

    #[test]
    fn vantage_services_read_every_observation() {
        let doc = r#"{"scan": {}, "observations": [
            {"addr": "198.18.1.1", "proto": "tcp", "port": 443, "state": "open", "banner": null,
             "service": {"service": "http", "product": "nginx", "version": "1.22.1", "cpe": ["cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"],
                         "category": "web", "access": "open", "tls": {"self_signed": true}, "method": "probed"}},
            {"addr": "198.18.1.1", "proto": "tcp", "port": 22, "state": "open",
             "service": {"service": "ssh", "product": "OpenSSH", "version": "9.2p1", "info": "Debian 2+deb12u5", "method": "probed"}},
            {"addr": "198.18.1.1", "proto": "udp", "port": 69, "state": "open|filtered"}]}"#;
        let found = vantage_services(doc).unwrap();
        let https = &found[&tcp(443)];
        assert_eq!((https.display_service().as_deref(), https.product.as_deref()), (Some("ssl/http"), Some("nginx")));
        assert_eq!(https.cpe.len(), 1);
        assert_eq!(found[&tcp(22)].info.as_deref(), Some("Debian 2+deb12u5"));
        let tftp = &found[&(Proto::Udp, SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), 69))];
        assert_eq!((tftp.state.as_str(), tftp.service.as_deref()), ("open|filtered", None));
        assert!(vantage_services(r#"{"observations": [{"addr": "198.18.1.1", "port": 1, "state": "open"}]}"#).is_err());
    }
}
