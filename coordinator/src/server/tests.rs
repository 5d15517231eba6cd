//! Ingest against a stalled store, over a real gRPC stream: the agent is
//! held back by flow control, and once the store moves every batch is
//! acknowledged once, in order, only after it is on disk, and every
//! observation is stored exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use vantage_proto::v1;
use vantage_proto::v1::agent_link_client::AgentLinkClient;
use vantage_proto::v1::agent_message::Body as Up;
use vantage_proto::v1::control_client::ControlClient;
use vantage_proto::v1::coordinator_message::Body as Down;
use vantage_shared::convert::addr_to_bytes;
use vantage_shared::{Assignment, Scope};

use super::{Coordinator, CoordinatorConfig};

/// 256 addresses x 512 ports, one shard: 512 batches of the agent's size,
/// several MiB, more than HTTP/2's windows hold.
const PORTS: u32 = 512;
const BATCH: usize = vantage_agent::work::BATCH_SIZE;
const BATCHES: u64 = 256 * PORTS as u64 / BATCH as u64;
/// The agent's outbound queue, tiny.
const OUTBOUND: usize = 4;

fn up(body: Up) -> v1::AgentMessage {
    v1::AgentMessage { body: Some(body) }
}

/// Batch `seq` (from 1) of the shard: 256 observations, all open, all distinct.
fn batch(a: &Assignment, seq: u64) -> v1::AgentMessage {
    let addrs: Vec<_> = a.targets.iter().collect();
    let first = (seq as usize - 1) * BATCH;
    let observations = (first..first + BATCH)
        .map(|i| v1::Observation {
            addr: addr_to_bytes(addrs[i / PORTS as usize]),
            proto: v1::Proto::Tcp as i32,
            port: (i % PORTS as usize) as u32 + 1,
            state: v1::PortState::Open as i32,
            ..Default::default()
        })
        .collect();
    let k = a.key;
    up(Up::Batch(v1::ObservationBatch { scan_id: k.scan_id, shard_id: k.shard_id, epoch: k.epoch, seq, observations }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_holds_a_greedy_agent_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::parse_file("198.18.0.0/24").unwrap();
    let cfg = CoordinatorConfig {
        shard_probes: Some(1 << 20),
        ..CoordinatorConfig::new(dir.path().into(), scope, super::Security::Insecure)
    };
    let coordinator = Coordinator::open(cfg).await.unwrap();
    let store = coordinator.store.clone();
    let (gate, stalled) = std::sync::mpsc::channel::<()>();
    let stalled = std::sync::Mutex::new(stalled);
    store.set_commit_hook(move || {
        let _ = stalled.lock().unwrap().recv();
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(coordinator.serve(listener, shutdown.clone()));

    let channel = vantage_proto::transport::connect(
        &url,
        &vantage_proto::transport::ClientSecurity::Insecure,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let (out, out_rx) = mpsc::channel(OUTBOUND);
    let hello = v1::Hello { name: "greedy".into(), region: "r1".into(), version: "test".into(), capacity: 1 };
    out.send(up(Up::Hello(hello))).await.unwrap();
    let mut inbound =
        AgentLinkClient::new(channel.clone()).session(ReceiverStream::new(out_rx)).await.unwrap().into_inner();
    assert!(matches!(inbound.message().await.unwrap().unwrap().body, Some(Down::Welcome(_))));
    let req =
        v1::StartScanRequest { targets: "198.18.0.0/24".into(), ports: format!("1-{PORTS}"), ..Default::default() };
    let scan = ControlClient::new(channel).start_scan(req).await.unwrap().into_inner();
    let assignment = match inbound.message().await.unwrap().unwrap().body {
        Some(Down::Assignment(w)) => Assignment::try_from(&w).unwrap(),
        other => panic!("expected an assignment, got {other:?}"),
    };

    // Greedier than the real agent: every batch at once, no window.
    let sent = Arc::new(AtomicU64::new(0));
    let sender = tokio::spawn({
        let (out, sent, a) = (out.clone(), sent.clone(), assignment.clone());
        async move {
            for seq in 1..=BATCHES {
                out.send(batch(&a, seq)).await.unwrap();
                sent.store(seq, Ordering::SeqCst);
            }
        }
    });
    // Wait until the agent is stuck: its queue full and nothing more sent for a while.
    let (mut last, mut still, mut polls) = (u64::MAX, 0, 0);
    while still < 50 {
        polls += 1;
        assert!(polls < 12_000, "the agent never stopped: {} of {BATCHES} sent", sent.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = sent.load(Ordering::SeqCst);
        still = if now == last && out.capacity() == 0 { still + 1 } else { 0 };
        last = now;
    }
    assert!(last < BATCHES, "a stalled store must hold the agent back ({last} of {BATCHES} sent)");
    assert!(store.commits_queued() <= 1, "one agent has at most one batch at the committer");
    let written = store.observations(scan.scan_id).count();
    assert!(written <= BATCH, "one batch at a time is written while its flush waits ({written})");

    drop(gate);
    for seq in 1..=BATCHES {
        let ack = match inbound.message().await.unwrap().unwrap().body {
            Some(Down::Ack(ack)) => ack,
            other => panic!("expected ack {seq}, got {other:?}"),
        };
        assert!(ack.accepted && ack.seq == seq, "ack {seq} in order, once: {ack:?}");
        if seq % 64 == 0 {
            let stored = store.observations(scan.scan_id).count() as u64;
            assert!(stored >= seq * BATCH as u64, "ack {seq} left before its batch was stored ({stored})");
        }
    }
    sender.await.unwrap();
    let k = assignment.key;
    let stats = v1::ShardStats { probes: BATCHES * BATCH as u64, open: BATCHES * BATCH as u64, ..Default::default() };
    let done = v1::ShardDone {
        scan_id: k.scan_id,
        shard_id: k.shard_id,
        epoch: k.epoch,
        last_seq: BATCHES,
        stats: Some(stats),
    };
    out.send(up(Up::Done(done))).await.unwrap();
    let mut polls = 0;
    while store.scan(scan.scan_id).unwrap().unwrap().finished_at.is_none() {
        polls += 1;
        assert!(polls < 6000, "the scan never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored: Vec<_> = store.observations(scan.scan_id).map(|o| o.unwrap()).map(|o| (o.addr, o.port)).collect();
    let distinct: BTreeSet<_> = stored.iter().collect();
    let expected = (BATCHES * BATCH as u64) as usize;
    assert_eq!((stored.len(), distinct.len()), (expected, expected), "every observation stored exactly once");
    shutdown.cancel();
    drop((out, inbound));
    server.await.unwrap().unwrap();
}
