//! A scan's observations as an nmap XML report (`nmap -oX`), for the tools
//! that read nmap's reports (ndiff, which tests/tests/nmap_xml.rs runs;
//! security trackers' nmap importers; nmap's own XSL stylesheet).
//!
//! The document follows nmap's DTD (`/usr/share/nmap/nmap.dtd`; a test
//! validates against it), which is also what those tools assume:
//!
//! * `scanner="nmap"` is the only value the DTD allows; `version` is
//!   Vantage's, `args` the Vantage command, and a leading comment says who
//!   wrote it.
//! * One `<host>` per address, in address order, with its ports in
//!   (protocol, port) order. Hosts are `up` with reason `user-set`: Vantage
//!   scans without host discovery, as `nmap -Pn` does.
//! * A detected service becomes `<service method="probed" conf="10">` with
//!   its CPEs as CPE 2.2 URIs (nmap's form); a name that only the port
//!   suggests is `method="table" conf="3"`, as nmap writes its guesses. TLS
//!   is `tunnel="ssl"`, and the certificate and banner go in `ssl-cert` and
//!   `banner` script elements, as nmap's scripts of those names write them.
//! * A host that answers on every port (a tarpit, an accept-all firewall) has
//!   no ports and says so in its `comment`.
//! * Scans are written as `connect` for TCP and `udp` for UDP: observations
//!   do not record whether a TCP port was found by SYN or connect probes.
//!
//! The reverse, reading nmap's reports into baselines, is
//! [`crate::review::import`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use vantage_detect::nmap::cpe23_to_22;
use vantage_shared::{Method, Observation, PortSpec, PortState, Proto, ServiceFacts};

/// What the report says about the run as a whole.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line that produced the results, for `args`.
    pub args: String,
    pub started: SystemTime,
    pub finished: SystemTime,
    /// The ports scanned (`22,80,8000-8100`), listed for each protocol the
    /// observations have (TCP when there are none).
    pub ports: PortSpec,
}

/// Writes `observations` (any order) as one nmap XML document.
pub fn write(out: impl Write, run: &Run, observations: &[Observation]) -> io::Result<()> {
    let mut hosts: BTreeMap<IpAddr, Vec<&Observation>> = BTreeMap::new();
    for o in observations {
        hosts.entry(o.addr).or_default().push(o);
    }
    let mut w = Writer::new_with_indent(out, b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::DocType(BytesText::from_escaped("nmaprun")))?;
    w.write_event(Event::Comment(BytesText::from_escaped(format!(
        " Written by Vantage {} (nmap's XML format) ",
        env!("CARGO_PKG_VERSION")
    ))))?;
    let start = epoch(run.started);
    let run_tag = tag(
        "nmaprun",
        &[
            ("scanner", "nmap"),
            ("args", &run.args),
            ("start", &start.to_string()),
            ("startstr", &humantime::format_rfc3339_seconds(run.started).to_string()),
            ("version", env!("CARGO_PKG_VERSION")),
            ("xmloutputversion", "1.05"),
        ],
    );
    w.write_event(Event::Start(run_tag.borrow()))?;
    let (services, count) = (run.ports.to_string(), run.ports.len().to_string());
    let udp = observations.iter().any(|o| o.proto == Proto::Udp);
    let tcp = observations.iter().any(|o| o.proto == Proto::Tcp) || !udp;
    for (proto, kind, present) in [("tcp", "connect", tcp), ("udp", "udp", udp)] {
        if present {
            let attrs = [("type", kind), ("protocol", proto), ("numservices", &count), ("services", &services)];
            w.write_event(Event::Empty(tag("scaninfo", &attrs)))?;
        }
    }
    w.write_event(Event::Empty(tag("verbose", &[("level", "0")])))?;
    w.write_event(Event::Empty(tag("debugging", &[("level", "0")])))?;
    for (addr, mut obs) in hosts.iter().map(|(a, o)| (*a, o.clone())) {
        obs.sort_by_key(|o| (o.proto, o.port));
        host(&mut w, addr, &obs)?;
    }
    let end = epoch(run.finished);
    let elapsed = run.finished.duration_since(run.started).unwrap_or_default().as_secs_f64();
    let up = hosts.len().to_string();
    let summary =
        format!("Vantage done at {}; {up} hosts with results", humantime::format_rfc3339_seconds(run.finished));
    w.create_element("runstats").write_inner_content(|w| {
        w.write_event(Event::Empty(tag(
            "finished",
            &[
                ("time", &end.to_string()),
                ("timestr", &humantime::format_rfc3339_seconds(run.finished).to_string()),
                ("elapsed", &format!("{elapsed:.2}")),
                ("summary", &summary),
                ("exit", "success"),
            ],
        )))?;
        w.write_event(Event::Empty(tag("hosts", &[("up", &up), ("down", "0"), ("total", &up)])))?;
        Ok(())
    })?;
    w.write_event(Event::End(run_tag.to_end()))?;
    w.get_mut().write_all(b"\n")
}

fn host<W: Write>(w: &mut Writer<W>, addr: IpAddr, obs: &[&Observation]) -> io::Result<()> {
    let first = obs.iter().map(|o| epoch(o.seen_at)).min().unwrap_or(0).to_string();
    let last = obs.iter().map(|o| epoch(o.seen_at)).max().unwrap_or(0).to_string();
    let mut attrs = vec![("starttime", first.as_str()), ("endtime", last.as_str())];
    let answers_all = obs.iter().any(|o| o.state == PortState::AnswersAll);
    if answers_all {
        attrs.push(("comment", "answers on (nearly) every port probed: a tarpit, SYN proxy or accept-all firewall"));
    }
    let host_tag = tag("host", &attrs);
    w.write_event(Event::Start(host_tag.borrow()))?;
    w.write_event(Event::Empty(tag("status", &[("state", "up"), ("reason", "user-set"), ("reason_ttl", "0")])))?;
    let (text, kind) = match addr {
        IpAddr::V4(a) => (a.to_string(), "ipv4"),
        IpAddr::V6(a) => (a.to_string(), "ipv6"),
    };
    w.write_event(Event::Empty(tag("address", &[("addr", &text), ("addrtype", kind)])))?;
    w.write_event(Event::Empty(BytesStart::new("hostnames")))?;
    let ports: Vec<&&Observation> = obs.iter().filter(|o| o.state != PortState::AnswersAll).collect();
    if !ports.is_empty() {
        w.create_element("ports").write_inner_content(|w| {
            for o in ports {
                port(w, o)?;
            }
            Ok(())
        })?;
    }
    w.write_event(Event::End(host_tag.to_end()))
}

fn port<W: Write>(w: &mut Writer<W>, o: &Observation) -> io::Result<()> {
    let proto = match o.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    let (state, reason) = match (o.state, o.proto) {
        (PortState::Open, Proto::Tcp) => ("open", "syn-ack"),
        (PortState::Open, Proto::Udp) => ("open", "udp-response"),
        (PortState::Closed, Proto::Tcp) => ("closed", "reset"),
        (PortState::Closed, Proto::Udp) => ("closed", "port-unreach"),
        _ => ("filtered", "no-response"),
    };
    let port_id = o.port.to_string();
    w.create_element("port").with_attributes([("protocol", proto), ("portid", &port_id)]).write_inner_content(|w| {
        w.write_event(Event::Empty(tag("state", &[("state", state), ("reason", reason), ("reason_ttl", "0")])))?;
        if let Some(s) = &o.service {
            service(w, s)?;
        }
        if !o.banner.is_empty() {
            script(w, "banner", &o.banner_text())?;
        }
        if let Some(tls) = o.service.as_ref().and_then(|s| s.tls.as_ref()) {
            let mut text = format!("Subject: {}\nIssuer: {}", tls.subject, tls.issuer);
            if !tls.sans.is_empty() {
                text.push_str(&format!("\nSubject Alternative Name: {}", tls.sans.join(", ")));
            }
            for (label, t) in [("Not valid before", tls.not_before), ("Not valid after", tls.not_after)] {
                if let Ok(secs) = u64::try_from(t) {
                    let at = UNIX_EPOCH + std::time::Duration::from_secs(secs);
                    text.push_str(&format!("\n{label}:  {}", humantime::format_rfc3339_seconds(at)));
                }
            }
            text.push_str(&format!("\nSHA-256: {}", tls.sha256));
            script(w, "ssl-cert", &text)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn service<W: Write>(w: &mut Writer<W>, s: &ServiceFacts) -> io::Result<()> {
    let (method, conf) = if s.method == Method::PortGuess { ("table", "3") } else { ("probed", "10") };
    let mut attrs = vec![("name", s.service.as_str()), ("method", method), ("conf", conf)];
    for (key, value) in [("product", &s.product), ("version", &s.version), ("extrainfo", &s.info)] {
        if let Some(v) = value {
            attrs.push((key, v));
        }
    }
    if s.tls.is_some() {
        attrs.push(("tunnel", "ssl"));
    }
    let cpes: Vec<String> = s.cpe.iter().filter_map(|c| cpe23_to_22(c)).collect();
    let element = tag("service", &attrs);
    if cpes.is_empty() {
        return w.write_event(Event::Empty(element));
    }
    w.write_event(Event::Start(element.borrow()))?;
    for cpe in &cpes {
        w.create_element("cpe").write_text_content(BytesText::new(&clean(cpe)))?;
    }
    w.write_event(Event::End(element.to_end()))
}

fn script<W: Write>(w: &mut Writer<W>, id: &str, output: &str) -> io::Result<()> {
    w.write_event(Event::Empty(tag("script", &[("id", id), ("output", output)])))
}

/// An element with attributes, each value escaped for an attribute.
fn tag<'a>(name: &'a str, attrs: &[(&'a str, &str)]) -> BytesStart<'a> {
    let mut t = BytesStart::new(name);
    for (key, value) in attrs {
        t.push_attribute(Attribute { key: QName(key), value: Cow::Owned(attr(value)) });
    }
    t
}

/// An attribute value: markup characters escaped, line breaks and tabs as
/// character references (a parser would fold them into spaces otherwise),
/// and characters XML 1.0 cannot carry at all written as `\xNN` text.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xa;"),
            '\r' => out.push_str("&#xd;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces what XML 1.0 forbids (control characters but tab, line feed and
/// carriage return; U+FFFE and U+FFFF) with `\xNN` / `\u{...}` text.
fn clean(s: &str) -> Cow<'_, str> {
    let bad = |c: char| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars().map(|c| if bad(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect::<String>(),
    )
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[cfg(test)]
mod tests;
