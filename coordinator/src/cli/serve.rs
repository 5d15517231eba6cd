//! `vantage serve`: run the coordinator until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vantage_agent::process::cancel_on_signals;
use vantage_shared::shard::DEFAULT_SHARD_PROBES;

use super::{GlobalArgs, UsageError};
use crate::server::{Coordinator, CoordinatorConfig, Security};

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

    /// How long an agent's certificate lasts; agents renew at two thirds of it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    pub agent_cert_ttl: Duration,

    /// Ticket trackers and notification channels (integrations.toml), stored
    /// with the coordinator: reviews file their findings there and escalate
    /// new critical ones at once. Secrets come from this process's
    /// environment (`token_env = "JIRA_TOKEN"`).
    #[arg(long, value_name = "FILE")]
    pub integrations: Option<std::path::PathBuf>,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    if args.shard_probes == 0 {
        return Err(UsageError("--shard-probes must be at least 1".into()).into());
    }
    let data_dir = global.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    if args.agent_cert_ttl < Duration::from_secs(10) {
        return Err(UsageError("--agent-cert-ttl must be at least 10s".into()).into());
    }
    let security = if global.insecure {
        if args.listen.parse::<std::net::SocketAddr>().is_ok_and(|a| !a.ip().is_loopback()) {
            return Err(UsageError(format!(
                "--insecure serves plaintext, on loopback addresses only (not {}); run `vantage pki init` for TLS",
                args.listen
            ))
            .into());
        }
        Security::Insecure
    } else {
        let (ca, identity) = super::pki::load_server(&global.pki_dir())?;
        Security::Tls {
            ca: Arc::new(ca),
            identity,
            agent_cert_ttl: args.agent_cert_ttl,
            resident_agents: HashMap::new(),
        }
    };
    let cfg = CoordinatorConfig {
        shard_probes: args.shard_probes,
        lease: args.lease,
        ..CoordinatorConfig::new(data_dir, global.scope()?, security)
    };
    // Checked before anything starts, so that a bad file costs nothing.
    let integrations = match &args.integrations {
        Some(path) => Some(super::review::findings::document(vantage_proto::v1::DocumentKind::Integrations, path)?),
        None => None,
    };
    let coordinator = Coordinator::open(cfg).await?;
    if let Some(doc) = integrations {
        crate::server::review::put_document(coordinator.store(), doc)
            .map_err(|s| anyhow::anyhow!("storing the integrations: {}", s.message()))?;
    }
    let listener =
        TcpListener::bind(&args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signals(shutdown.clone()));
    coordinator.serve(listener, shutdown).await?;
    tracing::info!("coordinator stopped");
    Ok(())
}
