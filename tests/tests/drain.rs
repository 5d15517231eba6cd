//! Graceful stops (#8, Operate): SIGTERM drains, on both sides, and the scan
//! ends with exactly its results. (faults.rs has the abrupt stops.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vantage_tests::fleet::Fleet;
use vantage_tests::ops::{scrape, total};
use vantage_tests::proc::{free_port, wait_for};
use vantage_tests::slow_scan::{self, assert_results_match, wait_mid_scan};
use vantage_tests::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(120);
/// How long a stopping process may take: the agent's drain grace is 10 s.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// Sends SIGTERM; the exit status must be 0 within `STOP_LIMIT`. Returns
/// how long the stop took.
fn stop(guard: &mut vantage_tests::proc::Guard) -> Duration {
    let started = Instant::now();
    let status = guard.terminate(STOP_LIMIT);
    let took = started.elapsed();
    assert!(status.is_some_and(|s| s.success()), "{} exits 0 within {STOP_LIMIT:?} of SIGTERM: {status:?}", guard.name);
    eprintln!("{} stopped in {took:?}", guard.name);
    took
}

#[test]
fn a_stopping_agent_hands_its_shard_back_at_once() {
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let ops = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // Leases far longer than the test: only the agent's goodbye can put its shard back in time.
    let _coordinator = fleet.serve(&["--shard-probes", "2", "--lease", "10m", "--metrics-listen", &ops.to_string()]);
    let mut leaving = fleet.start_agent("r1", "leaving", &["--capacity", "1"]);
    let _staying = fleet.start_agent("r1", "staying", &["--capacity", "1"]);
    fleet.wait_connected(2, LIMIT);
    let scan = slow_scan::start(&fleet, &truth, "2s");
    // Enrolled first, the leaving agent is a-1: stop it while it holds a lease.
    wait_for("the leaving agent to hold a lease", LIMIT, || {
        fleet.agents()?.iter().find(|a| a["id"] == "a-1" && a["active_leases"].as_u64() > Some(0)).map(|_| ())
    });
    stop(&mut leaving);
    let log = std::fs::read_to_string(fleet.path().join("agents/leaving.log")).unwrap();
    assert!(log.contains("shard handed back"), "{log}");
    assert!(log.contains("left the coordinator"), "{log}");
    let metrics = scrape(ops);
    // Handed back at its goodbye, not expired (leases last 10 minutes), nothing else requeued.
    let returned = total(&metrics, "vantage_leases_requeued_total{reason=\"returned\"}");
    assert!(returned >= 1.0, "{metrics:?}");
    assert_eq!(total(&metrics, "vantage_leases_requeued_total"), returned, "{metrics:?}");
    assert!(fleet.log().contains("agent left"), "{}", fleet.log());
    assert_results_match(&fleet, scan, &truth);
}

#[test]
fn a_stopping_coordinator_loses_nothing_and_resumes() {
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let serve = ["--shard-probes", "2", "--lease", "3s"];
    let mut first = fleet.serve(&serve);
    let _agent = fleet.start_agent("r1", "a1", &["--capacity", "1"]);
    fleet.wait_connected(1, LIMIT);
    let scan = slow_scan::start(&fleet, &truth, "400ms");
    wait_mid_scan(&fleet, scan);
    stop(&mut first);
    assert!(!fleet.log().contains("final flush failed"), "{}", fleet.log());
    let _second = fleet.serve(&serve);
    fleet.wait_connected(1, LIMIT);
    assert_results_match(&fleet, scan, &truth);
}
