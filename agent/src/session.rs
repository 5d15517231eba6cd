//! The agent's life: dial out, say hello, run what is assigned, repeat.
//!
//! An agent holds one bidirectional stream to its coordinator. On any error
//! it logs, backs off with jitter, and dials again; shards that were running
//! when the stream broke are abandoned (the coordinator gives them to another
//! agent under a new epoch, so nothing is lost and nothing is counted twice).

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
use crate::policy::LocalPolicy;
use crate::work::{ShardEnd, ShardRun};

/// Outbound messages queued per agent stream.
pub const OUTBOUND_QUEUE: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured agent, ready to run.
pub struct Agent {
    cfg: AgentConfig,
    policy: Arc<LocalPolicy>,
    max_in_flight: usize,
    /// Whether raw sockets (SYN mode) are available to this process.
    raw_sockets: bool,
    /// What each new connection uses; certificate renewal swaps it.
    security: SharedSecurity,
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
        Agent { cfg, policy, max_in_flight, raw_sockets, security }
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
            match self.session(&shutdown, &mut welcomed).await {
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
                tracing::info!(agent.id = %w.agent_id, "connected to coordinator");
            }
            Some(_) => return Err(SessionError::Protocol("first message was not a welcome".into())),
            None => return Err(SessionError::Closed),
        }

        let session_cancel = shutdown.child_token();
        let mut shards =
            Shards { runs: JoinSet::new(), acks: HashMap::new(), cancels: HashMap::new(), limits: HashMap::new() };
        let result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                msg = inbound.message() => match msg {
                    Ok(Some(m)) => self.handle(m, &mut shards, &out, &session_cancel),
                    Ok(None) => break Err(SessionError::Closed),
                    Err(status) => break Err(status.into()),
                },
                Some(joined) = shards.runs.join_next() => shards.finished(joined),
            }
        };
        session_cancel.cancel();
        shards.runs.shutdown().await;
        result
    }

    fn handle(
        &self,
        msg: v1::CoordinatorMessage,
        shards: &mut Shards,
        out: &mpsc::Sender<v1::AgentMessage>,
        session_cancel: &CancellationToken,
    ) {
        match msg.body {
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
            limits,
            out,
            acks,
            cancel,
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
            ShardEnd::Cancelled | ShardEnd::Disconnected => tracing::debug!(%key, ?end, "shard stopped"),
        }
    }
}
