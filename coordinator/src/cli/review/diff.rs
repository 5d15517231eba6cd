//! `vantage diff [FROM] [TO]`: what changed between two review periods
//! (or, with `--from-scan`/`--to-scan`, two scans).
//!
//! Every candidate change is re-probed first (a low-rate verification scan,
//! see [`super::confirm`]); only what the re-probe shows again is a
//! confirmed change. The rest is listed as unconfirmed, never as a change:
//! contradicted by the re-probe, seen otherwise by a second region, not
//! confirmable by the regions at hand, or not re-probed (`--no-confirm`, a
//! first review, too many candidates).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;
use serde::Serialize;
use vantage_proto::v1;
use vantage_shared::Period;
use vantage_shared::observation::printable;

use super::baseline::BaselineJson;
use super::confirm;
use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, table};
use crate::cli::{GlobalArgs, UsageError, status_error};
use crate::review::confirm::{Verdict, judge};
use crate::review::diff::Change;
use crate::review::ignore;

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
    /// List the candidate changes without re-probing them (all unconfirmed).
    #[arg(long)]
    pub no_confirm: bool,
    /// Re-probes per second to any one host while confirming.
    #[arg(long, default_value_t = 20)]
    pub confirm_host_rate: u32,
    /// Ignore rules (TOML: target, ports, proto, kinds, reason, expires):
    /// matching changes are left out of the table and listed as ignored in
    /// JSON; expired rules stop applying and are named on stderr.
    #[arg(long, value_name = "FILE", env = "VANTAGE_IGNORE")]
    pub ignore: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeJson {
    #[serde(flatten)]
    pub(crate) change: Change,
    pub(crate) confirmed: bool,
    /// confirmed, contradicted, regions-disagree, unconfirmable (see
    /// [`Verdict`]), or not-reprobed.
    status: &'static str,
    /// The ignore rule that hides it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored_by: Option<IgnoredJson>,
}

#[derive(Debug, Serialize)]
struct IgnoredJson {
    rule: usize,
    reason: String,
    expires: String,
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
    let rules = match &args.ignore {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            ignore::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    let now = SystemTime::now();
    for r in rules.iter().filter(|r| r.expired(now)) {
        eprintln!("ignore rule {} (\"{}\") expired on {}: it no longer applies", r.number, r.reason, r.expires);
    }
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let result = collect(&mut conn, request).await;
    conn.close().await;
    let (header, mut all) = result?;
    for c in &mut all {
        c.ignored_by = ignore::matching(&rules, &c.change, now).map(|r| IgnoredJson {
            rule: r.number,
            reason: r.reason.clone(),
            expires: r.expires.clone(),
        });
    }
    let (ignored, mut changes): (Vec<ChangeJson>, Vec<ChangeJson>) =
        all.into_iter().partition(|c| c.ignored_by.is_some());
    if !ignored.is_empty() {
        eprintln!("{} changes hidden by ignore rules (listed under \"ignored\" with --format json)", ignored.len());
    }
    let candidates: Vec<&Change> = changes.iter().map(|c| &c.change).filter(|c| confirm::confirmable(c.kind)).collect();
    let skip = if args.no_confirm {
        Some("--no-confirm")
    } else if header.from.is_none() {
        Some("a first review has nothing to confirm against")
    } else if candidates.len() > confirm::MAX_CANDIDATES {
        Some("too many candidates to re-probe")
    } else {
        None
    };
    match skip {
        Some(why) if !candidates.is_empty() => eprintln!("not re-probing {} candidates: {why}", candidates.len()),
        Some(_) => {}
        None if candidates.is_empty() => {}
        None => match confirm::reprobe(global, &candidates, args.confirm_host_rate, &scanned(&header)).await {
            Ok(reprobe) => {
                for c in &mut changes {
                    let verdict = judge(&c.change, &reprobe);
                    c.status = verdict.word();
                    c.confirmed = verdict == Verdict::Confirmed;
                }
            }
            Err(e) => eprintln!("re-probe failed: {e:#}; every change stays unconfirmed"),
        },
    }
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
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.confirmed) {
        *counts.entry(c.change.kind.to_string()).or_default() += 1;
    }
    let unconfirmed = changes.iter().filter(|c| !c.confirmed).count();
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    eprintln!(
        "{} -> {}: {} confirmed changes{}, {unconfirmed} unconfirmed",
        side(&header.from),
        side(&header.to),
        changes.len() - unconfirmed,
        if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) }
    );
    match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                from: Option<BaselineJson>,
                to: Option<BaselineJson>,
                changes: &'a [ChangeJson],
                ignored: &'a [ChangeJson],
            }
            let doc = Doc {
                from: header.from.as_ref().map(Into::into),
                to: header.to.as_ref().map(Into::into),
                changes: &changes,
                ignored: &ignored,
            };
            // Written as it serializes: a diff of a large estate is tens of megabytes.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
            out.flush()?;
        }
        Format::Table if changes.is_empty() => println!("no changes"),
        Format::Table => {
            let rows: Vec<Vec<String>> = changes
                .iter()
                .map(|j| {
                    let c = &j.change;
                    let port = if c.port == 0 { "*".to_string() } else { c.port.to_string() };
                    vec![
                        c.kind.to_string(),
                        c.addr.to_string(),
                        format!("{port}/{}", c.proto),
                        printable(c.before.as_bytes()),
                        printable(c.after.as_bytes()),
                        j.status.to_string(),
                    ]
                })
                .collect();
            table(&mut std::io::stdout().lock(), &["CHANGE", "ADDRESS", "PORT", "BEFORE", "AFTER", "STATUS"], &rows)?;
        }
    }
    Ok(())
}

/// The diff's header and every change, as the coordinator streams them.
pub(crate) async fn collect(
    conn: &mut Connection,
    request: v1::DiffRequest,
) -> anyhow::Result<(v1::DiffHeader, Vec<ChangeJson>)> {
    let mut stream = conn.control.diff(request).await.map_err(status_error)?.into_inner();
    let mut header = v1::DiffHeader::default();
    let mut changes = Vec::new();
    while let Some(event) = stream.message().await.map_err(status_error)? {
        match event.body {
            Some(v1::diff_event::Body::Header(h)) => header = h,
            Some(v1::diff_event::Body::Changes(batch)) => {
                for c in batch.changes {
                    let confirmed = c.confirmed;
                    let change = change_from_wire(c)?;
                    changes.push(ChangeJson { change, confirmed, status: "not-reprobed", ignored_by: None });
                }
            }
            None => {}
        }
    }
    Ok((header, changes))
}

/// The regions the later side was scanned from.
fn scanned(header: &v1::DiffHeader) -> Vec<String> {
    header.to.as_ref().map(|b| b.regions.clone()).unwrap_or_default()
}

pub fn change_from_wire(c: v1::Change) -> anyhow::Result<Change> {
    Ok(crate::workflow::review::change_from_wire(c)?)
}
