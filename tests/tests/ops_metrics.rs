//! Metrics and health endpoints (#8, Operate): a coordinator and an agent
//! with `--metrics-listen`, a scan of loopback listeners whose truth we
//! know, and the numbers both processes then show to a scraper.

use std::net::SocketAddr;
use std::time::Duration;

use vantage_tests::fleet::Fleet;
use vantage_tests::ops::{get, scrape, total};
use vantage_tests::proc::{free_port, wait_for};
use vantage_tests::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(60);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Waits until `addr` answers `path` with `code`; the body.
fn wait_code(addr: SocketAddr, path: &str, code: u16) -> String {
    wait_for(&format!("{path} of {addr} to answer {code}"), LIMIT, || get(addr, path).filter(|(c, _)| *c == code)).1
}

#[test]
fn metrics_count_exactly_the_scan_and_readiness_follows_the_session() {
    let truth = LoopbackTargets::start(6, 9);
    let probes = (truth.open.len() + truth.closed.len()) as f64;
    let fleet = Fleet::new();
    let (coord_ops, agent_ops) = (loopback(), loopback());
    let coord_args = ["--metrics-listen".to_string(), coord_ops.to_string()];
    let coord_args: Vec<&str> = coord_args.iter().map(String::as_str).collect();

    // Enrolled while the coordinator runs, started while it does not: not ready.
    let mut coordinator = fleet.serve(&coord_args);
    assert_eq!(wait_code(coord_ops, "/readyz", 200), "ready\n");
    let dir = fleet.enroll("r1", "a1");
    assert!(coordinator.terminate(LIMIT).is_some_and(|s| s.success()), "coordinator exits 0 on SIGTERM");
    let _agent = fleet.agent(&dir, &["--metrics-listen", &agent_ops.to_string()]);
    assert_eq!(wait_code(agent_ops, "/healthz", 200), "ok\n");
    assert_eq!(wait_code(agent_ops, "/readyz", 503), "not connected to the coordinator\n");
    assert_eq!(total(&scrape(agent_ops), "vantage_agent_connected"), 0.0);

    let mut coordinator = fleet.serve(&coord_args);
    wait_code(agent_ops, "/readyz", 200);
    fleet.wait_connected(1, LIMIT);
    let doc = fleet.json(&["scan", "--mode", "connect", "--targets", "127.0.0.1", "--ports", &truth.port_spec()]);
    assert_eq!(doc["scan"]["finished"], true);
    assert_eq!(doc["scan"]["probes_done"].as_f64(), Some(probes));

    // The agent counts a shard right after reporting it: wait for the last one.
    let shards = doc["scan"]["shards_total"].as_f64().expect("shards_total");
    let agent = wait_for("the agent's last shard to be counted", LIMIT, || {
        Some(scrape(agent_ops)).filter(|m| total(m, "vantage_agent_shards_done_total") == shards)
    });
    assert_eq!(total(&agent, "vantage_agent_probes_sent_total"), probes);
    assert_eq!(total(&agent, "vantage_agent_replies_received_total"), probes, "closed ports answer too");
    assert_eq!(total(&agent, "vantage_agent_open_ports_found_total"), truth.open.len() as f64);
    assert_eq!(total(&agent, "vantage_agent_shard_duration_seconds_count"), shards);
    assert_eq!(total(&agent, "vantage_agent_connected"), 1.0);
    assert!(agent.contains_key("vantage_agent_probe_rate"), "{agent:?}");

    let coord = scrape(coord_ops);
    for (what, addr) in [("coordinator", coord_ops), ("agent", agent_ops)] {
        let bytes = get(addr, "/metrics").map_or(0, |(_, body)| body.len());
        eprintln!("{what} /metrics: {bytes} bytes");
    }
    assert_eq!(coord.get("vantage_agents_connected{region=\"r1\"}"), Some(&1.0), "{coord:?}");
    assert_eq!(total(&coord, "vantage_shards_done_total"), shards);
    assert_eq!(total(&coord, "vantage_shards_leased_total"), shards, "no shard leased twice");
    assert_eq!(total(&coord, "vantage_leases_requeued_total"), 0.0);
    assert!(total(&coord, "vantage_observations_ingested_total") >= truth.open.len() as f64, "{coord:?}");
    assert_eq!(total(&coord, "vantage_shard_duration_seconds_count"), shards);
    assert_eq!(total(&coord, "vantage_scans_running"), 0.0);
    assert!(total(&coord, "vantage_store_size_bytes") > 0.0, "{coord:?}");
    assert_eq!(wait_code(coord_ops, "/healthz", 200), "ok\n");

    // The coordinator goes away: the agent runs on, not ready.
    assert!(coordinator.terminate(LIMIT).is_some_and(|s| s.success()), "coordinator exits 0 on SIGTERM");
    assert_eq!(wait_code(agent_ops, "/readyz", 503), "not connected to the coordinator\n");
    assert_eq!(wait_code(agent_ops, "/healthz", 200), "ok\n");
    assert!(get(coord_ops, "/metrics").is_none(), "the coordinator's endpoint is gone with it");
}
