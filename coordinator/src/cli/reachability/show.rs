//! `vantage reachability [SCAN]`: per open port, its state from every
//! region that scanned it, with ports exposed inconsistently flagged. The
//! matrix goes to stdout (table, JSON or CSV), the one-line summary to stderr.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

use clap::Args;
use serde::Serialize;
use vantage_proto::v1;
use vantage_proto::v1::reachability_event::Body;
use vantage_shared::Proto;
use vantage_shared::convert::addr_from_bytes;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{ScanJson, table};
use crate::cli::{GlobalArgs, status_error};
use crate::review::reachability::{RegionState, RegionSummary};
use crate::server::reachability::state_from_wire;

const EXAMPLES: &str = "\
Each row is a port some region saw open; each region column says what that
region saw there:
  open          open from this region
  answers-all   the host answered on every port from this region
  not-open      scanned from this region and not open (closed or filtered)
  not-scanned   not scanned from this region (not asked, not finished yet,
                or the agent refused or could not route some probes)
A port open (or answers-all) from one region and not-open from another is
flagged `inconsistent`: a geo-fenced firewall, a partial rollout, a CDN.

Examples:
  vantage scan --coordinator https://coordinator.example:7420 --targets 198.18.0.0/24 \\
      --regions eu-west,us-east,ap-south --detach      # needs an agent per region
  vantage reachability --coordinator https://coordinator.example:7420   # the newest scan
  vantage reachability 12 --inconsistent                        # only the flagged ports
  vantage reachability 12 --format csv > reachability-12.csv";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ShowArgs {
    /// Scan id (see `vantage scan list`); the newest scan by default.
    pub scan: Option<u64>,

    /// Only the ports exposed inconsistently: open from one region, scanned
    /// and not open from another.
    #[arg(long)]
    pub inconsistent: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = MatrixFormat::Table)]
    pub format: MatrixFormat,
}

/// `--format` values: the matrix is a table, so CSV fits too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MatrixFormat {
    /// Aligned columns, one per region.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// A header line, then one line per port; one column per region.
    Csv,
}

/// One port as JSON shows it.
#[derive(Debug, Serialize)]
struct PortJson {
    addr: IpAddr,
    proto: Proto,
    /// 0 for a host that answers on every port.
    port: u16,
    /// Region → state, for every region of the scan.
    states: BTreeMap<String, RegionState>,
    inconsistent: bool,
}

#[derive(Debug, Default, Serialize)]
struct SummaryJson {
    ports: u64,
    inconsistent: u64,
    incomplete: u64,
}

#[derive(Debug, Serialize)]
struct Matrix {
    scan: ScanJson,
    regions: Vec<RegionSummary>,
    ports: Vec<PortJson>,
    summary: SummaryJson,
}

pub async fn run(global: &GlobalArgs, args: ShowArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let matrix = fetch(&mut conn, &args).await;
    conn.close().await;
    let matrix = matrix?;
    let mut out = io::stdout().lock();
    match args.format {
        MatrixFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &matrix)?;
            writeln!(out)?;
        }
        MatrixFormat::Csv => write_csv(&mut out, &matrix)?,
        MatrixFormat::Table => write_table(&mut out, &matrix)?,
    }
    out.flush()?;
    eprintln!("{}", summary_line(&matrix, args.inconsistent));
    Ok(())
}

async fn fetch(conn: &mut Connection, args: &ShowArgs) -> anyhow::Result<Matrix> {
    let request = v1::ReachabilityRequest { scan_id: args.scan.unwrap_or(0), inconsistent_only: args.inconsistent };
    let mut stream = conn.control.reachability(request).await.map_err(status_error)?.into_inner();
    let Some(v1::ReachabilityEvent { body: Some(Body::Header(header)) }) =
        stream.message().await.map_err(status_error)?
    else {
        anyhow::bail!("the coordinator's answer did not start with its header");
    };
    let regions: Vec<RegionSummary> = header
        .regions
        .into_iter()
        .map(|r| RegionSummary { region: r.region, shards_done: r.shards_done, shards_partial: r.shards_partial })
        .collect();
    let mut matrix = Matrix {
        scan: ScanJson::from(&header.scan.unwrap_or_default()),
        regions,
        ports: Vec::new(),
        summary: SummaryJson::default(),
    };
    let mut ended = false;
    while let Some(event) = stream.message().await.map_err(status_error)? {
        match event.body {
            Some(Body::Rows(rows)) => {
                for row in rows.rows {
                    matrix.ports.push(port_json(&matrix.regions, row)?);
                }
            }
            Some(Body::Summary(s)) => {
                matrix.summary = SummaryJson { ports: s.ports, inconsistent: s.inconsistent, incomplete: s.incomplete };
                ended = true;
            }
            Some(Body::Header(_)) | None => anyhow::bail!("unexpected message in the coordinator's answer"),
        }
    }
    anyhow::ensure!(ended, "the coordinator's answer ended before its summary");
    Ok(matrix)
}

fn port_json(regions: &[RegionSummary], row: v1::ReachabilityRow) -> anyhow::Result<PortJson> {
    anyhow::ensure!(
        row.states.len() == regions.len(),
        "a row with {} states for {} regions",
        row.states.len(),
        regions.len()
    );
    let states = regions
        .iter()
        .zip(&row.states)
        .map(|(r, s)| {
            let state = state_from_wire(*s).ok_or_else(|| anyhow::anyhow!("unknown region state {s}"))?;
            Ok((r.region.clone(), state))
        })
        .collect::<anyhow::Result<_>>()?;
    let proto = if row.proto == v1::Proto::Udp as i32 { Proto::Udp } else { Proto::Tcp };
    Ok(PortJson {
        addr: addr_from_bytes(&row.addr)?,
        proto,
        port: u16::try_from(row.port)?,
        states,
        inconsistent: row.inconsistent,
    })
}

fn port_text(p: &PortJson) -> String {
    if p.port == 0 { format!("*/{}", p.proto) } else { format!("{}/{}", p.port, p.proto) }
}

fn write_table(out: &mut impl Write, m: &Matrix) -> io::Result<()> {
    if m.ports.is_empty() {
        return Ok(());
    }
    let mut header: Vec<&str> = vec!["ADDRESS", "PORT"];
    header.extend(m.regions.iter().map(|r| r.region.as_str()));
    header.push("FLAG");
    let rows: Vec<Vec<String>> = m
        .ports
        .iter()
        .map(|p| {
            let mut row = vec![p.addr.to_string(), port_text(p)];
            row.extend(m.regions.iter().map(|r| p.states.get(&r.region).map(ToString::to_string).unwrap_or_default()));
            row.push(if p.inconsistent { "inconsistent".into() } else { String::new() });
            row
        })
        .collect();
    table(out, &header, &rows)
}

fn write_csv(out: &mut impl Write, m: &Matrix) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["addr", "proto", "port"];
    header.extend(m.regions.iter().map(|r| r.region.as_str()));
    header.push("inconsistent");
    w.write_record(&header)?;
    for p in &m.ports {
        let mut record = vec![p.addr.to_string(), p.proto.to_string(), p.port.to_string()];
        record.extend(m.regions.iter().map(|r| p.states.get(&r.region).map(ToString::to_string).unwrap_or_default()));
        record.push(p.inconsistent.to_string());
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

/// `scan 7: 42 ports open from some of 3 regions (ap, eu, us); 5 inconsistent, ...`
fn summary_line(m: &Matrix, only_inconsistent: bool) -> String {
    let s = &m.summary;
    let names: Vec<&str> = m.regions.iter().map(|r| r.region.as_str()).collect();
    let regions = match names.len() {
        0 => "no region yet".to_string(),
        1 => format!("1 region ({})", names[0]),
        n => format!("{n} regions ({})", names.join(", ")),
    };
    let ports = if s.ports == 1 { "1 port" } else { "" };
    let ports = if ports.is_empty() { format!("{} ports", s.ports) } else { ports.to_string() };
    let mut line = format!("scan {}: {ports} open from {regions}; {} inconsistent", m.scan.id, s.inconsistent);
    if s.incomplete > 0 {
        line += &format!(", {} not scanned from every region", s.incomplete);
    }
    if only_inconsistent {
        line += "; listing the inconsistent ones only";
    }
    if !m.scan.finished {
        line += &format!(" (scan still running: {}/{} shards done)", m.scan.shards_done, m.scan.shards_total);
    }
    if names.len() == 1 {
        line += "; one region cannot disagree with itself: scan with --regions A,B,... to compare";
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(regions: &[&str], ports: Vec<PortJson>, summary: SummaryJson) -> Matrix {
        let status = v1::ScanStatus { scan_id: 7, finished: true, ..Default::default() };
        Matrix {
            scan: ScanJson::from(&status),
            regions: regions
                .iter()
                .map(|r| RegionSummary { region: r.to_string(), shards_done: 1, shards_partial: 0 })
                .collect(),
            ports,
            summary,
        }
    }

    fn port(port: u16, states: &[(&str, RegionState)]) -> PortJson {
        let states: BTreeMap<String, RegionState> = states.iter().map(|(r, s)| (r.to_string(), *s)).collect();
        let exposed = states.values().any(|s| s.is_exposed());
        let inconsistent = exposed && states.values().any(|s| *s == RegionState::NotOpen);
        PortJson { addr: "198.18.1.1".parse().unwrap(), proto: Proto::Tcp, port, states, inconsistent }
    }

    fn sample() -> Matrix {
        let ports = vec![
            port(0, &[("eu", RegionState::AnswersAll), ("us", RegionState::AnswersAll)]),
            port(22, &[("eu", RegionState::Open), ("us", RegionState::NotOpen)]),
        ];
        matrix(&["eu", "us"], ports, SummaryJson { ports: 2, inconsistent: 1, incomplete: 0 })
    }

    #[test]
    fn the_table_has_a_column_per_region() {
        let mut buf = Vec::new();
        write_table(&mut buf, &sample()).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "ADDRESS     PORT    eu           us           FLAG\n\
             198.18.1.1  */tcp   answers-all  answers-all\n\
             198.18.1.1  22/tcp  open         not-open     inconsistent\n"
        );
    }

    #[test]
    fn csv_has_a_column_per_region() {
        let mut buf = Vec::new();
        write_csv(&mut buf, &sample()).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "addr,proto,port,eu,us,inconsistent\n\
             198.18.1.1,tcp,0,answers-all,answers-all,false\n\
             198.18.1.1,tcp,22,open,not-open,true\n"
        );
    }

    #[test]
    fn the_summary_counts_and_names_the_regions() {
        assert_eq!(summary_line(&sample(), false), "scan 7: 2 ports open from 2 regions (eu, us); 1 inconsistent");
        let mut m = sample();
        m.summary.incomplete = 1;
        assert!(
            summary_line(&m, true).ends_with(", 1 not scanned from every region; listing the inconsistent ones only")
        );
    }

    #[test]
    fn one_region_says_how_to_compare() {
        let m = matrix(&["local"], vec![], SummaryJson::default());
        let line = summary_line(&m, false);
        assert!(line.starts_with("scan 7: 0 ports open from 1 region (local); 0 inconsistent"), "{line}");
        assert!(line.contains("--regions"), "{line}");
    }

    #[test]
    fn rows_are_read_against_the_header_regions() {
        let regions: Vec<RegionSummary> = ["eu", "us"]
            .iter()
            .map(|r| RegionSummary { region: r.to_string(), shards_done: 1, shards_partial: 0 })
            .collect();
        let row = v1::ReachabilityRow {
            addr: vec![198, 18, 1, 1],
            proto: v1::Proto::Tcp as i32,
            port: 22,
            states: vec![v1::RegionState::Open as i32, v1::RegionState::NotScanned as i32],
            inconsistent: false,
        };
        let p = port_json(&regions, row.clone()).unwrap();
        assert_eq!(p.states["us"], RegionState::NotScanned);
        let short = v1::ReachabilityRow { states: vec![v1::RegionState::Open as i32], ..row };
        assert!(port_json(&regions, short).is_err());
    }
}
