//! `vantage serve`: run the coordinator until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vantage_agent::process::cancel_on_signals;

use super::{GlobalArgs, UsageError};
use crate::server::{Coordinator, CoordinatorConfig, Security};

pub const ENV_LISTEN: &str = "VANTAGE_LISTEN";
pub const ENV_SHARD_PROBES: &str = "VANTAGE_SHARD_PROBES";
pub const ENV_LEASE: &str = "VANTAGE_LEASE";
pub const ENV_AGENT_CERT_TTL: &str = "VANTAGE_AGENT_CERT_TTL";
pub const ENV_CONFIG: &str = "VANTAGE_CONFIG";
pub const ENV_INTEGRATIONS: &str = "VANTAGE_INTEGRATIONS";

/// Agents renew at two thirds of their certificate's life: shorter than
/// this, they would do little else.
const MIN_AGENT_CERT_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to accept agents and operators on.
    #[arg(long, env = ENV_LISTEN, value_name = "ADDR:PORT", value_parser = parse_listen, default_value = "127.0.0.1:7420")]
    pub listen: String,

    /// Probes per shard, fixed. By default each scan's shards are sized to take about 30 s at
    /// the pace its region's agents showed on their last shards (or at the scan's --rate when
    /// lower; 32,768 probes before anything was measured): smaller shards spread better over
    /// agents and lose less with a dead one, larger ones cost less bookkeeping.
    #[arg(long, env = ENV_SHARD_PROBES, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_probes: Option<u64>,

    /// A lease without progress for this long is taken back and given to another agent.
    #[arg(long, env = ENV_LEASE, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "60s")]
    pub lease: Duration,

    /// How long an agent's certificate lasts; agents renew at two thirds of it.
    #[arg(long, env = ENV_AGENT_CERT_TTL, value_name = "DURATION", value_parser = parse_cert_ttl, default_value = "24h")]
    pub agent_cert_ttl: Duration,

    /// A configuration file (TOML) with defaults for these options and the
    /// global ones that serving uses; see `vantage config sample`.
    #[arg(long, env = ENV_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Ticket trackers and notification channels (integrations.toml), stored
    /// with the coordinator: reviews file their findings there and escalate
    /// new critical ones at once. Secrets come from this process's
    /// environment (`token_env = "JIRA_TOKEN"`).
    #[arg(long, env = ENV_INTEGRATIONS, value_name = "FILE")]
    pub integrations: Option<PathBuf>,

    /// Serve Prometheus metrics (`/metrics`), `/healthz` and `/readyz` (ready while the
    /// store is open and agents and operators are accepted) over plain HTTP on this
    /// address. Off by default; keep it on a private or loopback address.
    #[arg(long, env = vantage_agent::endpoint::ENV_METRICS_LISTEN, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub schedule: super::schedule::ScheduleArgs,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = global.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
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
    let scope = global.scope()?;
    let cfg = CoordinatorConfig {
        shard_probes: args.shard_probes,
        lease: args.lease,
        schedule: args.schedule.config(&scope, global.scope.is_some())?,
        ..CoordinatorConfig::new(data_dir, scope, security)
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
    if let Some(addr) = args.metrics_listen {
        coordinator.serve_metrics(addr, &shutdown).await.with_context(|| format!("--metrics-listen {addr}"))?;
    }
    coordinator.serve(listener, shutdown).await?;
    tracing::info!("coordinator stopped");
    Ok(())
}

/// `ADDR:PORT` or `HOST:PORT`, as the listener binds it.
fn parse_listen(text: &str) -> Result<String, String> {
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(text.to_string());
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() => {
            Ok(text.to_string())
        }
        _ => Err("no port number after the address".into()),
    }
}

fn parse_cert_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl < MIN_AGENT_CERT_TTL {
        return Err(format!("at least {}", humantime::format_duration(MIN_AGENT_CERT_TTL)));
    }
    Ok(ttl)
}
