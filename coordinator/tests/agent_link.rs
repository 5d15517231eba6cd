//! The agent link against a real coordinator over real gRPC (in this
//! process, plaintext on loopback): an agent that sends observations outside
//! its shard has the batch refused and logged, and nothing of it is stored.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use vantage_coordinator::server::{Coordinator, CoordinatorConfig, Security};
use vantage_proto::transport::{self, ClientSecurity};
use vantage_proto::v1;
use vantage_proto::v1::agent_link_client::AgentLinkClient;
use vantage_proto::v1::agent_message::Body as In;
use vantage_proto::v1::control_client::ControlClient;
use vantage_proto::v1::coordinator_message::Body as Out;
use vantage_shared::{Observation, PortState, Proto, Scope};

const LIMIT: Duration = Duration::from_secs(20);

fn observation(addr: Ipv4Addr, port: u16) -> v1::Observation {
    let o = Observation {
        addr: IpAddr::V4(addr),
        proto: Proto::Tcp,
        port,
        state: PortState::Open,
        rtt: Duration::from_micros(50),
        seen_at: SystemTime::now(),
        banner: Vec::new(),
        region: String::new(),
        agent: String::new(),
        service: None,
    };
    v1::Observation::from(&o)
}

#[tokio::test]
async fn observations_outside_the_shard_are_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator =
        Coordinator::open(CoordinatorConfig::new(dir.path().into(), Scope::loopback(), Security::Insecure))
            .await
            .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(coordinator.serve(listener, shutdown.clone()));

    let channel = transport::connect(&url, &ClientSecurity::Insecure, LIMIT).await.unwrap();
    let mut control = ControlClient::new(channel.clone());
    let (tx, rx) = mpsc::channel(16);
    let hello = v1::Hello { name: "rogue".into(), region: "r1".into(), version: "test".into(), capacity: 1 };
    tx.send(v1::AgentMessage { body: Some(In::Hello(hello)) }).await.unwrap();
    let mut inbound = AgentLinkClient::new(channel).session(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let start = v1::StartScanRequest { targets: "127.0.0.1".into(), ports: "1-10".into(), ..Default::default() };
    let scan = control.start_scan(start).await.unwrap().into_inner().scan_id;

    let mut next = async || tokio::time::timeout(LIMIT, inbound.message()).await.unwrap().unwrap().unwrap().body;
    let assignment = loop {
        if let Some(Out::Assignment(a)) = next().await {
            break a;
        }
    };
    // 127.0.0.2 is in scope, but not in the shard (127.0.0.1 only).
    let batch = v1::ObservationBatch {
        scan_id: assignment.scan_id,
        shard_id: assignment.shard_id,
        epoch: assignment.epoch,
        seq: 1,
        observations: vec![observation(Ipv4Addr::new(127, 0, 0, 1), 5), observation(Ipv4Addr::new(127, 0, 0, 2), 5)],
    };
    tx.send(v1::AgentMessage { body: Some(In::Batch(batch)) }).await.unwrap();
    let ack = loop {
        if let Some(Out::Ack(ack)) = next().await {
            break ack;
        }
    };
    assert!(!ack.accepted);
    assert!(ack.reason.contains("127.0.0.2:5 is outside the shard"), "{}", ack.reason);

    // Nothing of the batch was stored, not even its valid half.
    let mut results = control
        .list_results(v1::ListResultsRequest { scan_id: scan, include_closed: true })
        .await
        .unwrap()
        .into_inner();
    assert!(results.message().await.unwrap().is_none(), "a refused batch left observations behind");

    drop(tx);
    shutdown.cancel();
    let _ = tokio::time::timeout(LIMIT, server).await;
}
