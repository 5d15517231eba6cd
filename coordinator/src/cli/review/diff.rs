//! `vantage diff [FROM] [TO]`: what changed between two review periods
//! (or, with `--from-scan`/`--to-scan`, two scans).
//!
//! Changes are listed as unconfirmed until the confirmation step (a re-probe
//! at a low rate, and from a second region) exists: a candidate change is
//! never presented as a confirmed one.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;
use vantage_proto::v1;
use vantage_shared::Period;
use vantage_shared::convert::addr_from_bytes;

use super::baseline::BaselineJson;
use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, table};
use crate::cli::{GlobalArgs, UsageError, status_error};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier period (YYYY-MM) [default: the month before TO].
    pub from: Option<String>,
    /// The later period (YYYY-MM) [default: the current month, UTC].
    pub to: Option<String>,
    /// Compare this scan instead of the earlier period's baseline.
    #[arg(long, value_name = "SCAN")]
    pub from_scan: Option<u64>,
    /// Compare this scan instead of the later period's baseline.
    #[arg(long, value_name = "SCAN")]
    pub to_scan: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
struct ChangeJson {
    kind: String,
    addr: String,
    proto: String,
    port: u16,
    before: String,
    after: String,
    confirmed: bool,
}

impl DiffArgs {
    fn request(&self) -> Result<v1::DiffRequest, UsageError> {
        let parse = |s: &str| s.parse::<Period>().map_err(|e| UsageError(e.to_string()));
        let to = match &self.to {
            Some(t) => parse(t)?,
            None => Period::of(std::time::SystemTime::now()),
        };
        let from = match &self.from {
            Some(f) => parse(f)?,
            None => to.previous(),
        };
        if self.from_scan.is_none() && self.to_scan.is_none() && from >= to {
            return Err(UsageError(format!("{from} is not before {to}: give the earlier period first")));
        }
        Ok(v1::DiffRequest {
            from_period: from.to_string(),
            to_period: to.to_string(),
            from_scan: self.from_scan.unwrap_or(0),
            to_scan: self.to_scan.unwrap_or(0),
        })
    }
}

pub async fn run(global: &GlobalArgs, args: DiffArgs) -> anyhow::Result<()> {
    let request = args.request()?;
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let result = collect(&mut conn, request).await;
    conn.close().await;
    let (header, changes) = result?;
    let side = |b: &Option<v1::BaselineInfo>| match b {
        Some(b) if b.revision == 0 => {
            format!("scan {}", b.scans.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        }
        Some(b) => format!("{} (revision {}, scans {:?})", b.period, b.revision, b.scans),
        None => "nothing".to_string(),
    };
    if header.from.is_none() {
        eprintln!("no earlier baseline: a first review, everything counts as new");
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &changes {
        *counts.entry(c.kind.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    eprintln!(
        "{} -> {}: {} changes{}; none confirmed yet (no re-probe was run)",
        side(&header.from),
        side(&header.to),
        changes.len(),
        if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) }
    );
    match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                from: Option<BaselineJson>,
                to: Option<BaselineJson>,
                changes: &'a [ChangeJson],
            }
            let doc = Doc {
                from: header.from.as_ref().map(Into::into),
                to: header.to.as_ref().map(Into::into),
                changes: &changes,
            };
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Table if changes.is_empty() => println!("no changes"),
        Format::Table => {
            let rows: Vec<Vec<String>> = changes
                .iter()
                .map(|c| {
                    let port = if c.port == 0 { "*".to_string() } else { c.port.to_string() };
                    vec![
                        c.kind.clone(),
                        c.addr.clone(),
                        format!("{port}/{}", c.proto),
                        c.before.clone(),
                        c.after.clone(),
                        if c.confirmed { "confirmed" } else { "unconfirmed" }.to_string(),
                    ]
                })
                .collect();
            table(&mut std::io::stdout().lock(), &["CHANGE", "ADDRESS", "PORT", "BEFORE", "AFTER", "STATUS"], &rows)?;
        }
    }
    Ok(())
}

async fn collect(conn: &mut Connection, request: v1::DiffRequest) -> anyhow::Result<(v1::DiffHeader, Vec<ChangeJson>)> {
    let mut stream = conn.control.diff(request).await.map_err(status_error)?.into_inner();
    let mut header = v1::DiffHeader::default();
    let mut changes = Vec::new();
    while let Some(event) = stream.message().await.map_err(status_error)? {
        match event.body {
            Some(v1::diff_event::Body::Header(h)) => header = h,
            Some(v1::diff_event::Body::Change(c)) => changes.push(ChangeJson {
                kind: kind_name(c.kind()).to_string(),
                addr: addr_from_bytes(&c.addr).map(|a| a.to_string()).unwrap_or_default(),
                proto: if c.proto() == v1::Proto::Udp { "udp" } else { "tcp" }.to_string(),
                port: c.port as u16,
                before: vantage_shared::observation::printable(c.before.as_bytes()),
                after: vantage_shared::observation::printable(c.after.as_bytes()),
                confirmed: c.confirmed,
            }),
            None => {}
        }
    }
    Ok((header, changes))
}

fn kind_name(k: v1::ChangeKind) -> &'static str {
    match k {
        v1::ChangeKind::New => "new",
        v1::ChangeKind::Closed => "closed",
        v1::ChangeKind::ServiceChanged => "service-changed",
        v1::ChangeKind::VersionChanged => "version-changed",
        v1::ChangeKind::TlsChanged => "tls-changed",
        v1::ChangeKind::ReachabilityChanged => "reachability-changed",
        v1::ChangeKind::StateChanged => "state-changed",
        v1::ChangeKind::Unspecified => "unknown",
    }
}
