//! One simulated agent of `--checks ingest`: the real agent's session and
//! batching, with made-up results instead of probes.
//!
//! It says hello, takes the shards leased to it (up to its capacity at once)
//! and reports every (address, port) of each shard as open, in numbered
//! batches of the real agent's [`BATCH_SIZE`], with at most [`MAX_UNACKED`]
//! of them unacknowledged per shard, through an outbound queue of the real
//! agent's size; a shard is reported done after its last batch is
//! acknowledged. Nothing is ever sent to those addresses: the only socket is
//! the gRPC stream to the coordinator on loopback.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use vantage_agent::session::OUTBOUND_QUEUE;
use vantage_agent::work::{BATCH_SIZE, MAX_UNACKED};
use vantage_proto::v1;
use vantage_proto::v1::agent_link_client::AgentLinkClient;
use vantage_proto::v1::agent_message::Body as Up;
use vantage_proto::v1::coordinator_message::Body as Down;
use vantage_shared::convert::{addr_to_bytes, duration_to_wire, time_to_wire};
use vantage_shared::{Assignment, LeaseKey};

use super::link;

/// What all simulated agents of one run saw, shared between them.
#[derive(Debug, Default)]
pub struct Tallies {
    /// When the first batch of the run was handed to gRPC.
    pub first_batch: OnceLock<Instant>,
    /// When the latest acknowledgement arrived.
    pub last_ack: Mutex<Option<Instant>>,
    /// Observations whose batch was acknowledged.
    pub acked: AtomicU64,
    pub batches: AtomicU64,
    /// Protobuf bytes of the batches sent (what TLS would encrypt).
    pub batch_bytes: AtomicU64,
    pub shards_done: AtomicU64,
    /// Leases the coordinator took back (it should not, in this check).
    pub cancelled: AtomicU64,
    /// The first batch the coordinator refused, and why.
    pub refused: OnceLock<String>,
}

impl Tallies {
    fn acked_now(&self, observations: u64) {
        self.acked.fetch_add(observations, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self.last_ack.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(last.map_or(now, |t| t.max(now)));
    }

    /// From the first batch sent to the last acknowledgement received.
    pub fn window(&self) -> Option<Duration> {
        let first = *self.first_batch.get()?;
        let last = (*self.last_ack.lock().unwrap_or_else(|p| p.into_inner()))?;
        Some(last.saturating_duration_since(first))
    }
}

/// One simulated agent.
pub struct SimAgent {
    pub url: String,
    pub name: String,
    pub region: String,
    /// Shards it runs at once (the real agent's `--capacity`).
    pub capacity: u32,
}

impl SimAgent {
    /// Runs one session until the coordinator closes it (or the task is
    /// aborted, which is how the check ends it).
    pub async fn run(self, tallies: Arc<Tallies>) -> anyhow::Result<()> {
        let mut client = AgentLinkClient::new(link::channel(&self.url).await?);
        let (out, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let hello =
            v1::Hello { name: self.name, region: self.region, version: "ingest-bench".into(), capacity: self.capacity };
        out.send(v1::AgentMessage { body: Some(Up::Hello(hello)) }).await?;
        let mut inbound = client.session(ReceiverStream::new(out_rx)).await?.into_inner();
        match inbound.message().await?.and_then(|m| m.body) {
            Some(Down::Welcome(_)) => {}
            other => anyhow::bail!("expected a welcome, got {other:?}"),
        }
        let mut acks: HashMap<LeaseKey, mpsc::Sender<v1::BatchAck>> = HashMap::new();
        let mut runs: JoinSet<anyhow::Result<LeaseKey>> = JoinSet::new();
        loop {
            tokio::select! {
                msg = inbound.message() => match msg?.and_then(|m| m.body) {
                    Some(Down::Assignment(w)) => {
                        let assignment = Assignment::try_from(&w).context("a malformed assignment")?;
                        // Acks never outnumber the batches a shard may have unacknowledged.
                        let (ack_tx, ack_rx) = mpsc::channel(MAX_UNACKED as usize + 1);
                        acks.insert(assignment.key, ack_tx);
                        runs.spawn(run_shard(assignment, out.clone(), ack_rx, tallies.clone()));
                    }
                    Some(Down::Ack(ack)) => {
                        let key = LeaseKey { scan_id: ack.scan_id, shard_id: ack.shard_id, epoch: ack.epoch };
                        if let Some(tx) = acks.get(&key) {
                            let _ = tx.try_send(ack);
                        }
                    }
                    Some(Down::Cancel(_)) => {
                        tallies.cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Down::Welcome(_)) => {}
                    None => return Ok(()),
                },
                Some(joined) = runs.join_next() => {
                    let key = joined??;
                    acks.remove(&key);
                }
            }
        }
    }
}

/// Sends every (address, port) of the shard as open, then reports it done.
async fn run_shard(
    a: Assignment,
    out: mpsc::Sender<v1::AgentMessage>,
    mut acks: mpsc::Receiver<v1::BatchAck>,
    tallies: Arc<Tallies>,
) -> anyhow::Result<LeaseKey> {
    let key = a.key;
    let started = Instant::now();
    // A shard is a few thousand cells: (address, port) number i is
    // (addrs[i / ports], ports[i % ports]).
    let ports: Vec<u16> = a.ports.iter().collect();
    let addrs: Vec<IpAddr> = a.targets.iter().collect();
    let cells = addrs.len() * ports.len();
    let mut next = 0usize;
    // (seq, observations) of the batches not acknowledged yet, oldest first.
    let mut unacked: VecDeque<(u64, u64)> = VecDeque::new();
    let (mut seq, mut sent, mut exhausted) = (0u64, 0u64, false);
    loop {
        if !exhausted && (unacked.len() as u64) < MAX_UNACKED {
            let end = (next + BATCH_SIZE).min(cells);
            let observations: Vec<v1::Observation> =
                (next..end).map(|i| open(addrs[i / ports.len()], ports[i % ports.len()])).collect();
            next = end;
            if observations.is_empty() {
                exhausted = true;
                continue;
            }
            seq += 1;
            let n = observations.len() as u64;
            sent += n;
            unacked.push_back((seq, n));
            tallies.first_batch.get_or_init(Instant::now);
            let batch = v1::ObservationBatch {
                scan_id: key.scan_id,
                shard_id: key.shard_id,
                epoch: key.epoch,
                seq,
                observations,
            };
            tallies.batch_bytes.fetch_add(prost::Message::encoded_len(&batch) as u64, Ordering::Relaxed);
            out.send(v1::AgentMessage { body: Some(Up::Batch(batch)) }).await.context("the stream closed")?;
            continue;
        }
        if exhausted && unacked.is_empty() {
            break;
        }
        let ack = acks.recv().await.context("the stream closed before every batch was acknowledged")?;
        if !ack.accepted {
            let _ = tallies.refused.set(format!("{key} seq {}: {}", ack.seq, ack.reason));
            anyhow::bail!("the coordinator refused batch {} of {key}: {}", ack.seq, ack.reason);
        }
        while let Some(&(s, n)) = unacked.front()
            && s <= ack.seq
        {
            unacked.pop_front();
            tallies.acked_now(n);
        }
    }
    let stats = v1::ShardStats {
        probes: sent,
        open: sent,
        elapsed: Some(duration_to_wire(started.elapsed())),
        mode: "connect".into(),
        packets: sent,
        ..Default::default()
    };
    let done = v1::ShardDone {
        scan_id: key.scan_id,
        shard_id: key.shard_id,
        epoch: key.epoch,
        last_seq: seq,
        stats: Some(stats),
    };
    out.send(v1::AgentMessage { body: Some(Up::Done(done)) }).await.context("the stream closed")?;
    tallies.shards_done.fetch_add(1, Ordering::Relaxed);
    Ok(key)
}

/// An open TCP port as the real agent reports one found by a connect scan
/// without detection: round trip, time seen, no banner.
fn open(addr: IpAddr, port: u16) -> v1::Observation {
    v1::Observation {
        addr: addr_to_bytes(addr),
        proto: v1::Proto::Tcp as i32,
        port: u32::from(port),
        state: v1::PortState::Open as i32,
        rtt: Some(duration_to_wire(Duration::from_micros(800 + u64::from(port % 400)))),
        seen_at: Some(time_to_wire(SystemTime::now())),
        ..Default::default()
    }
}
