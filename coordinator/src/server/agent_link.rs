//! The agents' side of the coordinator: one bidirectional stream per agent.
//!
//! Ingest is here: a batch is checked against its lease and its shard,
//! stored, flushed, and only then acknowledged (DESIGN invariant 1); the
//! batches of all agents share flushes ([`Store::commit_observations`]).
//! Each agent's messages are handled one at a time, so a batch waiting for
//! its flush holds back that agent's stream (HTTP/2 flow control), and a
//! slow store slows the agents instead of queueing without bound. An
//! observation outside its shard, or a batch of a lease that is no longer
//! current, is refused and logged; the agent stops that shard.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use vantage_proto::v1;
use vantage_proto::v1::agent_link_server::AgentLink;
use vantage_proto::v1::agent_message::Body;
use vantage_proto::v1::coordinator_message::Body as Out;
use vantage_shared::convert::duration_from_wire;
use vantage_shared::{LeaseKey, Observation, PortState};

use super::scheduler::{BatchContext, Departure, Refusal, Scheduler};
use super::trust::Trust;
use crate::store::{ShardStats, Store};

/// Messages queued towards one agent.
const AGENT_QUEUE: usize = 64;
/// An agent must say hello this soon after opening its stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct AgentLinkService {
    pub scheduler: Arc<Scheduler>,
    pub trust: Trust,
    pub store: Store,
    pub shutdown: CancellationToken,
}

type OutStream = Pin<Box<dyn Stream<Item = Result<v1::CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentLink for AgentLinkService {
    type SessionStream = OutStream;

    async fn session(&self, req: Request<Streaming<v1::AgentMessage>>) -> Result<Response<OutStream>, Status> {
        // Checked on every stream, not only at the handshake: a connection
        // opened before a revocation gets no new stream.
        let identity = self.trust.agent(&req, "the agent link")?;
        let mut inbound = req.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(v1::AgentMessage { body: Some(Body::Hello(h)) }))) => h,
            Ok(Err(status)) => return Err(status),
            Err(_) => return Err(Status::deadline_exceeded("no hello within 10s")),
            Ok(_) => return Err(Status::invalid_argument("the first message must be a hello")),
        };
        if hello.region.trim().is_empty() || hello.name.trim().is_empty() {
            return Err(Status::invalid_argument("hello needs a name and a region"));
        }
        let (tx, rx) = mpsc::channel(AGENT_QUEUE);
        if let Some(who) = &identity
            && who.region != hello.region
        {
            tracing::info!(agent.id = %who.id, hello = %hello.region, enrolled = %who.region, "agent says another region; its enrollment's counts");
        }
        let connected = self.scheduler.register_agent(&hello, identity.as_ref(), tx.clone());
        let agent_id = connected.agent_id.clone();
        // The queue is new and empty: the welcome goes first, work after it.
        let _ = tx.try_send(Ok(message(Out::Welcome(v1::Welcome { agent_id: agent_id.clone() }))));
        self.scheduler.dispatch();
        let ingest = Ingest { agent_id, scheduler: self.scheduler.clone(), store: self.store.clone(), tx };
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let how = loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => {
                        // Before this agent's leases go back: nothing is leased any more.
                        ingest.scheduler.stop();
                        break Departure::Lost;
                    }
                    _ = connected.cancel.cancelled() => {
                        let cut = Status::permission_denied("the coordinator cut this connection off (revoked, or replaced by a newer one)");
                        let _ = ingest.tx.try_send(Err(cut));
                        break Departure::Lost;
                    }
                    msg = inbound.message() => msg,
                };
                match msg {
                    Ok(Some(m)) => {
                        ingest.scheduler.seen(&connected.agent_id, connected.conn);
                        ingest.handle(m).await
                    }
                    // The agent ended its half: it is stopping, and said what it had to.
                    Ok(None) => break Departure::Left,
                    Err(status) => {
                        tracing::debug!(agent.id = %ingest.agent_id, error = %status, "agent stream error");
                        break Departure::Lost;
                    }
                }
            };
            ingest.scheduler.agent_gone(&ingest.agent_id, connected.conn, how);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn message(body: Out) -> v1::CoordinatorMessage {
    v1::CoordinatorMessage { body: Some(body) }
}

/// One agent's inbound half.
struct Ingest {
    agent_id: String,
    scheduler: Arc<Scheduler>,
    store: Store,
    tx: mpsc::Sender<Result<v1::CoordinatorMessage, Status>>,
}

impl Ingest {
    async fn handle(&self, msg: v1::AgentMessage) {
        match msg.body {
            Some(Body::Batch(b)) => self.batch(b).await,
            Some(Body::Progress(p)) => {
                let key = LeaseKey { scan_id: p.scan_id, shard_id: p.shard_id, epoch: p.epoch };
                self.scheduler.progress(&self.agent_id, key, p.probes_done);
            }
            Some(Body::Done(d)) => self.done(d).await,
            Some(Body::Failed(f)) => {
                let key = LeaseKey { scan_id: f.scan_id, shard_id: f.shard_id, epoch: f.epoch };
                self.scheduler.release(&self.agent_id, key, &f.reason);
            }
            Some(Body::Hello(_)) | None => {
                tracing::warn!(agent.id = %self.agent_id, "unexpected message ignored");
            }
        }
    }

    async fn batch(&self, b: v1::ObservationBatch) {
        let key = LeaseKey { scan_id: b.scan_id, shard_id: b.shard_id, epoch: b.epoch };
        let result = match self.scheduler.check_batch(&self.agent_id, key, b.seq) {
            Ok(ctx) if ctx.duplicate => Ok(()),
            Ok(ctx) => self.store_batch(key, b.seq, &ctx, &b.observations).await,
            Err(refusal) => Err(refusal.to_string()),
        };
        let ack = match result {
            Ok(()) => {
                self.scheduler.batch_stored(&self.agent_id, key, b.seq);
                v1::BatchAck {
                    scan_id: key.scan_id,
                    shard_id: key.shard_id,
                    epoch: key.epoch,
                    seq: b.seq,
                    accepted: true,
                    reason: String::new(),
                }
            }
            Err(reason) => {
                tracing::warn!(agent.id = %self.agent_id, %key, %reason, "batch refused");
                self.scheduler.release(&self.agent_id, key, &reason);
                v1::BatchAck {
                    scan_id: key.scan_id,
                    shard_id: key.shard_id,
                    epoch: key.epoch,
                    seq: b.seq,
                    accepted: false,
                    reason,
                }
            }
        };
        let _ = self.tx.send(Ok(message(Out::Ack(ack)))).await;
    }

    async fn store_batch(
        &self,
        key: LeaseKey,
        seq: u64,
        ctx: &BatchContext,
        wire: &[v1::Observation],
    ) -> Result<(), String> {
        let mut observations = Vec::with_capacity(wire.len());
        for w in wire {
            let mut o = Observation::try_from(w).map_err(|e| format!("malformed observation: {e}"))?;
            // Port 0 is the whole host, which only answers-all observations speak of.
            let port_inside = o.state == PortState::AnswersAll || ctx.shard.ports.contains(o.port);
            let inside = port_inside && ctx.shard.targets.contains(o.addr) && ctx.shard.scope.permits(o.addr);
            if !inside {
                return Err(Refusal::OutsideShard { key, what: format!("{}:{}", o.addr, o.port) }.to_string());
            }
            o.region.clone_from(&ctx.region);
            o.agent.clone_from(&self.agent_id);
            observations.push(o);
        }
        // Encoded here, on this agent's task; written and flushed with the
        // other agents' batches waiting (group commit), then acknowledged.
        let writes = Store::encode_observations(key, seq, &observations);
        self.store.commit_observations(writes).await.map_err(|e| e.to_string())?;
        self.scheduler.metrics().observations_ingested.inc_by(observations.len() as u64);
        Ok(())
    }

    async fn done(&self, d: v1::ShardDone) {
        let key = LeaseKey { scan_id: d.scan_id, shard_id: d.shard_id, epoch: d.epoch };
        let s = d.stats.unwrap_or_default();
        let stats = ShardStats {
            probes: s.probes,
            open: s.open,
            closed: s.closed,
            filtered: s.filtered,
            refused: s.refused,
            answers_all: s.answers_all_hosts,
            packets: s.packets,
            unreachable: s.unreachable,
            elapsed_ms: duration_from_wire(s.elapsed.as_ref()).unwrap_or_default().as_millis() as u64,
        };
        match self.scheduler.complete(&self.agent_id, key, d.last_seq, stats) {
            Ok(()) => {
                if let Err(e) = self.store.flush().await {
                    tracing::error!(%key, error = %e, "cannot flush a finished shard");
                }
            }
            Err(refusal) => {
                tracing::warn!(agent.id = %self.agent_id, %key, reason = %refusal, "completion refused");
                self.scheduler.release(&self.agent_id, key, &refusal.to_string());
            }
        }
    }
}
