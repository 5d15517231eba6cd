//! `vantage report`: a review period's report for the people who decide and
//! the people who fix, as one self-contained HTML file, Markdown, JSON or CSV.
//!
//! Everything comes through the Control API (ListFindings, ListBaselines,
//! Diff, and ListResults for the TLS facts of the period's scans); the report
//! never scans. Built by [`crate::report`], which is pure: the same store
//! and the same time give the same bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use vantage_proto::v1;
use vantage_shared::{Observation, Period};

use crate::cli::connect::{Connection, Needs};
use crate::cli::review::{diff, findings};
use crate::cli::{GlobalArgs, UsageError, status_error};
use crate::report::{self, BaselineFacts, DiffChange, Inputs};
use crate::review::policy::{Costs, Policy};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    vantage report                                   # the newest reviewed period, Markdown on stdout\n  \
    vantage report --period 2026-11 -o review-2026-11.html   # one self-contained HTML file\n  \
    vantage report --format json | jq .summary\n  \
    vantage report --format csv -o findings.csv      # one row per open finding\n  \
    vantage report -o r.html --policy policy.toml    # with the cost figures of the policy's [costs]\n\n\
The policy's [costs] table (currency = \"EUR\", critical = 250000, high = 50000, ...) gives the \
figures behind the estimated cost avoided; without it the report says how to configure them.")]
pub struct ReportArgs {
    /// The period to report on (YYYY-MM) [default: the newest reviewed period].
    #[arg(long)]
    pub period: Option<String>,
    /// Output format [default: from the -o file's extension (.html, .md, .json, .csv), else md].
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A policy file (TOML) whose [costs] table prices each severity.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML file (inline CSS and SVG charts).
    Html,
    /// Markdown, the charts as tables.
    Md,
    /// The report model as JSON.
    Json,
    /// One row per open finding.
    Csv,
}

impl ReportFormat {
    fn of_path(path: &Path) -> Option<ReportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(ReportFormat::Html),
            "md" | "markdown" => Some(ReportFormat::Md),
            "json" => Some(ReportFormat::Json),
            "csv" => Some(ReportFormat::Csv),
            _ => None,
        }
    }
}

/// What the coordinator holds for a report.
struct Fetched {
    period: Period,
    findings: Vec<crate::review::findings::Finding>,
    baselines: Vec<BaselineFacts>,
    previous: Option<Period>,
    changes: Vec<DiffChange>,
    tls: BTreeMap<report::TlsKey, vantage_shared::service::TlsFacts>,
    notes: BTreeMap<String, crate::notify::Notes>,
}

pub async fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<()> {
    let period = match &args.period {
        Some(p) => Some(p.parse::<Period>().map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let format = match (args.format, &args.output) {
        (Some(f), _) => f,
        (None, Some(path)) => ReportFormat::of_path(path).ok_or_else(|| {
            UsageError(format!("-o {}: name the format with --format (html, md, json, csv)", path.display()))
        })?,
        (None, None) => ReportFormat::Md,
    };
    let costs = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            Policy::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?.costs
        }
        None => None,
    };
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let fetched = fetch(&mut conn, period).await;
    conn.close().await;
    let f = fetched?;
    let text = render(&f, costs.as_ref(), format, SystemTime::now())?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            eprintln!("report of {} ({} bytes) written to {}", f.period, text.len(), path.display());
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

fn render(f: &Fetched, costs: Option<&Costs>, format: ReportFormat, now: SystemTime) -> anyhow::Result<String> {
    let inputs = Inputs {
        period: f.period,
        as_of: now.min(report::period_end(f.period)),
        findings: &f.findings,
        baselines: &f.baselines,
        previous: f.previous,
        changes: &f.changes,
        tls: &f.tls,
        costs,
        notes: &f.notes,
    };
    let r = report::build(&inputs);
    Ok(match format {
        ReportFormat::Html => report::html::render(&r)?,
        ReportFormat::Md => report::markdown::render(&r),
        ReportFormat::Json => report::machine::json(&r)?,
        ReportFormat::Csv => report::machine::csv(&r)?,
    })
}

async fn fetch(conn: &mut Connection, period: Option<Period>) -> anyhow::Result<Fetched> {
    let listed = conn.control.list_baselines(v1::ListBaselinesRequest {}).await.map_err(status_error)?.into_inner();
    let current: Vec<&v1::BaselineInfo> = listed.baselines.iter().filter(|b| b.current).collect();
    let mut baselines = Vec::new();
    for b in &current {
        let p = b.period.parse::<Period>().map_err(|e| anyhow::anyhow!("coordinator sent {e}"))?;
        baselines.push((p, *b));
    }
    let (findings, notes): (Vec<_>, Vec<_>) = findings::list_with_notes(conn).await?.into_iter().unzip();
    let notes = findings.iter().map(|f| f.id.clone()).zip(notes).filter(|(_, n)| *n != Default::default()).collect();
    // The newest period a review judged, or failing that the newest baseline.
    let reviewed = findings.iter().map(|f| f.last_period).max();
    let period = period
        .or(reviewed)
        .or_else(|| baselines.iter().map(|(p, _)| *p).max())
        .ok_or_else(|| UsageError("nothing to report yet: run `vantage review` first".into()))?;
    let Some((_, info)) = baselines.iter().find(|(p, _)| *p == period) else {
        return Err(UsageError(format!("no baseline for {period} (vantage baseline list shows the periods)")).into());
    };
    let previous = baselines.iter().map(|(p, _)| *p).filter(|p| *p < period).max();
    let mut changes = Vec::new();
    if let Some(prev) = previous {
        let request =
            v1::DiffRequest { from_period: prev.to_string(), to_period: period.to_string(), ..Default::default() };
        let (_, all) = diff::collect(conn, request).await?;
        changes = all.into_iter().map(|c| DiffChange { change: c.change, confirmed: c.confirmed }).collect();
    }
    let tls = tls_facts(conn, &info.scans).await?;
    let baselines = baselines.iter().map(|(p, b)| BaselineFacts { period: *p, open_ports: b.entries }).collect();
    Ok(Fetched { period, findings, baselines, previous, changes, tls, notes })
}

/// The TLS facts of the open ports of the period's scans (the first a
/// region reported, in the store's order).
async fn tls_facts(
    conn: &mut Connection,
    scans: &[u64],
) -> anyhow::Result<BTreeMap<report::TlsKey, vantage_shared::service::TlsFacts>> {
    let mut out = BTreeMap::new();
    for &scan_id in scans {
        let request = v1::ListResultsRequest { scan_id, include_closed: false };
        let mut stream = conn.control.list_results(request).await.map_err(status_error)?.into_inner();
        while let Some(wire) = stream.message().await.map_err(status_error)? {
            let o = Observation::try_from(&wire)?;
            if let Some(tls) = o.service.and_then(|s| s.tls) {
                out.entry((o.addr, o.proto, o.port)).or_insert(tls);
            }
        }
    }
    Ok(out)
}
