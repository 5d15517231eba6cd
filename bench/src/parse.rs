//! Open ports out of each tool's output: Vantage's JSON document, nmap's
//! XML (`-oX -`) and masscan's list format (`-oL -`).
//!
//! nmap's XML is read as a stream of events (quick-xml): only `host`,
//! `address`, `port` and `state` elements matter.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

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
}
