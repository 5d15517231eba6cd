//! How commands print data: aligned tables for people, JSON for programs.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use vantage_proto::prost_types;
use vantage_proto::v1;
use vantage_shared::convert::time_from_wire;
use vantage_shared::observation::printable;
use vantage_shared::{Access, Method, Observation, PortSpec, PortState, ServiceFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// How a scan's observations are printed (`vantage results`, `vantage scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ResultsFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON document: the scan's status and its observations.
    Json,
    /// JSON Lines: one observation per line, nothing else (for jq, log shippers, data lakes).
    Jsonl,
    /// An nmap XML report (`nmap -oX`), for ndiff and other tools that read nmap's reports.
    NmapXml,
}

/// Prints rows under a header with columns padded to their widest cell.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn wire_time(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    time_from_wire(t)
}

/// A scan's summary as JSON shows it.
#[derive(Debug, Serialize)]
pub struct ScanJson {
    pub id: u64,
    pub label: String,
    pub targets: String,
    pub ports: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub finished: bool,
    pub shards_total: u64,
    pub shards_done: u64,
    pub probes_total: u64,
    pub probes_done: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    pub refused: u64,
    pub answers_all_hosts: u64,
    /// Packets sent, retransmissions included.
    pub packets: u64,
    pub unreachable: u64,
}

impl From<&v1::ScanStatus> for ScanJson {
    fn from(s: &v1::ScanStatus) -> Self {
        ScanJson {
            id: s.scan_id,
            label: s.label.clone(),
            targets: s.targets.clone(),
            ports: s.ports.clone(),
            started_at: wire_time(s.started_at.as_ref()).map(rfc3339),
            finished_at: wire_time(s.finished_at.as_ref()).map(rfc3339),
            finished: s.finished,
            shards_total: s.shards_total,
            shards_done: s.shards_done,
            probes_total: s.probes_total,
            probes_done: s.probes_done,
            open: s.open,
            closed: s.closed,
            filtered: s.filtered,
            refused: s.refused,
            answers_all_hosts: s.answers_all_hosts,
            packets: s.packets,
            unreachable: s.unreachable,
        }
    }
}

/// One observation as JSON shows it.
#[derive(Debug, Serialize)]
pub struct ObservationJson {
    pub addr: String,
    pub proto: String,
    pub port: u16,
    pub state: String,
    pub rtt_us: u64,
    pub region: String,
    pub agent: String,
    pub seen_at: String,
    /// The banner with control bytes escaped.
    pub banner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceFacts>,
}

impl From<&Observation> for ObservationJson {
    fn from(o: &Observation) -> Self {
        ObservationJson {
            addr: o.addr.to_string(),
            proto: o.proto.to_string(),
            port: o.port,
            state: o.state.to_string(),
            rtt_us: o.rtt.as_micros() as u64,
            region: o.region.clone(),
            agent: o.agent.clone(),
            seen_at: rfc3339(o.seen_at),
            banner: o.banner_text(),
            service: o.service.clone(),
        }
    }
}

/// Prints a scan's observations.
pub fn print_results(
    format: ResultsFormat,
    status: &v1::ScanStatus,
    observations: &[Observation],
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        ResultsFormat::Jsonl => {
            for o in observations {
                serde_json::to_writer(&mut out, &ObservationJson::from(o))?;
                writeln!(out)?;
            }
        }
        ResultsFormat::NmapXml => {
            let now = SystemTime::now();
            let started = wire_time(status.started_at.as_ref()).unwrap_or(now);
            let run = crate::nmap_xml::Run {
                args: std::env::args().collect::<Vec<_>>().join(" "),
                started,
                finished: wire_time(status.finished_at.as_ref()).unwrap_or(now).max(started),
                ports: PortSpec::parse(&status.ports)
                    .map_err(|e| anyhow::anyhow!("the coordinator sent ports `{}`: {e}", status.ports))?,
            };
            crate::nmap_xml::write(&mut out, &run, observations)?;
        }
        ResultsFormat::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                scan: ScanJson,
                observations: &'a [ObservationJson],
            }
            let obs: Vec<ObservationJson> = observations.iter().map(Into::into).collect();
            serde_json::to_writer_pretty(&mut out, &Doc { scan: status.into(), observations: &obs })?;
            writeln!(out)?;
        }
        ResultsFormat::Table if observations.iter().any(|o| o.service.is_some()) => {
            let rows: Vec<Vec<String>> = observations
                .iter()
                .map(|o| {
                    let f = o.service.as_ref();
                    vec![
                        o.addr.to_string(),
                        port_column(o),
                        o.state.to_string(),
                        f.map(|f| printable(f.display_service().as_bytes())).unwrap_or_default(),
                        truncate(&f.map(ServiceFacts::summary).unwrap_or_default(), 60),
                        f.map(|f| f.category.to_string()).unwrap_or_default(),
                        f.map(notes).unwrap_or_default(),
                        o.region.clone(),
                    ]
                })
                .collect();
            let header = ["ADDRESS", "PORT", "STATE", "SERVICE", "VERSION", "CATEGORY", "NOTES", "REGION"];
            table(&mut out, &header, &rows)?;
        }
        ResultsFormat::Table => {
            let rows: Vec<Vec<String>> = observations
                .iter()
                .map(|o| {
                    vec![
                        o.addr.to_string(),
                        port_column(o),
                        o.state.to_string(),
                        o.region.clone(),
                        format_rtt(o.rtt),
                        truncate(&o.banner_text(), 80),
                    ]
                })
                .collect();
            if rows.is_empty() {
                writeln!(out, "no open ports found")?;
            } else {
                table(&mut out, &["ADDRESS", "PORT", "STATE", "REGION", "RTT", "BANNER"], &rows)?;
            }
        }
    }
    Ok(())
}

fn port_column(o: &Observation) -> String {
    if o.state == PortState::AnswersAll { format!("*/{}", o.proto) } else { format!("{}/{}", o.port, o.proto) }
}

/// What a reviewer should notice at once: anonymous access, TLS trouble,
/// and that a service name is only the port's usual one.
fn notes(f: &ServiceFacts) -> String {
    let mut notes = Vec::new();
    if f.access == Access::Open {
        notes.push("no auth".to_string());
    }
    if let Some(tls) = &f.tls {
        if tls.self_signed {
            notes.push("self-signed".to_string());
        }
        if tls.error.is_some() {
            notes.push("bad certificate".to_string());
        }
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        if tls.error.is_none() && tls.not_after < now {
            notes.push("expired".to_string());
        }
    }
    if f.method == Method::PortGuess {
        notes.push("unconfirmed".to_string());
    }
    notes.join(", ")
}

fn format_rtt(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.2}ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let mut buf = Vec::new();
        let rows = vec![vec!["127.0.0.1".to_string(), "22/tcp".into()], vec!["::1".into(), "8080/tcp".into()]];
        table(&mut buf, &["ADDRESS", "PORT"], &rows).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "ADDRESS    PORT\n127.0.0.1  22/tcp\n::1        8080/tcp\n");
    }

    #[test]
    fn long_banners_are_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
