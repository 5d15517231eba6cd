//! `vantage config check|sample`: the configuration files of `vantage serve
//! --config` and `vantage-agent --config`, on the file alone.
//!
//! A file's keys are the long options of the command it configures; the
//! machinery is [`vantage_agent::config_file`], shared with the agent. This
//! module says which options `vantage serve` takes from a file, and parses
//! the process's command line with the file applied ([`parse`]).

pub mod check;
pub mod sample;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Subcommand, ValueEnum};
use vantage_agent::config_file::{Example, FileError, Schema, get_matches};

use super::Cli;

const CHECK_EXAMPLE: &str = "\
Examples:
  vantage config check /etc/vantage/coordinator.toml
  vantage config check agent.toml --kind agent";
const SAMPLE_EXAMPLE: &str = "\
Examples:
  vantage config sample > /etc/vantage/coordinator.toml
  vantage config sample --kind agent > /etc/vantage/agent.toml";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file offline: unknown keys, wrong types, bad
    /// durations and addresses, missing files. Errors name FILE:LINE:COL and
    /// the key; exit status 2 when there is any.
    #[command(after_help = CHECK_EXAMPLE)]
    Check(check::CheckArgs),
    /// Print a commented configuration file with every option, its
    /// environment variable and its default.
    #[command(after_help = SAMPLE_EXAMPLE)]
    Sample(sample::SampleArgs),
}

/// Which binary a file configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `vantage serve --config FILE`.
    Coordinator,
    /// `vantage-agent --config FILE`.
    Agent,
}

impl Kind {
    pub fn schema(self) -> Schema {
        match self {
            Kind::Coordinator => schema(),
            Kind::Agent => vantage_agent::cli::schema(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Coordinator => "coordinator",
            Kind::Agent => "agent",
        }
    }
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check(args) => check::run(args),
        ConfigCommand::Sample(args) => sample::run(args),
    }
}

const SAMPLE_HEADER: &str = "\
# Vantage coordinator configuration: `vantage serve --config /etc/vantage/coordinator.toml`.
#
# Each key is the `vantage serve` option of the same name. Precedence: command line >
# environment variable > this file > built-in default. A commented-out key shows its default
# (or an example). Relative paths are relative to this file's directory.
# Check a file with `vantage config check FILE`; this sample is `vantage config sample`.";

const EXAMPLES: &[Example] = &[
    Example { key: "listen", value: "\"198.18.0.10:7420\"", set: true },
    Example { key: "data-dir", value: "\"/var/lib/vantage\"", set: true },
    Example { key: "pki", value: "\"/var/lib/vantage/pki\"", set: false },
    // Next to this file: /etc/vantage/scope.txt once installed, deploy/scope.txt here.
    Example { key: "scope", value: "\"scope.txt\"", set: true },
    // Unset: shards sized from the agents' pace.
    Example { key: "shard-probes", value: "32768", set: false },
    // Next to this file: deploy/integrations.sample.toml shows what goes in it.
    Example { key: "integrations", value: "\"integrations.toml\"", set: false },
    Example { key: "metrics-listen", value: "\"127.0.0.1:9420\"", set: false },
    // Unset: the scope's ranges.
    Example { key: "review-targets", value: "\"198.18.0.0/24\"", set: false },
    // Unset: every region with an agent connected when the review starts.
    Example { key: "review-regions", value: "\"eu-west,us-east\"", set: false },
];

/// What `vantage serve --config` files may hold: the options of `serve` and
/// the global ones it uses (not --coordinator, which it is, nor the embedded
/// agent's --contact and --service-probes, which it does not run).
pub fn schema() -> Schema {
    Schema::new("coordinator", Cli::command(), Some("serve"), &["config", "coordinator", "contact", "service_probes"])
        .check("scope", |path| super::read_scope(path.as_ref()).map(drop).map_err(|e| e.0))
}

/// The commented sample configuration (deploy/coordinator.toml).
pub fn sample() -> String {
    schema().sample(SAMPLE_HEADER, EXAMPLES).expect("every serve option has a default or an example")
}

/// Parses the process's command line, with the file of `serve --config`
/// applied; prints what is wrong with the file and exits with status 2.
pub fn parse() -> Cli {
    let schema = schema();
    let found = |m: &clap::ArgMatches| m.subcommand_matches("serve")?.get_one::<PathBuf>("config").cloned();
    let matches = get_matches(&schema, found).unwrap_or_else(|e: FileError| {
        eprintln!("{}", e.report("vantage", schema.kind));
        std::process::exit(2)
    });
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit())
}
