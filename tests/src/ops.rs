//! The ops endpoint of a running process, as a scraper sees it: plain HTTP
//! GETs of `/metrics`, `/healthz` and `/readyz`, and the OpenMetrics text
//! read back into numbers.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const IO_LIMIT: Duration = Duration::from_secs(10);

/// GETs `path` from `addr`: the status code and the body, or `None` when
/// nothing answers there.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_LIMIT).ok()?;
    stream.set_read_timeout(Some(IO_LIMIT)).ok()?;
    // HTTP/1.0 without keep-alive: the server closes after its answer.
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// One scrape of `/metrics`: each sample line (`name{labels} value`) by its
/// name with labels, as the text has it.
pub fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (code, body) = get(addr, "/metrics").unwrap_or_else(|| panic!("no answer from {addr}/metrics"));
    assert_eq!(code, 200, "{addr}/metrics: {body}");
    assert!(body.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    parse(&body)
}

/// Sample lines of OpenMetrics text, by series.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of every series of metric `name` (all label sets), 0 when none.
pub fn total(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.iter().filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{"))).map(|(_, v)| v).sum()
}
