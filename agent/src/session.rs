//! The agent's life: dial out, say hello, run what is assigned, repeat.
//!
//! An agent holds one bidirectional stream to its coordinator. On any error
//! it logs, backs off with jitter, and dials again; shards that were running
//! when the stream broke are abandoned (the coordinator gives them to another
//! agent under a new epoch, so nothing is lost and nothing is counted twice).
//!
//! Stopping (SIGTERM) drains instead: no new shard starts, running shards
//! stop probing and send up what they found until it is acknowledged (so
//! it is on the coordinator's disk), then the agent ends its half of the
//! stream. That end is its goodbye: the coordinator puts the shards it still
//! held back in the queue at once, instead of waiting for their leases to
//! run out.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use vantage_proto::v1;
use vantage_proto::v1::agent_link_client::AgentLinkClient;
use vantage_proto::v1::coordinator_message::Body;
use vantage_shared::{Assignment, LeaseKey};

use crate::config::AgentConfig;
use crate::engine::limits;
use crate::engine::rate::RateLimits;
use crate::identity::{SharedSecurity, keep_renewed};
use crate::metrics::AgentMetrics;
use crate::policy::LocalPolicy;
use crate::work::{ShardEnd, ShardRun};

/// Outbound messages queued per agent stream.
pub const OUTBOUND_QUEUE: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping agent waits for its shards' last batches to be acknowledged.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// How long it waits, after its goodbye, for the coordinator to end the stream.
const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// A configured agent, ready to run.
pub struct Agent {
    cfg: AgentConfig,
    policy: Arc<LocalPolicy>,
    max_in_flight: usize,
    /// Whether raw sockets (SYN mode) are available to this process.
    raw_sockets: bool,
    /// What each new connection uses; certificate renewal swaps it.
    security: SharedSecurity,
    metrics: AgentMetrics,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Transport(#[from] vantage_proto::transport::TransportError),
    #[error("coordinator refused the session: {}", .0.message())]
    Status(#[from] tonic::Status),
    #[error("coordinator closed the stream")]
    Closed,
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl Agent {
    pub fn new(cfg: AgentConfig) -> Self {
        let budget = limits::socket_budget(limits::raise_nofile_limit());
        let max_in_flight = (cfg.max_in_flight as usize).min(budget / cfg.capacity as usize).max(1);
        let policy = Arc::new(cfg.policy.clone());
        let raw_sockets = crate::engine::syn::raw_sockets_allowed();
        let security = Arc::new(RwLock::new(cfg.security.clone()));
        Agent { cfg, policy, max_in_flight, raw_sockets, security, metrics: AgentMetrics::new() }
    }

    pub fn metrics(&self) -> &AgentMetrics {
        &self.metrics
    }

    /// Serves metrics and health on `--metrics-listen`, if set, until
    /// `shutdown`; returns the address bound.
    pub async fn serve_metrics(&self, shutdown: &CancellationToken) -> std::io::Result<Option<std::net::SocketAddr>> {
        let Some(addr) = self.cfg.metrics_listen else { return Ok(None) };
        let status = Arc::new(self.metrics.clone());
        let bound = crate::endpoint::spawn(addr, self.metrics.registry(), status, shutdown.clone()).await?;
        let rate = self.metrics.clone().track_rate(shutdown.clone());
        tokio::spawn(tracing::Instrument::instrument(rate, tracing::info_span!("probe-rate")));
        Ok(Some(bound))
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.cfg.min_backoff;
        if let Some(dir) = &self.cfg.identity_dir {
            tokio::spawn(keep_renewed(dir.clone(), self.security.clone(), shutdown.clone()));
        }
        tracing::info!(
            coordinator = %self.cfg.coordinator,
            agent.region = %self.cfg.region,
            allow = %self.policy.allow(),
            max_in_flight = self.max_in_flight,
            syn = self.raw_sockets,
            "agent starting"
        );
        while !shutdown.is_cancelled() {
            let mut welcomed = false;
            let ended = self.session(&shutdown, &mut welcomed).await;
            self.metrics.set_connected(false);
            match ended {
                Ok(()) => break,
                Err(SessionError::Transport(e)) => tracing::warn!(error = %e, "coordinator unreachable"),
                Err(e) => tracing::warn!(error = %e, "session ended"),
            }
            if welcomed {
                // The coordinator was there; start the backoff over.
                backoff = self.cfg.min_backoff;
            }
            let jitter = rand::rng().random_range(0.5..1.5);
            let pause = backoff.mul_f64(jitter);
            tracing::info!(retry_in = %humantime::format_duration(pause), "reconnecting");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
        tracing::info!("agent stopped");
    }

    /// One connected session; `Ok` only when shut down on purpose.
    async fn session(&self, shutdown: &CancellationToken, welcomed: &mut bool) -> Result<(), SessionError> {
        let security = self.security.read().unwrap_or_else(|p| p.into_inner()).clone();
        let channel = vantage_proto::transport::connect(&self.cfg.coordinator, &security, CONNECT_TIMEOUT).await?;
        let mut client = AgentLinkClient::new(channel);
        let (out, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let hello = v1::Hello {
            name: self.cfg.name.clone(),
            region: self.cfg.region.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            capacity: self.cfg.capacity,
        };
        out.send(v1::AgentMessage { body: Some(v1::agent_message::Body::Hello(hello)) })
            .await
            .map_err(|_| SessionError::Closed)?;
        let mut inbound = client.session(ReceiverStream::new(out_rx)).await?.into_inner();
        match inbound.message().await?.and_then(|m| m.body) {
            Some(Body::Welcome(w)) => {
                *welcomed = true;
                self.metrics.set_connected(true);
                tracing::info!(agent.id = %w.agent_id, "connected to coordinator");
            }
            Some(_) => return Err(SessionError::Protocol("first message was not a welcome".into())),
            None => return Err(SessionError::Closed),
        }

        // Not a child of `shutdown`: on shutdown shards drain, they are not cut off.
        let session_cancel = CancellationToken::new();
        let mut shards = Shards {
            runs: JoinSet::new(),
            acks: HashMap::new(),
            cancels: HashMap::new(),
            limits: HashMap::new(),
            drain: shutdown.clone(),
        };
        let mut drain_by: Option<tokio::time::Instant> = None;
        let result = loop {
            let draining = drain_by.is_some();
            tokio::select! {
                _ = shutdown.cancelled(), if !draining => {
                    tracing::info!(shards = shards.runs.len(), "draining: no new shards; found results go up, shards go back");
                    if shards.runs.is_empty() {
                        break Ok(());
                    }
                    drain_by = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                _ = tokio::time::sleep_until(drain_by.unwrap_or_else(tokio::time::Instant::now)), if draining => {
                    tracing::warn!(shards = shards.runs.len(), "drain grace over; leaving without their last acknowledgements");
                    break Ok(());
                }
                msg = inbound.message() => match msg {
                    Ok(Some(m)) => self.handle(m, &mut shards, &out, &session_cancel, draining),
                    Ok(None) => break Err(SessionError::Closed),
                    Err(status) => break Err(status.into()),
                },
                Some(joined) = shards.runs.join_next() => {
                    shards.finished(joined);
                    if draining && shards.runs.is_empty() {
                        break Ok(());
                    }
                }
            }
        };
        session_cancel.cancel();
        shards.runs.shutdown().await;
        if result.is_ok() {
            goodbye(out, inbound).await;
        }
        result
    }

    fn handle(
        &self,
        msg: v1::CoordinatorMessage,
        shards: &mut Shards,
        out: &mpsc::Sender<v1::AgentMessage>,
        session_cancel: &CancellationToken,
        draining: bool,
    ) {
        match msg.body {
            // Left alone, it goes back to the queue with the others at the goodbye.
            Some(Body::Assignment(w)) if draining => {
                tracing::info!(scan.id = w.scan_id, shard.id = w.shard_id, "draining; assignment not started")
            }
            Some(Body::Assignment(w)) => match Assignment::try_from(&w) {
                Ok(assignment) => shards.start(self, assignment, out.clone(), session_cancel.child_token()),
                Err(e) => tracing::warn!(error = %e, "malformed assignment ignored"),
            },
            Some(Body::Ack(ack)) => {
                let key = LeaseKey { scan_id: ack.scan_id, shard_id: ack.shard_id, epoch: ack.epoch };
                if let Some(tx) = shards.acks.get(&key) {
                    // The shard task may have ended already; an ack for it is moot.
                    let _ = tx.try_send(ack);
                }
            }
            Some(Body::Cancel(c)) => {
                for (key, token) in &shards.cancels {
                    if key.scan_id == c.scan_id && key.shard_id == c.shard_id {
                        tracing::info!(%key, reason = %c.reason, "shard cancelled by coordinator");
                        token.cancel();
                    }
                }
            }
            Some(Body::Welcome(_)) | None => {}
        }
    }
}

/// The shards running on one session.
struct Shards {
    runs: JoinSet<(LeaseKey, ShardEnd)>,
    acks: HashMap<LeaseKey, mpsc::Sender<v1::BatchAck>>,
    cancels: HashMap<LeaseKey, CancellationToken>,
    /// Rate caps per scan, shared by the scan's shards on this agent.
    limits: HashMap<u64, Arc<RateLimits>>,
    /// The agent's shutdown: shards drain when it fires.
    drain: CancellationToken,
}

impl Shards {
    fn start(
        &mut self,
        agent: &Agent,
        assignment: Assignment,
        out: mpsc::Sender<v1::AgentMessage>,
        cancel: CancellationToken,
    ) {
        let key = assignment.key;
        tracing::debug!(%key, targets = %assignment.targets, ports = %assignment.ports, "assignment received");
        // Acks never outnumber the batches a shard may have unacknowledged.
        let (ack_tx, acks) = mpsc::channel(crate::work::MAX_UNACKED as usize + 1);
        self.acks.insert(key, ack_tx);
        self.cancels.insert(key, cancel.clone());
        let limits = self
            .limits
            .entry(key.scan_id)
            .or_insert_with(|| Arc::new(RateLimits::new(assignment.options.rate, assignment.options.host_rate)))
            .clone();
        let run = ShardRun {
            assignment,
            policy: agent.policy.clone(),
            max_in_flight: agent.max_in_flight,
            raw_sockets: agent.raw_sockets,
            service_probes: agent.cfg.service_probes.clone(),
            user_agent: agent.cfg.user_agent.clone(),
            metrics: agent.metrics.clone(),
            limits,
            out,
            acks,
            cancel,
            drain: self.drain.clone(),
        };
        self.runs.spawn(async move { (key, run.run().await) });
    }

    fn finished(&mut self, joined: Result<(LeaseKey, ShardEnd), tokio::task::JoinError>) {
        let Ok((key, end)) = joined else { return };
        self.acks.remove(&key);
        self.cancels.remove(&key);
        if !self.cancels.keys().any(|k| k.scan_id == key.scan_id) {
            self.limits.remove(&key.scan_id);
        }
        match end {
            ShardEnd::Done(stats) => tracing::info!(%key, open = stats.open, probes = stats.probes, "shard done"),
            ShardEnd::Refused(reason) => tracing::warn!(%key, %reason, "coordinator refused the shard's results"),
            ShardEnd::Returned => tracing::info!(%key, "shard handed back (its found results are stored)"),
            ShardEnd::Cancelled | ShardEnd::Disconnected => tracing::debug!(%key, ?end, "shard stopped"),
        }
    }
}

/// Ends the agent's half of the stream and waits a little for the
/// coordinator to end its own, so that it sees a goodbye (the end of the
/// stream), not a reset.
async fn goodbye(out: mpsc::Sender<v1::AgentMessage>, mut inbound: tonic::Streaming<v1::CoordinatorMessage>) {
    drop(out);
    let rest = async { while let Ok(Some(_)) = inbound.message().await {} };
    if tokio::time::timeout(GOODBYE_WAIT, rest).await.is_err() {
        tracing::debug!("the coordinator did not end the stream after the goodbye");
    }
    tracing::info!("left the coordinator");
}
