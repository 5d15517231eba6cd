//! Running one assignment: scope check, engine, batches, acknowledgements.
//!
//! Open ports are sent up in numbered batches as they are found (no
//! whole-shard buffering beyond the answers-all check of [`crate::tally`]).
//! At most [`MAX_UNACKED`] batches are unacknowledged at once; when the
//! window is full the engine waits, so a slow coordinator slows the scan
//! instead of growing memory. The shard is reported done only after every
//! batch was acknowledged, i.e. is on the coordinator's disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vantage_detect::nmap::ProbeDb;
use vantage_detect::{DetectConfig, Detector};
use vantage_proto::v1;
use vantage_proto::v1::agent_message::Body;
use vantage_shared::convert::{addr_to_bytes, duration_to_wire, time_to_wire};
use vantage_shared::{Assignment, PortState, ScanMode, TargetSet};

use crate::detection::DetectStage;
use crate::engine::connect::{self, ConnectConfig};
use crate::engine::order::ProbeSpace;
use crate::engine::rate::RateLimits;
use crate::engine::syn::{self, SynConfig};
use crate::engine::udp::{self, UdpConfig};
use crate::engine::{EngineStats, ProbeResult, RunHandles};
use crate::metrics::{AgentMetrics, ProbeMeter};
use crate::policy::LocalPolicy;
use crate::tally::{Tally, Verdict};

/// Batches in flight without an acknowledgement.
pub const MAX_UNACKED: u64 = 8;
/// Observations per batch at most.
pub const BATCH_SIZE: usize = 256;
/// A partial batch waits at most this long.
const BATCH_DELAY: Duration = Duration::from_millis(200);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long the first detection probe on a port waits for its answer.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// How a shard run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    Done(EngineStats),
    /// The coordinator refused a batch (stale lease, out of scope, ...).
    Refused(String),
    Cancelled,
    /// The agent is stopping: what the shard found was sent and acknowledged,
    /// the rest of it goes back to the coordinator.
    Returned,
    /// The stream to the coordinator is gone.
    Disconnected,
}

/// Everything one shard run needs.
pub struct ShardRun {
    pub assignment: Assignment,
    pub policy: Arc<LocalPolicy>,
    /// The agent's own cap on probes in flight.
    pub max_in_flight: usize,
    /// May this agent open raw sockets (for SYN mode)?
    pub raw_sockets: bool,
    /// nmap's probes, when the agent was given a file.
    pub service_probes: Option<Arc<ProbeDb>>,
    /// The User-Agent of HTTP probes (names the operator's contact).
    pub user_agent: Arc<str>,
    /// The agent's counters, which this run adds to.
    pub metrics: AgentMetrics,
    /// Rate caps of this scan on this agent, shared with its other shards.
    pub limits: Arc<RateLimits>,
    pub out: mpsc::Sender<v1::AgentMessage>,
    pub acks: mpsc::Receiver<v1::BatchAck>,
    /// Stops the shard at once (coordinator's cancel, session gone).
    pub cancel: CancellationToken,
    /// Stops probing, sends what was found, then ends with [`ShardEnd::Returned`].
    pub drain: CancellationToken,
}

/// The engine a shard runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Connect,
    Syn,
    Udp,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Connect => "connect",
            Engine::Syn => "syn",
            Engine::Udp => "udp",
        }
    }
}

/// SYN scanning needs raw sockets and speaks IPv4 only; otherwise connect.
fn choose_engine(mode: ScanMode, raw_sockets: bool, targets: &TargetSet) -> Engine {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let ipv4_only = targets.ranges().iter().all(|r| r.family() == vantage_shared::addr::Family::V4);
    match mode {
        ScanMode::Connect => Engine::Connect,
        ScanMode::Udp => Engine::Udp,
        ScanMode::Auto if raw_sockets && ipv4_only => Engine::Syn,
        ScanMode::Auto => Engine::Connect,
        ScanMode::Syn if raw_sockets && ipv4_only => Engine::Syn,
        ScanMode::Syn => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                let why = if raw_sockets { "it scans IPv4 only" } else { "it needs CAP_NET_RAW" };
                tracing::warn!("SYN mode unavailable ({why}); falling back to a connect scan");
            }
            Engine::Connect
        }
    }
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
        let engine = choose_engine(a.options.mode, self.raw_sockets, &admitted.targets);
        let space = Arc::new(ProbeSpace::new(admitted.targets, a.ports.clone()));
        let handles =
            RunHandles { limits: self.limits.clone(), cancel: self.cancel.child_token(), ..Default::default() };
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run_engine(engine, self.engine_config(), space.clone(), tx, handles.clone(), {
            let (policy, scope) = (self.policy.clone(), a.scope.clone());
            move |addr| scope.permits(addr) && policy.permits(addr)
        }));
        let mut tally = Tally::new(space.ports().len());
        let o = &a.options;
        let greeting_read = o.banner_max_bytes > 0 && !o.banner_timeout.is_zero();
        let mut stage = DetectStage::new(self.detector(engine), greeting_read);
        let mut meter = ProbeMeter::new(self.metrics.clone());
        let end = self.pump(rx, &handles, &mut tally, &mut stage, &mut meter).await;
        handles.cancel.cancel();
        let stats = task.await.unwrap_or_default();
        meter.update(stats.probes);
        match end {
            Ok((last_seq, answers_all)) => {
                let summary = Summary { last_seq, stats, refused: admitted.refused, answers_all, engine };
                let done = self.done_message(summary, started.elapsed());
                if self.out.send(done).await.is_err() {
                    return ShardEnd::Disconnected;
                }
                self.metrics.shard_done(&stats, started.elapsed());
                ShardEnd::Done(stats)
            }
            Err(end) => end,
        }
    }

    fn engine_config(&self) -> ConnectConfig {
        let o = &self.assignment.options;
        ConnectConfig {
            timeout: o.connect_timeout,
            max_in_flight: (o.max_in_flight as usize).min(self.max_in_flight),
            retries: o.retries,
            banner_timeout: o.banner_timeout,
            banner_max_bytes: o.banner_max_bytes as usize,
            listen_by_port: o.detect,
        }
    }

    /// The detector for this shard's open TCP ports, if the scan asks for detection.
    fn detector(&self, engine: Engine) -> Option<Arc<Detector>> {
        let o = &self.assignment.options;
        if !o.detect || engine == Engine::Udp {
            return None;
        }
        let cfg = DetectConfig {
            total: o.detect_timeout,
            listen: o.banner_timeout,
            probe_wait: PROBE_WAIT.min(o.detect_timeout),
            keep_bytes: o.banner_max_bytes as usize,
            max_bytes: o.detect_max_bytes as usize,
            user_agent: self.user_agent.to_string(),
        };
        let detector = Detector::new(cfg);
        Some(Arc::new(match &self.service_probes {
            Some(db) => detector.with_nmap(db.clone(), o.version_intensity.min(9) as u8),
            None => detector,
        }))
    }

    /// Moves results into batches until the engine is done and every batch is
    /// acknowledged; returns the last sequence number and the number of
    /// answers-all hosts.
    async fn pump(
        &mut self,
        mut rx: mpsc::Receiver<ProbeResult>,
        handles: &RunHandles,
        tally: &mut Tally,
        stage: &mut DetectStage,
        meter: &mut ProbeMeter,
    ) -> Result<(u64, u64), ShardEnd> {
        let mut pending: Vec<v1::Observation> = Vec::new();
        let (mut seq, mut acked, mut answers_all) = (0u64, 0u64, 0u64);
        let (mut engine_done, mut draining) = (false, false);
        let mut flush_at = tokio::time::Instant::now() + BATCH_DELAY;
        let mut progress_tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            let full = pending.len() >= BATCH_SIZE;
            let finished = engine_done && stage.is_idle();
            let due = !pending.is_empty() && (full || finished || draining || tokio::time::Instant::now() >= flush_at);
            if due && seq - acked < MAX_UNACKED {
                seq += 1;
                let batch: Vec<_> = pending.drain(..pending.len().min(BATCH_SIZE)).collect();
                self.send_batch(seq, batch).await?;
                continue;
            }
            if finished && pending.is_empty() && acked == seq {
                return Ok((seq, answers_all));
            }
            if draining && pending.is_empty() && acked == seq {
                return Err(ShardEnd::Returned);
            }
            let was_empty = pending.is_empty();
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(ShardEnd::Cancelled),
                _ = self.drain.cancelled(), if !draining => {
                    // Probes stop; results not yet complete (detection, the
                    // answers-all tally) are left for the shard's next run.
                    draining = true;
                    handles.cancel.cancel();
                }
                Some(r) = stage.next(), if !stage.is_idle() && !draining => pending.push(observation(&r)),
                r = rx.recv(), if !engine_done && !full && !stage.saturated() && !draining => {
                    match r {
                        Some(r) => match tally.add(r, &handles.quiet) {
                            Some(Verdict::Ports(ports)) => {
                                pending.extend(ports.into_iter().filter_map(|r| stage.offer(r)).map(|r| observation(&r)))
                            }
                            Some(Verdict::AnswersAll { addr, open, probed }) => {
                                tracing::info!(target.addr = %addr, open, probed, "host answers on (nearly) every port; reported once");
                                answers_all += 1;
                                pending.push(observation(&ProbeResult::new(addr, 0, PortState::AnswersAll, Duration::ZERO)));
                            }
                            None => {}
                        },
                        None => {
                            engine_done = true;
                            pending.extend(tally.drain().into_iter().filter_map(|r| stage.offer(r)).map(|r| observation(&r)));
                        }
                    }
                },
                ack = self.acks.recv() => match ack {
                    Some(ack) if !ack.accepted => return Err(ShardEnd::Refused(ack.reason)),
                    Some(ack) => acked = acked.max(ack.seq),
                    None => return Err(ShardEnd::Disconnected),
                },
                _ = tokio::time::sleep_until(flush_at), if !pending.is_empty() && !due => {}
                _ = progress_tick.tick() => {
                    let probes = handles.progress.load(Ordering::Relaxed);
                    meter.update(probes);
                    self.send_progress(probes).await?
                }
            }
            if was_empty && !pending.is_empty() {
                flush_at = tokio::time::Instant::now() + BATCH_DELAY;
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

    fn done_message(&self, s: Summary, elapsed: Duration) -> v1::AgentMessage {
        let k = self.assignment.key;
        let stats = v1::ShardStats {
            probes: s.stats.probes,
            open: s.stats.open,
            closed: s.stats.closed,
            filtered: s.stats.filtered,
            refused: s.refused.min(u64::MAX as u128) as u64,
            elapsed: Some(duration_to_wire(elapsed)),
            mode: s.engine.name().to_string(),
            answers_all_hosts: s.answers_all,
            packets: s.stats.packets,
            unreachable: s.stats.unreachable,
        };
        let done = v1::ShardDone {
            scan_id: k.scan_id,
            shard_id: k.shard_id,
            epoch: k.epoch,
            last_seq: s.last_seq,
            stats: Some(stats),
        };
        v1::AgentMessage { body: Some(Body::Done(done)) }
    }
}

/// What a finished shard reports.
struct Summary {
    last_seq: u64,
    stats: EngineStats,
    refused: u128,
    answers_all: u64,
    engine: Engine,
}

async fn run_engine(
    engine: Engine,
    cfg: ConnectConfig,
    space: Arc<ProbeSpace>,
    tx: mpsc::Sender<ProbeResult>,
    handles: RunHandles,
    permits: impl Fn(std::net::IpAddr) -> bool + Send + Sync + Clone + 'static,
) -> EngineStats {
    if engine == Engine::Udp {
        let udp_cfg = UdpConfig {
            timeout: cfg.timeout,
            retries: cfg.retries,
            max_in_flight: cfg.max_in_flight,
            keep_bytes: cfg.banner_max_bytes,
        };
        return udp::scan(&udp_cfg, space.shuffled(), permits, tx, &handles).await;
    }
    if engine == Engine::Syn {
        let syn_cfg = SynConfig {
            timeout: cfg.timeout,
            retries: cfg.retries,
            banner_timeout: cfg.banner_timeout,
            banner_max_bytes: cfg.banner_max_bytes,
            listen_by_port: cfg.listen_by_port,
        };
        match syn::scan(&syn_cfg, space.clone(), permits.clone(), tx.clone(), &handles).await {
            Ok(stats) => return stats,
            Err(e) => tracing::warn!(error = %e, "SYN scan failed to start; falling back to a connect scan"),
        }
    }
    connect::scan(&cfg, space.shuffled(), permits, tx, &handles).await
}

fn observation(r: &ProbeResult) -> v1::Observation {
    v1::Observation {
        addr: addr_to_bytes(r.addr),
        proto: v1::Proto::from(r.proto) as i32,
        port: u32::from(r.port),
        state: v1::PortState::from(r.state) as i32,
        rtt: Some(duration_to_wire(r.rtt)),
        seen_at: Some(time_to_wire(SystemTime::now())),
        banner: r.banner.clone(),
        region: String::new(),
        agent: String::new(),
        service: r.service.as_ref().map(Into::into),
    }
}
