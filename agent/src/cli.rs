//! The `vantage-agent` command line, and its configuration file.
//!
//! In the library rather than in `main.rs` so that `vantage config check
//! --kind agent` and `vantage config sample --kind agent` (in the
//! coordinator's binary) read the very same options: the file's keys are
//! these options' long names ([`crate::config_file`]).

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, AgentArgs};
use crate::config_file::{Example, FileError, Schema};
use crate::identity::{self, ENV_AGENT_DIR};
use crate::process::LogFormat;

pub const ENV_CONFIG: &str = "VANTAGE_AGENT_CONFIG";
pub const ENV_LOG_FORMAT: &str = "VANTAGE_AGENT_LOG_FORMAT";
pub const ENV_JOIN_TOKEN: &str = "VANTAGE_JOIN_TOKEN";

/// Vantage scan agent.
///
/// Dials out to a coordinator (so it works from behind NAT), takes typed
/// work, and scans only addresses that are both in the assignment's scope
/// and in its own --allow list, never in its --deny list. Every connection
/// is TLS with the certificate it got when it enrolled.
///
/// Options come from the command line, else from their environment
/// variable, else from the --config file (TOML, keys named as the long
/// options: `vantage config sample --kind agent`), else from their default.
///
/// Examples:
///   vantage-agent enroll --token vjt1.... --coordinator https://coordinator.example:7420
///   vantage-agent --allow 198.18.0.0/15
///   vantage-agent --config /etc/vantage/agent.toml
#[derive(Debug, Parser)]
#[command(name = "vantage-agent", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub agent: AgentArgs,

    /// A configuration file (TOML) with defaults for these options; `enroll`
    /// takes its coordinator, dir and name from it too.
    #[arg(long, global = true, env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(long, value_enum, global = true, env = ENV_LOG_FORMAT, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join a coordinator with a one-time token from `vantage fleet token`:
    /// generates this agent's key, gets its certificate, and keeps both in --dir.
    Enroll(EnrollArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The join token (vjt1....), printed by `vantage fleet token --region REGION`.
    #[arg(long, env = ENV_JOIN_TOKEN)]
    pub token: String,

    /// The coordinator's address, e.g. https://coordinator.example:7420.
    #[arg(long, env = config::ENV_COORDINATOR, value_name = "URL")]
    pub coordinator: String,

    /// Where to keep the key, the certificate and the CA.
    #[arg(long, env = ENV_AGENT_DIR, value_name = "DIR", default_value_os_t = identity::default_dir())]
    pub dir: PathBuf,

    /// This agent's name in `vantage fleet list` [default: the host name].
    #[arg(long, env = config::ENV_AGENT_NAME, value_name = "NAME")]
    pub name: Option<String>,
}

const SAMPLE_HEADER: &str = "\
# vantage-agent configuration: `vantage-agent --config /etc/vantage/agent.toml`.
#
# Each key is the `vantage-agent` option of the same name. Precedence: command line >
# environment variable > this file > built-in default. A commented-out key shows its default
# (or an example). Relative paths are relative to this file's directory.
# `vantage-agent enroll --config FILE --token TOKEN` takes coordinator, dir and name from here.
# Check a file with `vantage config check FILE`; this sample is `vantage config sample --kind agent`.";

const EXAMPLES: &[Example] = &[
    Example { key: "coordinator", value: "\"https://coordinator.example.com:7420\"", set: true },
    Example { key: "dir", value: "\"/var/lib/vantage-agent\"", set: true },
    Example { key: "region", value: "\"eu-west\"", set: false },
    Example { key: "name", value: "\"agent-eu-west-1\"", set: false },
    Example { key: "allow", value: "[\"198.18.0.0/15\"]", set: true },
    Example { key: "deny", value: "[\"198.18.255.0/24\"]", set: false },
    Example { key: "contact", value: "\"security@example.com\"", set: false },
    Example { key: "service-probes", value: "\"/usr/share/nmap/nmap-service-probes\"", set: false },
    Example { key: "metrics-listen", value: "\"127.0.0.1:9421\"", set: false },
];

/// What `--config` files of `vantage-agent` may hold: its options, less
/// `--config` itself.
pub fn schema() -> Schema {
    Schema::new("agent", Cli::command(), None, &["config"])
        .check("coordinator", config::check_coordinator)
        .check("allow", config::check_allow)
        .check("deny", config::check_deny)
        .check("contact", config::check_contact)
        .check("service-probes", config::check_file)
}

/// The commented sample configuration (deploy/agent.toml).
pub fn sample() -> String {
    schema().sample(SAMPLE_HEADER, EXAMPLES).expect("every agent option has a default or an example")
}

/// Parses the command line and the configuration file it names.
pub fn parse() -> Result<Cli, FileError> {
    let schema = schema();
    let matches = crate::config_file::get_matches(&schema, |m| {
        let found = |m: &clap::ArgMatches| m.get_one::<PathBuf>("config").cloned();
        found(m).or_else(|| m.subcommand().and_then(|(_, sub)| found(sub)))
    })?;
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit()))
}
