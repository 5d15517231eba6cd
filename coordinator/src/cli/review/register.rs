//! `vantage register check|show|add|remove|renew FILE`: the justification
//! register, a TOML file the operator keeps in git, checked and edited on
//! the file alone.
//!
//! Five small verbs around [`crate::review::register`] in two files rather
//! than five: `check` and `show` read (here), `add`, `remove` and `renew`
//! write (`register/edit.rs`), and the verbs of each group share most of their code.
//! None of them reaches a coordinator: the register is reviewed in pull
//! requests, not kept in the store. They take no
//! [`GlobalArgs`](crate::cli::GlobalArgs), so they cannot open a
//! [`Connection`](crate::cli::connect::Connection) or create the data
//! directory.
//!
//! Exit codes: 1 when the file is not a valid register (the message names
//! `FILE:LINE: service N: field`) or a selector matches no entry; 2
//! ([`UsageError`]) for a flag that is wrong on its own or a file that cannot
//! be read.

mod edit;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde::Serialize;
use vantage_shared::Proto;
use vantage_shared::period::day_start;

use crate::cli::UsageError;
use crate::cli::output::{Format, table};
use crate::review::register::{Entry, Register, RegisterError};

const DAY: Duration = Duration::from_secs(24 * 3600);

const CHECK_EXAMPLE: &str = "\
Examples:
  vantage register check register.toml
  vantage register check register.toml --as-of 2026-12-01 --within 60days";
const SHOW_EXAMPLE: &str = "\
Examples:
  vantage register show register.toml
  vantage register show register.toml --format json";
const ADD_EXAMPLE: &str = "\
Example:
  vantage register add register.toml --host 198.18.2.5 --port 443 --service http --tls \\
      --product nginx --versions '>=1.22, <1.27' --justification 'API gateway' \\
      --owner api-team --contact api@example.invalid --review-by 2027-06-30";
const REMOVE_EXAMPLE: &str = "\
Examples:
  vantage register remove register.toml --host 198.18.0.1 --port 22
  vantage register remove register.toml --host 198.18.2.20-198.18.2.29   # every port";
const RENEW_EXAMPLE: &str = "\
Examples:
  vantage register renew register.toml --host 198.18.0.1 --port 22 --review-by 2027-06-30
  vantage register renew register.toml --host 198.18.1.0/24 --review-by 2027-09-30   # every port";

#[derive(Debug, Subcommand)]
pub enum RegisterCommand {
    /// Check a register before committing it: every entry must be valid
    /// (errors name FILE:LINE, the entry and the field), and entries whose
    /// review-by day has passed or is near are listed.
    #[command(after_help = CHECK_EXAMPLE)]
    Check(CheckArgs),
    /// Print the entries: host, ports, what is expected to answer, owner,
    /// review-by day and justification.
    #[command(after_help = SHOW_EXAMPLE)]
    Show(ShowArgs),
    /// Document an exposure: append an entry, checked as strictly as the
    /// file; the file's comments and layout stay as they are.
    #[command(after_help = ADD_EXAMPLE)]
    Add(AddArgs),
    /// Remove the entries for an address (and port), with the comment
    /// directly above each.
    #[command(after_help = REMOVE_EXAMPLE)]
    Remove(RemoveArgs),
    /// Renew entries: set a new review-by day once someone has looked at
    /// the exposure again.
    #[command(after_help = RENEW_EXAMPLE)]
    Renew(RenewArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The register (TOML, `[[service]]` entries).
    pub file: PathBuf,
    /// Judge review-by days as of this day (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<String>,
    /// List entries whose review-by day comes within this long (e.g. 30days, 8weeks).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30days")]
    pub within: Duration,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The register.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The register to append to (an empty file is a valid register).
    pub file: PathBuf,
    /// Address, CIDR or range (198.18.1.0/24, 198.18.2.20-198.18.2.29).
    #[arg(long)]
    pub host: String,
    /// A port, or a port list such as 80,443 or 8000-8010.
    #[arg(long)]
    pub port: String,
    /// The protocol.
    #[arg(long, value_enum, default_value_t = ProtoArg::Tcp)]
    pub proto: ProtoArg,
    /// The expected service in nmap's words (http, ssh), without `ssl/`: see --tls.
    #[arg(long)]
    pub service: Option<String>,
    /// A case-insensitive part of the expected product name (nginx, OpenSSH).
    #[arg(long)]
    pub product: Option<String>,
    /// The allowed versions of the product ('>=9.0, <10.0', '=1.22.1', '*').
    #[arg(long)]
    pub versions: Option<String>,
    /// TLS is expected.
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// TLS must be absent.
    #[arg(long)]
    pub no_tls: bool,
    /// Why the port is open.
    #[arg(long)]
    pub justification: String,
    /// Who answers for it (a team).
    #[arg(long)]
    pub owner: String,
    /// How to reach the owner.
    #[arg(long)]
    pub contact: Option<String>,
    /// When someone looks at it again (YYYY-MM-DD; overdue from the next day, UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub review_by: String,
}

/// Which entries an edit applies to. Entries are selected by the addresses
/// and ports they document, however written: `--host 198.18.1.0/24` selects
/// an entry written `198.18.1.0-198.18.1.255`, but not one for 198.18.1.10.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// The entries' host: the same addresses as the entry names.
    #[arg(long)]
    pub host: String,
    /// The entries' ports: the same ports as the entry names [default: any].
    #[arg(long)]
    pub port: Option<String>,
    /// The entries' protocol [default: any].
    #[arg(long, value_enum)]
    pub proto: Option<ProtoArg>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The register.
    pub file: PathBuf,
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The register.
    pub file: PathBuf,
    #[command(flatten)]
    pub select: SelectArgs,
    /// The new review-by day (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub review_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtoArg {
    Tcp,
    Udp,
}

impl From<ProtoArg> for Proto {
    fn from(p: ProtoArg) -> Proto {
        match p {
            ProtoArg::Tcp => Proto::Tcp,
            ProtoArg::Udp => Proto::Udp,
        }
    }
}

pub fn run(cmd: RegisterCommand) -> anyhow::Result<()> {
    match cmd {
        RegisterCommand::Check(args) => check(args),
        RegisterCommand::Show(args) => show(args),
        RegisterCommand::Add(args) => edit::add(args),
        RegisterCommand::Remove(args) => edit::remove(args),
        RegisterCommand::Renew(args) => edit::renew(args),
    }
}

/// The register file's text; a file that cannot be read is a usage error.
fn read(path: &Path) -> Result<String, UsageError> {
    fs::read_to_string(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))
}

/// The register in `text`; its errors name the file.
fn parse(path: &Path, text: &str) -> Result<Register, RegisterError> {
    Register::parse(text).map_err(|e| e.in_file(path.display().to_string()))
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let today = match &args.as_of {
        Some(day) => {
            day_start(day).ok_or_else(|| UsageError(format!("--as-of: `{day}` is not a date (YYYY-MM-DD)")))?
        }
        None => day_floor(SystemTime::now()),
    };
    let register = parse(&args.file, &read(&args.file)?)?;
    println!("{}", summary(&args.file, &register));
    // Whole days: the register has no finer grain.
    let within = (args.within.as_secs() / DAY.as_secs()) as i64;
    let mut due: Vec<(i64, &Entry)> =
        register.entries().iter().map(|e| (days_left(e, today), e)).filter(|(left, _)| *left <= within).collect();
    // The longest overdue first.
    due.sort_by_key(|(left, e)| (*left, e.number));
    if due.is_empty() {
        println!("no entry is overdue or due for review within {}", days(within));
        return Ok(());
    }
    println!("{} {} overdue or due for review within {}:", due.len(), plural(due.len()), days(within));
    let rows: Vec<Vec<String>> = due
        .iter()
        .map(|(left, e)| {
            let status = match left {
                ..0 => format!("overdue by {}", days(-left)),
                0 => "due today".to_string(),
                n => format!("due in {}", days(*n)),
            };
            let place = format!("{}:{}", args.file.display(), e.line);
            vec![status, e.review_by.clone(), e.host_text.clone(), port(e), e.owner.clone(), place]
        })
        .collect();
    table(&mut std::io::stdout().lock(), &["STATUS", "REVIEW-BY", "HOST", "PORT", "OWNER", "WHERE"], &rows)?;
    Ok(())
}

/// `register.toml: 5 entries (4 tcp, 1 udp), 3 owners: ops 2, web-team 2, net-team 1`.
fn summary(path: &Path, register: &Register) -> String {
    let entries = register.entries();
    let udp = entries.iter().filter(|e| e.proto == Proto::Udp).count();
    let mut owners: BTreeMap<&str, usize> = BTreeMap::new();
    for e in entries {
        *owners.entry(e.owner.as_str()).or_default() += 1;
    }
    let mut owners: Vec<(&str, usize)> = owners.into_iter().collect();
    owners.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let owners: Vec<String> = owners.iter().map(|(o, n)| format!("{o} {n}")).collect();
    format!(
        "{}: {} entries ({} tcp, {udp} udp), {} owners{}{}",
        path.display(),
        entries.len(),
        entries.len() - udp,
        owners.len(),
        if owners.is_empty() { "" } else { ": " },
        owners.join(", ")
    )
}

/// Whole days from `today` to the entry's review-by day: 0 on the day
/// itself, negative once it has passed.
fn days_left(entry: &Entry, today: SystemTime) -> i64 {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    (secs(entry.review_ends) - secs(today)).div_euclid(DAY.as_secs() as i64) - 1
}

/// The start (UTC) of the day `t` falls in.
fn day_floor(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs - secs % DAY.as_secs())
}

fn days(n: i64) -> String {
    if n == 1 { "1 day".to_string() } else { format!("{n} days") }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "entry" } else { "entries" }
}

/// `80,443/tcp`.
fn port(e: &Entry) -> String {
    format!("{}/{}", e.ports, e.proto)
}

/// An entry as `show --format json` prints it.
#[derive(Debug, Serialize)]
struct EntryJson<'e> {
    number: usize,
    line: usize,
    host: &'e str,
    port: String,
    proto: Proto,
    service: Option<&'e str>,
    product: Option<&'e str>,
    versions: Option<&'e str>,
    tls: Option<bool>,
    justification: &'e str,
    owner: &'e str,
    contact: Option<&'e str>,
    review_by: &'e str,
    /// Whether the review-by day has passed (today, UTC).
    overdue: bool,
}

fn show(args: ShowArgs) -> anyhow::Result<()> {
    let register = parse(&args.file, &read(&args.file)?)?;
    let entries = register.entries();
    match args.format {
        Format::Json => {
            let now = SystemTime::now();
            let json: Vec<EntryJson<'_>> = entries
                .iter()
                .map(|e| EntryJson {
                    number: e.number,
                    line: e.line,
                    host: &e.host_text,
                    port: e.ports.to_string(),
                    proto: e.proto,
                    service: e.service.as_deref(),
                    product: e.product.as_deref(),
                    versions: e.versions.as_ref().map(|v| v.as_str()),
                    tls: e.tls,
                    justification: &e.justification,
                    owner: &e.owner,
                    contact: e.contact.as_deref(),
                    review_by: &e.review_by,
                    overdue: e.expired(now),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Table if entries.is_empty() => println!("no entries in {}", args.file.display()),
        Format::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.host_text.clone(),
                        port(e),
                        service(e),
                        e.product.clone().unwrap_or_default(),
                        e.versions.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                        e.owner.clone(),
                        e.review_by.clone(),
                        e.justification.clone(),
                    ]
                })
                .collect();
            let header = ["HOST", "PORT", "SERVICE", "PRODUCT", "VERSIONS", "OWNER", "REVIEW-BY", "JUSTIFICATION"];
            table(&mut std::io::stdout().lock(), &header, &rows)?;
        }
    }
    Ok(())
}

/// The expected service with what the entry says about TLS: `http+tls`, `ssh (no tls)`.
fn service(e: &Entry) -> String {
    let name = e.service.as_deref().unwrap_or("");
    match (e.tls, name) {
        (None, _) => name.to_string(),
        (Some(true), "") => "tls".to_string(),
        (Some(true), _) => format!("{name}+tls"),
        (Some(false), "") => "no tls".to_string(),
        (Some(false), _) => format!("{name} (no tls)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_start_reads_only_whole_days() {
        assert_eq!(day_start("2026-11-01"), humantime::parse_rfc3339("2026-11-01T00:00:00Z").ok());
        assert_eq!(day_start("2026-11-1"), None);
        assert_eq!(day_start("2026-13-01"), None);
        assert_eq!(day_start("soon"), None);
    }

    #[test]
    fn days_left_counts_whole_days_to_the_review_by_day() {
        let r = Register::parse(
            "[[service]]\nhost = \"198.18.0.1\"\nport = 22\njustification = \"j\"\nowner = \"o\"\nreview_by = \"2026-11-10\"\n",
        )
        .unwrap();
        let e = &r.entries()[0];
        let on = |d: &str| days_left(e, day_start(d).unwrap());
        assert_eq!((on("2026-11-01"), on("2026-11-09"), on("2026-11-10")), (9, 1, 0));
        assert_eq!((on("2026-11-11"), on("2026-12-10")), (-1, -30));
        // Later in a day is still that day.
        assert_eq!(days_left(e, day_floor(day_start("2026-11-09").unwrap() + Duration::from_secs(80_000))), 1);
    }

    #[test]
    fn the_service_column_says_what_tls_is_expected() {
        let r = Register::parse(
            "[[service]]\nhost = \"198.18.0.1\"\nport = 443\nservice = \"http\"\ntls = true\njustification = \"j\"\n\
             owner = \"o\"\nreview_by = \"2026-11-10\"\n",
        )
        .unwrap();
        let mut e = r.entries()[0].clone();
        assert_eq!(service(&e), "http+tls");
        e.tls = Some(false);
        assert_eq!(service(&e), "http (no tls)");
        e.service = None;
        assert_eq!(service(&e), "no tls");
        e.tls = None;
        assert_eq!(service(&e), "");
    }
}
