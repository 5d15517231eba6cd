//! `vantage review` and `vantage findings`: judge a period's baseline into
//! findings, then list them, read one, and record decisions on them.
//!
//! `vantage review 2026-11 --register register.toml --inventory assets.csv`
//! stores the documents it is given with the coordinator (checked there,
//! line by line), so scheduled reviews judge against the same ones, then
//! reviews the period. Findings are remediated only by a later review that
//! no longer sees them on ports its scans covered, and only once a low-rate
//! re-probe (as `vantage diff` makes) confirms the port closed; never by hand.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};
use vantage_proto::v1;
use vantage_shared::Period;
use vantage_shared::convert::time_to_wire;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, rfc3339, table};
use crate::cli::{GlobalArgs, UsageError, status_error, workflow_error};
use crate::review::findings::{Finding, Severity, hours_text};
use crate::workflow::{self, review::ReviewRun};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    vantage review --targets 198.18.0.0/24 --ports top-1000   # scan this month, then review\n  \
    vantage review 2026-11 --register register.toml --inventory assets.csv\n  \
    vantage review --policy policy.toml        # the current month, with a stricter policy\n  \
    vantage findings --severity critical --overdue\n  \
    vantage findings export --format defectdojo -o vantage-defectdojo.json")]
pub struct ReviewArgs {
    /// The period to review (YYYY-MM) [default: the current month, UTC].
    pub period: Option<String>,
    /// The justification register (TOML) to store and judge against.
    #[arg(long, value_name = "FILE")]
    pub register: Option<PathBuf>,
    /// The asset inventory (CSV: host,software,version) to store and compare with.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// A policy file (TOML: [deadlines], [severity]) to store and apply.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Ticket trackers and notification channels (integrations.toml) to
    /// store: the review's new and changed findings are filed and escalated
    /// there (`vantage integrations check FILE` checks it offline).
    #[arg(long, value_name = "FILE")]
    pub integrations: Option<PathBuf>,
    /// Scan these targets for the period first (as `vantage scan --targets
    /// ... --period PERIOD` with its defaults), then review: the whole
    /// monthly review in one command.
    #[arg(long, short = 't')]
    pub targets: Option<String>,
    /// Ports for that scan [default: top-100].
    #[arg(long, short = 'p', requires = "targets")]
    pub ports: Option<String>,
    /// Do not re-probe ports that closed; their findings stay as they were
    /// (a finding is remediated only when a re-probe confirms the closure).
    #[arg(long)]
    pub no_confirm: bool,
    /// Re-probes per second to any one host while confirming closures.
    #[arg(long, default_value_t = 20)]
    pub confirm_host_rate: u32,
    /// Output format of the findings after the summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FindingsArgs {
    #[command(subcommand)]
    pub action: Option<FindingsAction>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Subcommand)]
pub enum FindingsAction {
    /// One finding in full: sentence, detail, history.
    Show {
        /// The finding's id (F-12).
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The owner knows and is on it.
    Ack {
        id: String,
        /// Who acknowledges [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
    /// Every finding (remediated ones too, so that they close there) in
    /// another tool's format: DefectDojo's generic findings import JSON
    /// (import as scan type "Generic Findings Import"; re-imports update by
    /// the finding's identity).
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Defectdojo)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Live with it, for a reason, until a date; it opens again after.
    Accept {
        id: String,
        /// Why the risk is acceptable (recorded in the history).
        #[arg(long)]
        reason: String,
        /// The last day of the acceptance (YYYY-MM-DD, UTC) or a duration ("90days").
        #[arg(long)]
        until: String,
        /// Who decides [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
}

/// `vantage findings export --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// DefectDojo's "Generic Findings Import" JSON.
    Defectdojo,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this severity or worse (critical, high, medium, low).
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Only this status (open, acknowledged, accepted-risk, remediated, reopened).
    #[arg(long)]
    pub status: Option<String>,
    /// Only those past their deadline and still to act on.
    #[arg(long)]
    pub overdue: bool,
    /// Only this owner's (as the register names them).
    #[arg(long)]
    pub owner: Option<String>,
    /// Remediated and risk-accepted findings too (by default: only those to act on).
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("`{s}` is no severity (critical, high, medium, low)"))
}

pub async fn review(global: &GlobalArgs, args: ReviewArgs) -> anyhow::Result<()> {
    let period = match &args.period {
        Some(p) => p.parse::<Period>().map_err(|e| UsageError(e.to_string()))?,
        None => Period::of(SystemTime::now()),
    };
    let mut documents = Vec::new();
    for (kind, path) in [
        (v1::DocumentKind::Register, &args.register),
        (v1::DocumentKind::Inventory, &args.inventory),
        (v1::DocumentKind::Policy, &args.policy),
        (v1::DocumentKind::Integrations, &args.integrations),
    ] {
        if let Some(path) = path {
            documents.push(document(kind, path)?);
        }
    }
    let scan = match &args.targets {
        Some(t) => Some(crate::cli::scan::start::default_request(t, args.ports.as_deref(), period)?),
        None => None,
    };
    // The re-probe of closures needs an agent (embedded: an in-process one).
    let mut conn = Connection::open(global, Needs::Agent).await?;
    let result = async {
        if let Some(request) = scan {
            let status = crate::cli::scan::start::start_and_follow(&mut conn, request).await?;
            eprintln!(
                "what changed since {}: vantage diff {} {period} (scan {})",
                period.previous(),
                period.previous(),
                status.scan_id
            );
        }
        let run = ReviewRun {
            documents,
            confirm: !args.no_confirm,
            host_rate: args.confirm_host_rate,
            ..ReviewRun::new(period)
        };
        let done = workflow::review::run(&mut conn.control, &run, &workflow::stderr).await.map_err(workflow_error)?;
        let findings = list(&mut conn).await?;
        anyhow::Ok((done.summary, findings))
    }
    .await;
    conn.close().await;
    let (summary, findings) = result?;
    eprintln!("review of {period}: judged against {}", summary.knowledge.join("; "));
    eprintln!(
        "{} new, {} still open, {} reopened, {} remediated{}",
        summary.new,
        summary.still_open,
        summary.reopened,
        summary.remediated,
        if summary.not_covered > 0 {
            format!(
                ", {} earlier findings on ports this period's scans did not cover (left as they were)",
                summary.not_covered
            )
        } else {
            String::new()
        }
    );
    if summary.unconfirmed > 0 {
        eprintln!(
            "{} findings that no longer apply stay as they were: the re-probe did not confirm the port closed or changed",
            summary.unconfirmed
        );
    }
    let now = SystemTime::now();
    let active: Vec<Finding> = findings.into_iter().filter(|f| f.status.is_active(now)).collect();
    print_list(&active, args.format, now)
}

pub fn document(kind: v1::DocumentKind, path: &Path) -> anyhow::Result<v1::PutDocumentRequest> {
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let name = path.display().to_string();
    let kind_name = crate::server::review::kind_name(kind).expect("a named kind");
    // Checked here for a quick answer with the line; the coordinator checks again.
    crate::server::review::check(kind_name, &name, &text).map_err(UsageError)?;
    Ok(v1::PutDocumentRequest { kind: kind as i32, name, text })
}

/// Every finding the coordinator keeps.
pub(crate) async fn list(conn: &mut Connection) -> anyhow::Result<Vec<Finding>> {
    records(conn).await?.iter().map(|r| Ok(serde_json::from_slice(&r.json)?)).collect()
}

/// Every finding with its tickets and escalation (the same records, read twice).
pub(crate) async fn list_with_notes(conn: &mut Connection) -> anyhow::Result<Vec<(Finding, crate::notify::Notes)>> {
    records(conn)
        .await?
        .iter()
        .map(|r| Ok((serde_json::from_slice(&r.json)?, serde_json::from_slice(&r.json)?)))
        .collect()
}

async fn records(conn: &mut Connection) -> anyhow::Result<Vec<v1::FindingRecord>> {
    let mut stream = conn.control.list_findings(v1::ListFindingsRequest {}).await.map_err(status_error)?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await.map_err(status_error)? {
        out.push(r);
    }
    Ok(out)
}

pub async fn findings(global: &GlobalArgs, args: FindingsArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let result = findings_on(&mut conn, args).await;
    conn.close().await;
    result
}

async fn findings_on(conn: &mut Connection, args: FindingsArgs) -> anyhow::Result<()> {
    let by = |by: Option<String>| by.or_else(|| std::env::var("USER").ok()).unwrap_or_default();
    let now = SystemTime::now();
    let update = match args.action {
        None => {
            let l = &args.list;
            let status = l.status.as_deref();
            let shown: Vec<Finding> = list(conn)
                .await?
                .into_iter()
                .filter(|f| l.all || status.is_some() || f.status.is_active(now))
                .filter(|f| status.is_none_or(|s| f.status.name() == s))
                .filter(|f| l.severity.is_none_or(|s| f.severity >= s))
                .filter(|f| !l.overdue || f.overdue(now))
                .filter(|f| l.owner.as_deref().is_none_or(|o| f.owner.as_deref() == Some(o)))
                .collect();
            return print_list(&shown, l.format, now);
        }
        Some(FindingsAction::Show { id, format }) => {
            let r = records(conn)
                .await?
                .into_iter()
                .find(|r| r.id.eq_ignore_ascii_case(&id))
                .ok_or_else(|| UsageError(format!("no finding {id} (vantage findings --all lists them)")))?;
            if format == Format::Json {
                let v: serde_json::Value = serde_json::from_slice(&r.json)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let f: Finding = serde_json::from_slice(&r.json)?;
            print_one(&f, now);
            return print_notes(&serde_json::from_slice(&r.json)?);
        }
        Some(FindingsAction::Export { format: ExportFormat::Defectdojo, output }) => {
            let doc = crate::review::export::defectdojo(&list(conn).await?, now);
            let json = serde_json::to_vec_pretty(&doc)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &json).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
                    eprintln!("{} findings written to {}", doc.findings.len(), path.display());
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&json)?;
                    writeln!(out)?;
                }
            }
            return Ok(());
        }
        Some(FindingsAction::Ack { id, by: who }) => v1::UpdateFindingRequest {
            id,
            by: by(who),
            action: Some(v1::update_finding_request::Action::Acknowledge(v1::Acknowledge {})),
        },
        Some(FindingsAction::Accept { id, reason, until, by: who }) => v1::UpdateFindingRequest {
            id,
            by: by(who),
            action: Some(v1::update_finding_request::Action::AcceptRisk(v1::AcceptRisk {
                reason,
                until: Some(time_to_wire(parse_until(&until, now)?)),
            })),
        },
    };
    let r = conn.control.update_finding(update).await.map_err(status_error)?.into_inner();
    let f: Finding = serde_json::from_slice(&r.json)?;
    println!("{}: {} ({})", f.id, f.status.name(), f.history.last().map(|e| e.what.as_str()).unwrap_or(""));
    Ok(())
}

/// `2027-03-31` (through that day, UTC) or a duration from now (`90days`).
fn parse_until(s: &str, now: SystemTime) -> Result<SystemTime, UsageError> {
    if let Some(end) = vantage_shared::period::day_end(s) {
        return Ok(end);
    }
    humantime::parse_duration(s)
        .map(|d| now + d)
        .map_err(|_| UsageError(format!("--until `{s}`: write a day (2027-03-31) or a duration (90days)")))
}

fn due(f: &Finding, now: SystemTime) -> String {
    if !f.status.is_active(now) {
        return "-".into();
    }
    match f.deadline.duration_since(now) {
        Ok(left) => format!("in {}", hours_text(left)),
        Err(e) => format!("OVERDUE {}", hours_text(e.duration())),
    }
}

fn print_list(findings: &[Finding], format: Format, now: SystemTime) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, findings)?;
            println!();
        }
        Format::Table if findings.is_empty() => println!("no findings"),
        Format::Table => {
            let mut sorted: Vec<&Finding> = findings.iter().collect();
            sorted.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.deadline, f.key));
            let rows: Vec<Vec<String>> = sorted
                .iter()
                .map(|f| {
                    vec![
                        f.id.clone(),
                        f.severity.to_string(),
                        f.status.name().to_string(),
                        f.key.to_string(),
                        f.owner.clone().unwrap_or_else(|| "-".into()),
                        due(f, now),
                        if f.repeats > 0 { format!("repeat x{}", f.repeats) } else { String::new() },
                    ]
                })
                .collect();
            table(&mut std::io::stdout().lock(), &["ID", "SEVERITY", "STATUS", "FINDING", "OWNER", "DUE", ""], &rows)?;
        }
    }
    Ok(())
}

fn print_one(f: &Finding, now: SystemTime) {
    println!("{} {} ({}, {})", f.id, f.key, f.severity, f.status.name());
    println!("{}", f.sentence);
    println!(
        "owner: {}   due: {}   first seen: {}",
        f.owner.as_deref().unwrap_or("-"),
        due(f, now),
        rfc3339(f.first_seen)
    );
    let d = &f.detail;
    let facts = [d.service.as_deref(), d.product.as_deref(), d.version.as_deref()];
    println!("service: {}", facts.into_iter().flatten().collect::<Vec<_>>().join(" "));
    for (label, list) in [("cpe", &d.cpe), ("cves", &d.cves), ("why", &d.reasons), ("open from", &d.regions)] {
        if !list.is_empty() {
            println!("{label}: {}", list.join(", "));
        }
    }
    println!("history:");
    for e in &f.history {
        let period = e.period.map(|p| format!(" [{p}]")).unwrap_or_default();
        println!("  {}{period} {}", rfc3339(e.at), e.what);
    }
}

/// Tickets and escalation, after a finding's history.
fn print_notes(n: &crate::notify::Notes) -> anyhow::Result<()> {
    for t in &n.tickets {
        let key = t.key.as_deref().unwrap_or("(create sent, no answer yet)");
        let url = t.url.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
        println!("ticket: {} {key}{url} ({}, updated {})", t.integration, t.state.as_str(), rfc3339(t.updated_at));
    }
    if let Some(e) = &n.escalation {
        let channels: Vec<&str> = e.channels.keys().map(String::as_str).collect();
        println!("escalated: {} to {}", rfc3339(e.at), channels.join(", "));
    }
    Ok(())
}
