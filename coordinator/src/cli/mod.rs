//! The operator CLI: `vantage <noun> [<verb>]`.
//!
//! One folder per noun, one file per verb. Data goes to stdout (a table, or
//! JSON with `--format json`); progress, messages and logs go to stderr.
//! Without `--coordinator`, commands run against an embedded coordinator
//! (and, for scans, a local agent) in this process: see [`connect`]. The
//! commands on the review's local files (`register`, `inventory`, `vulns`)
//! need neither: they are dispatched without [`GlobalArgs`], so they cannot
//! open a coordinator or create its data directory; nor is `config`.

pub mod admin;
pub mod config;
pub mod connect;
pub mod files;
pub mod fleet;
pub mod output;
pub mod pki;
pub mod reachability;
pub mod report;
pub mod review;
pub mod scan;
pub mod schedule;
pub mod serve;

use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};
use vantage_agent::process::LogFormat;
use vantage_shared::Scope;

pub const ENV_COORDINATOR: &str = "VANTAGE_COORDINATOR";
pub const ENV_DATA_DIR: &str = "VANTAGE_DATA_DIR";
pub const ENV_SCOPE: &str = "VANTAGE_SCOPE";
pub const ENV_PKI: &str = "VANTAGE_PKI";
pub const ENV_INSECURE: &str = "VANTAGE_INSECURE";
pub const ENV_LOG_FORMAT: &str = "VANTAGE_LOG_FORMAT";

const ABOUT: &str = "Vantage: watch your internet-facing ports from the outside, month after month.";
const LONG_ABOUT: &str = "\
Vantage: watch your internet-facing ports from the outside, month after month.

Agents in cloud regions scan your public addresses; a coordinator shards the work,
keeps every observation in its store, and answers the operator's questions.

Without --coordinator, every command that needs a coordinator runs an embedded
one (and a local agent) in this process, with its store in --data-dir. Scans are
limited to the scope file given with --scope; without one, only loopback is in
scope. The register, inventory and vulns commands work on local files alone.

Examples:
  vantage scan --targets 127.0.0.1 --ports 1-10000
  vantage scan --targets 198.18.0.0/24 --ports top-100 --scope scope.txt --format json
  vantage results                       # the newest scan's open ports again
  vantage pki init --san coordinator.example  # once: CA, coordinator and operator certificates
  vantage serve --listen 0.0.0.0:7420 --scope scope.txt
  vantage serve --config /etc/vantage/coordinator.toml   # options from a file (vantage config sample)
  vantage serve --scope scope.txt --schedule \"0 6 * * MON#1\" --review-ports top-1000   # monthly, on its own
  vantage verify F-12                   # re-scan one finding from every region now
  vantage config check /etc/vantage/coordinator.toml    # offline, errors by FILE:LINE:COL
  vantage fleet token --region eu-west --coordinator https://coordinator.example:7420
  vantage-agent enroll --token vjt1.... --coordinator https://coordinator.example:7420
  vantage scan --coordinator https://coordinator.example:7420 --targets 198.18.0.0/24 --ports 1-1024
  vantage scan --coordinator https://coordinator.example:7420 --targets 198.18.0.0/24 --regions eu-west,us-east
  vantage reachability --coordinator https://coordinator.example:7420 --inconsistent
  vantage register check register.toml   # the justification register, offline";

#[derive(Debug, Parser)]
#[command(name = "vantage", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Coordinator to talk to (https://HOST:PORT). Without it, an embedded
    /// coordinator runs in this process. The commands on local files
    /// (register, inventory, vulns) use neither.
    #[arg(long, global = true, env = ENV_COORDINATOR)]
    pub coordinator: Option<String>,

    /// The PKI directory: ca.pem and operator.pem for talking to a
    /// coordinator; for `vantage serve`, also ca.key and coordinator.pem
    /// (see `vantage pki init`) [default: <data-dir>/pki].
    #[arg(long, global = true, env = ENV_PKI, value_name = "DIR")]
    pub pki: Option<PathBuf>,

    /// Plaintext instead of TLS, without certificates: for a coordinator on a
    /// loopback address only (`vantage serve --insecure`, tests).
    #[arg(long, global = true, env = ENV_INSECURE, action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// Where the embedded coordinator and `vantage serve` keep their store
    /// [default: the user's data directory, e.g. ~/.local/share/vantage].
    #[arg(long, global = true, env = ENV_DATA_DIR, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Scope file: the addresses Vantage may ever scan, one entry per line
    /// (198.18.0.0/24, 198.18.1.1-20, `!addr` to exclude, `#` comments).
    /// Without one, only loopback (127.0.0.0/8, ::1) is in scope.
    #[arg(long, global = true, env = ENV_SCOPE, value_name = "FILE")]
    pub scope: Option<PathBuf>,

    /// Whom to contact about the embedded agent's scans (an address or URL),
    /// in its HTTP probes' User-Agent. Remote agents take `vantage-agent --contact`.
    #[arg(long, global = true, env = vantage_agent::config::ENV_CONTACT, value_name = "CONTACT")]
    pub contact: Option<String>,

    /// Log format on stderr (`VANTAGE_LOG=debug` for more detail).
    #[arg(long, global = true, value_enum, env = ENV_LOG_FORMAT, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// An nmap-service-probes file for the embedded agent's service
    /// detection (e.g. /usr/share/nmap/nmap-service-probes from Debian's
    /// nmap). Remote agents take their own `vantage-agent --service-probes`.
    #[arg(long, global = true, env = vantage_agent::config::ENV_SERVICE_PROBES, value_name = "PATH")]
    pub service_probes: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the coordinator: accept agents, plan and lease scans, store results.
    Serve(serve::ServeArgs),
    /// Scan targets (start, wait, print open ports), or list and watch scans.
    Scan(scan::ScanCommand),
    /// Print a scan's results (the newest scan by default).
    Results(scan::results::ResultsArgs),
    /// The agents of a coordinator: list them, make join tokens, revoke.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// The installation's CA and the certificates of the coordinator and
    /// its operators (agents get theirs by enrolling).
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// A scan's open ports from every region it ran in (the newest scan by
    /// default), flagging ports open from one region and not from another.
    Reachability(reachability::show::ShowArgs),
    /// What changed between two review periods: new and closed ports,
    /// changed services, versions, certificates and reachability.
    Diff(review::diff::DiffArgs),
    /// Review periods' baselines (their newest TCP and UDP scans, merged across regions).
    #[command(subcommand)]
    Baseline(review::baseline::BaselineCommand),
    /// History from elsewhere: an nmap XML report as a period's baseline.
    #[command(subcommand)]
    Import(review::import::ImportCommand),
    /// Judge a period's baseline against the register, inventory, vulnerability
    /// data and policy: findings with severity, owner and deadline.
    Review(review::findings::ReviewArgs),
    /// A period's report: executive summary, changes, findings by priority,
    /// remediation tracking, 12-month metrics (HTML, Markdown, JSON, CSV).
    Report(report::ReportArgs),
    /// The findings: list and filter (default: those still to act on), show one,
    /// acknowledge, accept a risk until a date.
    Findings(review::findings::FindingsArgs),
    /// Re-scan one finding's exposure from every region now: each region's
    /// view, the conclusion, and the finding updated (remediated when gone
    /// from every region; a history entry either way).
    Verify(review::verify::VerifyArgs),
    /// The justification register (TOML, kept in git): check it, show it,
    /// add, remove and renew entries. Works on the file alone.
    #[command(subcommand)]
    Register(review::register::RegisterCommand),
    /// The asset inventory (CSV): check an export before a review reads it.
    /// Works on the file alone.
    #[command(subcommand)]
    Inventory(review::inventory::InventoryCommand),
    /// Offline NVD and KEV files: check what they hold and which CVEs a
    /// product version (a CPE) falls under (on the files alone), or import
    /// them into the coordinator for reviews.
    #[command(subcommand)]
    Vulns(review::vulns::VulnsCommand),
    /// Configuration files of `vantage serve --config` and `vantage-agent
    /// --config`: check one, or print a commented sample. Works on the file alone.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Ticket trackers and notification channels (integrations.toml): check
    /// a file offline. `vantage serve --integrations` and `vantage review
    /// --integrations` put it to work.
    #[command(subcommand)]
    Integrations(review::integrations::IntegrationsCommand),
    /// Store care: back up the store while the coordinator serves, verify a
    /// backup, restore one into an empty data directory.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

/// An error in what the operator asked for (as opposed to a failure while
/// doing it); exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Scan(cmd) => scan::run(&cli.global, cmd).await,
        Command::Results(args) => scan::results::run(&cli.global, args).await,
        Command::Fleet(cmd) => fleet::run(&cli.global, cmd).await,
        Command::Pki(cmd) => pki::run(&cli.global, cmd),
        Command::Reachability(args) => reachability::show::run(&cli.global, args).await,
        Command::Diff(args) => review::diff::run(&cli.global, args).await,
        Command::Baseline(cmd) => review::baseline::run(&cli.global, cmd).await,
        Command::Import(cmd) => review::import::run(&cli.global, cmd).await,
        Command::Review(args) => review::findings::review(&cli.global, args).await,
        Command::Findings(args) => review::findings::findings(&cli.global, args).await,
        Command::Report(args) => report::run(&cli.global, args).await,
        Command::Verify(args) => review::verify::run(&cli.global, args).await,
        Command::Vulns(cmd) => review::vulns::run(&cli.global, cmd).await,
        Command::Admin(cmd) => admin::run(&cli.global, cmd).await,
        // Local files only: no GlobalArgs, so no coordinator and no data directory.
        Command::Register(cmd) => review::register::run(cmd),
        Command::Inventory(cmd) => review::inventory::run(cmd),
        Command::Config(cmd) => config::run(cmd),
        Command::Integrations(cmd) => review::integrations::run(cmd),
    }
}

impl GlobalArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| dirs::data_dir().map(|d| d.join("vantage")).unwrap_or_else(|| PathBuf::from(".vantage")))
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.pki.clone().unwrap_or_else(|| self.data_dir().join("pki"))
    }

    /// How this CLI reaches a coordinator given with --coordinator.
    pub fn client_security(&self) -> anyhow::Result<vantage_proto::transport::ClientSecurity> {
        if self.insecure {
            return Ok(vantage_proto::transport::ClientSecurity::Insecure);
        }
        pki::load_operator(&self.pki_dir())
    }

    /// The scope file's contents, or the loopback default.
    pub fn scope(&self) -> Result<Scope, UsageError> {
        match &self.scope {
            Some(path) => read_scope(path),
            None => Ok(Scope::loopback()),
        }
    }
}

/// A scope file's contents, with at least one address left in scope.
pub fn read_scope(path: &Path) -> Result<Scope, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("scope file {}: {e}", path.display())))?;
    let scope = Scope::parse_file(&text).map_err(|e| UsageError(format!("scope file {}: {e}", path.display())))?;
    if scope.effective().is_empty() {
        return Err(UsageError(format!("scope file {}: no address is left in scope", path.display())));
    }
    Ok(scope)
}

/// The chain of errors under a status (a transport failure's reason), as
/// `: a: b`; what it says when a plaintext or refused client reaches a TLS
/// coordinator.
fn causes(status: &tonic::Status) -> String {
    let mut out = String::new();
    let mut next = std::error::Error::source(status);
    while let Some(e) = next {
        out.push_str(&format!(": {e}"));
        next = e.source();
    }
    if std::error::Error::source(status).is_some() {
        out.push_str(" (does the coordinator speak TLS and accept this certificate? its log says why it refused)");
    }
    out
}

/// A library step's failure as the CLI reports it: a coordinator's refusal
/// as [`status_error`] maps it, anything else as it is.
pub fn workflow_error(e: crate::workflow::WorkflowError) -> anyhow::Error {
    match e {
        crate::workflow::WorkflowError::Status(s) => status_error(s),
        e => e.into(),
    }
}

/// Maps a coordinator's refusal to a usage error, anything else to itself.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument | Code::PermissionDenied | Code::NotFound => {
            UsageError(status.message().to_string()).into()
        }
        Code::Unavailable => anyhow::anyhow!("coordinator unavailable: {}{}", status.message(), causes(&status)),
        _ => anyhow::anyhow!("coordinator error: {}{}", status.message(), causes(&status)),
    }
}
