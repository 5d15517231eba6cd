//! Running one assignment: scope check, engine, batches, acknowledgements.
//!
//! Open ports are sent up in numbered batches as they are found (no
//! whole-shard buffering). At most [`MAX_UNACKED`] batches are unacknowledged
//! at once; when the window is full the engine waits, so a slow coordinator
//! slows the scan instead of growing memory. The shard is reported done only
//! after every batch was acknowledged, i.e. is on the coordinator's disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vantage_proto::v1;
use vantage_proto::v1::agent_message::Body;
use vantage_shared::convert::{addr_to_bytes, duration_to_wire, time_to_wire};
use vantage_shared::{Assignment, PortState};

use crate::engine::connect::{self, ConnectConfig};
use crate::engine::order::ProbeSpace;
use crate::engine::{EngineStats, ProbeResult};
use crate::policy::LocalPolicy;

/// Batches in flight without an acknowledgement.
pub const MAX_UNACKED: u64 = 8;
/// Observations per batch at most.
const BATCH_SIZE: usize = 256;
/// A partial batch waits at most this long.
const BATCH_DELAY: Duration = Duration::from_millis(200);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How a shard run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    Done(EngineStats),
    /// The coordinator refused a batch (stale lease, out of scope, ...).
    Refused(String),
    Cancelled,
    /// The stream to the coordinator is gone.
    Disconnected,
}

/// Everything one shard run needs.
pub struct ShardRun {
    pub assignment: Assignment,
    pub policy: Arc<LocalPolicy>,
    /// The agent's own cap on probes in flight.
    pub max_in_flight: usize,
    pub out: mpsc::Sender<v1::AgentMessage>,
    pub acks: mpsc::Receiver<v1::BatchAck>,
    pub cancel: CancellationToken,
}

impl ShardRun {
    #[tracing::instrument(skip_all, fields(scan.id = self.assignment.key.scan_id, shard.id = self.assignment.key.shard_id, lease.epoch = self.assignment.key.epoch))]
    pub async fn run(mut self) -> ShardEnd {
        let a = &self.assignment;
        let admitted = self.policy.admit(&a.targets, &a.scope);
        if admitted.refused > 0 {
            tracing::warn!(refused = %admitted.refused, "assignment names addresses outside scope or local policy; they are skipped");
        }
        let started = Instant::now();
        let cfg = ConnectConfig {
            timeout: a.options.connect_timeout,
            max_in_flight: (a.options.max_in_flight as usize).min(self.max_in_flight),
            retries: a.options.retries,
            banner_timeout: a.options.banner_timeout,
            banner_max_bytes: a.options.banner_max_bytes as usize,
        };
        let (tx, rx) = mpsc::channel(1024);
        let progress = Arc::new(AtomicU64::new(0));
        let engine_cancel = self.cancel.child_token();
        let engine = {
            let policy = self.policy.clone();
            let scope = a.scope.clone();
            let space = ProbeSpace::new(admitted.targets, a.ports.clone());
            let (progress, cancel) = (progress.clone(), engine_cancel.clone());
            tokio::spawn(async move {
                let permits = |addr| scope.permits(addr) && policy.permits(addr);
                connect::scan(&cfg, space.iter(), permits, tx, progress, cancel).await
            })
        };
        let end = self.pump(rx, &progress).await;
        engine_cancel.cancel();
        let stats = engine.await.unwrap_or_default();
        match end {
            Ok(last_seq) => {
                let done = self.done_message(last_seq, stats, admitted.refused, started.elapsed());
                if self.out.send(done).await.is_err() {
                    return ShardEnd::Disconnected;
                }
                ShardEnd::Done(stats)
            }
            Err(end) => end,
        }
    }

    /// Moves results into batches until the engine is done and every batch is
    /// acknowledged; returns the last sequence number.
    async fn pump(&mut self, mut rx: mpsc::Receiver<ProbeResult>, progress: &AtomicU64) -> Result<u64, ShardEnd> {
        let mut pending: Vec<v1::Observation> = Vec::new();
        let (mut seq, mut acked) = (0u64, 0u64);
        let mut engine_done = false;
        let mut flush_at = tokio::time::Instant::now() + BATCH_DELAY;
        let mut progress_tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            let full = pending.len() >= BATCH_SIZE;
            let due = !pending.is_empty() && (full || engine_done || tokio::time::Instant::now() >= flush_at);
            if due && seq - acked < MAX_UNACKED {
                seq += 1;
                self.send_batch(seq, std::mem::take(&mut pending)).await?;
                continue;
            }
            if engine_done && pending.is_empty() && acked == seq {
                return Ok(seq);
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(ShardEnd::Cancelled),
                r = rx.recv(), if !engine_done && !full => match r {
                    Some(r) if r.state == PortState::Open => {
                        if pending.is_empty() {
                            flush_at = tokio::time::Instant::now() + BATCH_DELAY;
                        }
                        pending.push(observation(&r));
                    }
                    Some(_) => {}
                    None => engine_done = true,
                },
                ack = self.acks.recv() => match ack {
                    Some(ack) if !ack.accepted => return Err(ShardEnd::Refused(ack.reason)),
                    Some(ack) => acked = acked.max(ack.seq),
                    None => return Err(ShardEnd::Disconnected),
                },
                _ = tokio::time::sleep_until(flush_at), if !pending.is_empty() && !due => {}
                _ = progress_tick.tick() => self.send_progress(progress.load(Ordering::Relaxed)).await?,
            }
        }
    }

    async fn send_batch(&self, seq: u64, observations: Vec<v1::Observation>) -> Result<(), ShardEnd> {
        let k = self.assignment.key;
        let batch =
            v1::ObservationBatch { scan_id: k.scan_id, shard_id: k.shard_id, epoch: k.epoch, seq, observations };
        self.send(Body::Batch(batch)).await
    }

    async fn send_progress(&self, probes_done: u64) -> Result<(), ShardEnd> {
        let k = self.assignment.key;
        self.send(Body::Progress(v1::ShardProgress {
            scan_id: k.scan_id,
            shard_id: k.shard_id,
            epoch: k.epoch,
            probes_done,
        }))
        .await
    }

    async fn send(&self, body: Body) -> Result<(), ShardEnd> {
        self.out.send(v1::AgentMessage { body: Some(body) }).await.map_err(|_| ShardEnd::Disconnected)
    }

    fn done_message(&self, last_seq: u64, s: EngineStats, refused: u128, elapsed: Duration) -> v1::AgentMessage {
        let k = self.assignment.key;
        let stats = v1::ShardStats {
            probes: s.probes,
            open: s.open,
            closed: s.closed,
            filtered: s.filtered,
            refused: refused.min(u64::MAX as u128) as u64,
            elapsed: Some(duration_to_wire(elapsed)),
        };
        let done =
            v1::ShardDone { scan_id: k.scan_id, shard_id: k.shard_id, epoch: k.epoch, last_seq, stats: Some(stats) };
        v1::AgentMessage { body: Some(Body::Done(done)) }
    }
}

fn observation(r: &ProbeResult) -> v1::Observation {
    v1::Observation {
        addr: addr_to_bytes(r.addr),
        proto: v1::Proto::Tcp as i32,
        port: u32::from(r.port),
        state: v1::PortState::from(r.state) as i32,
        rtt: Some(duration_to_wire(r.rtt)),
        seen_at: Some(time_to_wire(SystemTime::now())),
        banner: r.banner.clone(),
        region: String::new(),
        agent: String::new(),
    }
}
