//! `vantage fleet`: the agents of a coordinator.

pub mod list;
pub mod revoke;
pub mod token;

use clap::Subcommand;

use super::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Agents, connected or not: region, version, last heartbeat, load, certificate.
    List(list::ListArgs),
    /// A one-time join token for an agent of a region (`vantage-agent enroll --token`).
    Token(token::TokenArgs),
    /// Cut an agent off at once (its open stream too) and for good.
    Revoke(revoke::RevokeArgs),
}

pub async fn run(global: &GlobalArgs, cmd: FleetCommand) -> anyhow::Result<()> {
    match cmd {
        FleetCommand::List(args) => list::run(global, args).await,
        FleetCommand::Token(args) => token::run(global, args).await,
        FleetCommand::Revoke(args) => revoke::run(global, args).await,
    }
}
