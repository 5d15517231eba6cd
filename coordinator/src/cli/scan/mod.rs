//! `vantage scan`: start a scan and wait for it (the default verb), or
//! `list`, `watch` and `results`.

pub mod list;
pub mod rates;
pub mod results;
pub mod start;
pub mod watch;

use clap::{Args, Subcommand};

use super::GlobalArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScanCommand {
    #[command(subcommand)]
    pub verb: Option<ScanVerb>,

    #[command(flatten)]
    pub start: start::StartArgs,
}

#[derive(Debug, Subcommand)]
pub enum ScanVerb {
    /// List scans, newest last.
    List(list::ListArgs),
    /// Follow a running scan until it ends.
    Watch(watch::WatchArgs),
    /// Print a scan's results.
    Results(results::ResultsArgs),
}

pub async fn run(global: &GlobalArgs, cmd: ScanCommand) -> anyhow::Result<()> {
    match cmd.verb {
        None => start::run(global, cmd.start).await,
        Some(ScanVerb::List(args)) => list::run(global, args).await,
        Some(ScanVerb::Watch(args)) => watch::run(global, args).await,
        Some(ScanVerb::Results(args)) => results::run(global, args).await,
    }
}
