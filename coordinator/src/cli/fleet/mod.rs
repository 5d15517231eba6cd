//! `vantage fleet`: the agents of a coordinator.

pub mod list;

use clap::Subcommand;

use super::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Agents connected now, with region, version and load.
    List(list::ListArgs),
}

pub async fn run(global: &GlobalArgs, cmd: FleetCommand) -> anyhow::Result<()> {
    match cmd {
        FleetCommand::List(args) => list::run(global, args).await,
    }
}
