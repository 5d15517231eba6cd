//! `vantage vulns check --nvd FILE... --kev FILE... [--cpe CPE]...`: NVD
//! feeds and KEV catalogs read into memory as a review would read them, and
//! what they say about a CPE. It answers two questions without a
//! coordinator: are these downloads usable (what the import kept and could
//! not read), and is this version of this product affected.
//!
//! `check` is offline like `vantage register`: it never opens a coordinator
//! and stores nothing. Exit code 1 for a file that is not the feed it was
//! given as, 2 for a file that cannot be read or a CPE that does not parse.
//!
//! `vantage vulns import` reads the same files the same way and hands the
//! compacted result to the coordinator, whose reviews then judge detected
//! versions against it (it replaces what an earlier import stored).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use vantage_proto::v1;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, table};
use crate::cli::{GlobalArgs, UsageError, status_error};
use crate::review::vulns::{Evidence, FeedFormat, ImportReport, VulnDb, VulnHit, VulnImportError};

const CHECK_EXAMPLE: &str = "\
Examples:
  vantage vulns check --nvd nvdcve-2.0-2026.json nvdcve-2.0-2025.json --kev known_exploited_vulnerabilities.json
  vantage vulns check --nvd nvdcve-2.0-*.json --kev kev.json \\
      --cpe 'cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*'

Only hits with evidence `shown` place the version in a vulnerable range; the
others name what is missing to tell (the version, the update, readable bounds).";

#[derive(Debug, Subcommand)]
pub enum VulnsCommand {
    /// Import NVD CVE 2.0 feeds and CISA KEV catalogs into memory and report
    /// what they hold; with --cpe, list the CVEs a product version falls under.
    #[command(after_help = CHECK_EXAMPLE)]
    Check(CheckArgs),
    /// Import NVD CVE 2.0 feeds and CISA KEV catalogs into the coordinator,
    /// for reviews (replacing an earlier import). Download them first:
    /// Vantage makes no request to NVD or CISA itself.
    #[command(after_help = IMPORT_EXAMPLE)]
    Import(ImportArgs),
}

const IMPORT_EXAMPLE: &str = "\
Example:
  vantage vulns import --nvd nvdcve-2.0-*.json --kev known_exploited_vulnerabilities.json
  vantage review 2026-11       # judges detected versions against the imported data";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("files").required(true).multiple(true).args(["nvd", "kev"]))]
pub struct ImportArgs {
    /// NVD CVE JSON 2.0 feeds (nvdcve-2.0-*.json, decompressed).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub nvd: Vec<PathBuf>,
    /// CISA Known Exploited Vulnerabilities catalogs.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub kev: Vec<PathBuf>,
}

/// Bytes per message of the import stream.
const CHUNK: usize = 1 << 20;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("files").required(true).multiple(true).args(["nvd", "kev"]))]
pub struct CheckArgs {
    /// NVD CVE JSON 2.0 feeds (nvdcve-2.0-*.json, decompressed); later
    /// files replace earlier records of the same CVE.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub nvd: Vec<PathBuf>,
    /// CISA Known Exploited Vulnerabilities catalogs (known_exploited_vulnerabilities.json).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub kev: Vec<PathBuf>,
    /// A CPE 2.3 name to look up, as the detector writes it
    /// (cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*); repeatable.
    #[arg(long, value_name = "CPE")]
    pub cpe: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// One `--cpe` and its hits, as JSON shows them.
#[derive(Debug, Serialize)]
struct Lookup {
    cpe: String,
    hits: Vec<VulnHit>,
}

pub async fn run(global: &GlobalArgs, cmd: VulnsCommand) -> anyhow::Result<()> {
    match cmd {
        VulnsCommand::Check(args) => check(args),
        VulnsCommand::Import(args) => import(global, args).await,
    }
}

fn read(nvd: &[PathBuf], kev: &[PathBuf]) -> anyhow::Result<(VulnDb, ImportReport)> {
    VulnDb::import(nvd, kev).map_err(|e| match e {
        VulnImportError::Read { path, source } => UsageError(format!("{}: {source}", path.display())).into(),
        e => anyhow::Error::from(e),
    })
}

async fn import(global: &GlobalArgs, args: ImportArgs) -> anyhow::Result<()> {
    let (db, report) = read(&args.nvd, &args.kev)?;
    print_report(&report);
    let json = serde_json::to_vec(&db.into_data())?;
    let chunks: Vec<v1::VulnChunk> = json.chunks(CHUNK).map(|c| v1::VulnChunk { data: c.to_vec() }).collect();
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let result = conn.control.import_vulns(futures::stream::iter(chunks)).await.map_err(status_error);
    conn.close().await;
    let info = result?.into_inner();
    println!(
        "imported: {} CVEs, {} KEV entries from {}; the next review judges against them",
        info.cves,
        info.kev_entries,
        info.sources.join(", ")
    );
    Ok(())
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let (db, report) = read(&args.nvd, &args.kev)?;
    let lookups = args
        .cpe
        .iter()
        .map(|cpe| {
            let hits = db.matches(cpe).map_err(|e| UsageError(format!("--cpe: {e}")))?;
            Ok(Lookup { cpe: cpe.clone(), hits })
        })
        .collect::<Result<Vec<_>, UsageError>>()?;
    match args.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                report: &'a ImportReport,
                lookups: &'a [Lookup],
            }
            println!("{}", serde_json::to_string_pretty(&Doc { report: &report, lookups: &lookups })?);
        }
        Format::Table => {
            print_report(&report);
            for lookup in &lookups {
                println!();
                print_hits(lookup)?;
            }
        }
    }
    Ok(())
}

fn print_report(r: &ImportReport) {
    for f in &r.files {
        let (kind, what, date) = match f.format {
            FeedFormat::Nvd => ("NVD feed", "CVEs", "published"),
            FeedFormat::Kev => ("KEV catalog", "entries", "released"),
        };
        let published = f.published.as_ref().map(|p| format!(", {date} {p}")).unwrap_or_default();
        println!("{}: {kind}, {} {what}{published}", f.name, f.entries);
    }
    println!(
        "{} CVEs kept with {} match criteria; not kept: {} without criteria (not analysed yet), {} rejected",
        r.cves, r.criteria, r.cves_without_criteria, r.rejected
    );
    if r.replaced > 0 {
        println!("{} CVEs read from more than one feed: the later file's record is kept", r.replaced);
    }
    let missing = match r.kev_not_in_nvd.len() {
        0 => String::new(),
        n => format!("; {n} not in the NVD feeds: {}", r.kev_not_in_nvd.join(", ")),
    };
    println!("{} KEV entries{missing}", r.kev_entries);
    match r.unreadable_criteria {
        0 => println!("every match criterion is readable"),
        n => println!("{n} match criteria unreadable (not matched), e.g. {}", r.unreadable_examples.join(", ")),
    }
}

fn print_hits(lookup: &Lookup) -> anyhow::Result<()> {
    let shown = lookup.hits.iter().filter(|h| h.evidence.is_shown()).count();
    println!(
        "{}: {} {}, {shown} shown{}",
        lookup.cpe,
        lookup.hits.len(),
        if lookup.hits.len() == 1 { "CVE" } else { "CVEs" },
        if lookup.hits.iter().any(VulnHit::known_exploited) { ", some known exploited" } else { "" }
    );
    if lookup.hits.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = lookup
        .hits
        .iter()
        .map(|h| {
            let (score, severity) = match h.cvss {
                Some(c) => (format!("{:.1}", c.score), format!("{:?}", c.severity).to_lowercase()),
                None => (String::new(), String::new()),
            };
            let kev = match &h.kev {
                Some(k) if k.ransomware => format!("yes (since {}, ransomware)", k.date_added),
                Some(k) => format!("yes (since {})", k.date_added),
                None => "no".to_string(),
            };
            let mut matched = h.matched.clone();
            if !h.platforms.is_empty() {
                matched.push_str(&format!(" only on {}", h.platforms.join(" or ")));
            }
            vec![h.cve.clone(), score, severity, kev, evidence(h.evidence).to_string(), matched]
        })
        .collect();
    table(&mut std::io::stdout().lock(), &["CVE", "SCORE", "SEVERITY", "KEV", "EVIDENCE", "MATCHED"], &rows)?;
    Ok(())
}

/// The evidence as JSON names it (`update_unknown`), for people (`update-unknown`).
fn evidence(e: Evidence) -> &'static str {
    match e {
        Evidence::Shown => "shown",
        Evidence::UpdateUnknown => "update-unknown",
        Evidence::BoundsUnreadable => "bounds-unreadable",
        Evidence::VersionUnknown => "version-unknown",
    }
}
