//! `vantage serve`: run the coordinator until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vantage_agent::process::cancel_on_signals;
use vantage_shared::shard::DEFAULT_SHARD_PROBES;

use super::{GlobalArgs, UsageError};
use crate::server::{Coordinator, CoordinatorConfig};

pub const ENV_LISTEN: &str = "VANTAGE_LISTEN";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to accept agents and operators on.
    #[arg(long, env = ENV_LISTEN, default_value = "127.0.0.1:7420")]
    pub listen: String,

    /// Probes per shard: smaller shards spread better over agents, larger ones cost less bookkeeping.
    #[arg(long, default_value_t = DEFAULT_SHARD_PROBES)]
    pub shard_probes: u64,

    /// A lease without progress for this long is taken back and given to another agent.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub lease: Duration,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    if args.shard_probes == 0 {
        return Err(UsageError("--shard-probes must be at least 1".into()).into());
    }
    let data_dir = global.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let cfg = CoordinatorConfig {
        shard_probes: args.shard_probes,
        lease: args.lease,
        ..CoordinatorConfig::new(data_dir, global.scope()?)
    };
    let coordinator = Coordinator::open(cfg).await?;
    let listener =
        TcpListener::bind(&args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signals(shutdown.clone()));
    coordinator.serve(listener, shutdown).await?;
    tracing::info!("coordinator stopped");
    Ok(())
}
