//! Faults lose nothing: a coordinator killed mid-scan resumes where it was,
//! and the work of an agent killed mid-shard completes on another agent.

use std::time::Duration;

use serde_json::Value;
use vantage_tests::fleet::Fleet;
use vantage_tests::proc::{Guard, run, wait_for};
use vantage_tests::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(120);
const SERVE: [&str; 4] = ["--shard-probes", "2", "--lease", "3s"];

fn agent(fleet: &Fleet, region: &str, name: &str) -> Guard {
    fleet.start_agent(region, name, &["--capacity", "1"])
}

/// Starts a slow scan (silent listeners hold each banner read) and returns its id.
fn start_slow_scan(fleet: &Fleet, truth: &LoopbackTargets) -> u64 {
    let out = run(
        fleet.cli().args([
            "scan",
            "--detach",
            "--targets",
            "127.0.0.1",
            "--ports",
            &truth.port_spec(),
            "--banner-timeout",
            "400ms",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().parse().expect("scan id on stdout")
}

/// (shards done, shards in all) of a scan.
fn shards(fleet: &Fleet, scan: u64) -> Option<(u64, u64)> {
    let out = run(fleet.cli().args(["scan", "list", "--format", "json"]), LIMIT);
    let scans: Value = serde_json::from_slice(&out.stdout).ok()?;
    let s = scans.as_array()?.iter().find(|s| s["id"] == scan)?;
    Some((s["shards_done"].as_u64()?, s["shards_total"].as_u64()?))
}

/// Waits until some shards are done, and checks that some are not: the
/// fault must strike mid-scan for the test to mean anything.
fn wait_mid_scan(fleet: &Fleet, scan: u64) {
    let (done, total) = wait_for("some progress", LIMIT, || shards(fleet, scan).filter(|&(done, _)| done >= 2));
    assert!(done < total, "the scan finished before the fault ({done}/{total}); make it slower");
}

fn assert_results_match(fleet: &Fleet, scan: u64, truth: &LoopbackTargets) {
    let status = fleet.json(&["scan", "watch", &scan.to_string()]);
    assert_eq!(status["finished"], true);
    let doc = fleet.json(&["results", &scan.to_string()]);
    let mut seen = Vec::new();
    for o in doc["observations"].as_array().unwrap() {
        seen.push(o["port"].as_u64().unwrap() as u16);
    }
    let unique: std::collections::BTreeSet<u16> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no port reported twice");
    assert_eq!(unique, truth.open, "open ports after the fault");
    assert_eq!(doc["scan"]["probes_done"].as_u64(), Some((truth.open.len() + truth.closed.len()) as u64));
}

#[test]
fn a_killed_coordinator_resumes_the_scan() {
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let mut first = fleet.serve(&SERVE);
    let _agent = agent(&fleet, "r1", "a1");
    fleet.wait_connected(1, LIMIT);
    let scan = start_slow_scan(&fleet, &truth);
    wait_mid_scan(&fleet, scan);
    first.kill();
    let _second = fleet.serve(&SERVE);
    fleet.wait_connected(1, LIMIT);
    assert_results_match(&fleet, scan, &truth);
}

#[test]
fn a_killed_agents_shards_complete_elsewhere() {
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let _coordinator = fleet.serve(&SERVE);
    let mut doomed = agent(&fleet, "r1", "doomed");
    let _survivor = agent(&fleet, "r1", "survivor");
    fleet.wait_connected(2, LIMIT);
    let scan = start_slow_scan(&fleet, &truth);
    wait_mid_scan(&fleet, scan);
    doomed.kill();
    assert_results_match(&fleet, scan, &truth);
}

/// Sends `signal` to a process we started.
fn signal(guard: &Guard, signal: i32) {
    // SAFETY: kill(2) on a PID we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(guard.pid() as i32, signal) }, 0);
}

#[test]
fn an_agent_paused_past_its_lease_adds_nothing_when_it_returns() {
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let _coordinator = fleet.serve(&SERVE);
    let paused = agent(&fleet, "r1", "sleeper");
    let _other = agent(&fleet, "r1", "awake");
    fleet.wait_connected(2, LIMIT);
    let scan = start_slow_scan(&fleet, &truth);
    // Pause the sleeper (a-1) while it holds a lease.
    wait_for("the sleeper to hold a lease", LIMIT, || {
        fleet.agents()?.iter().find(|a| a["id"] == "a-1" && a["active_leases"].as_u64() > Some(0)).map(|_| ())
    });
    signal(&paused, libc::SIGSTOP);
    // Past its 3 s lease, its shard goes to the other agent under a new epoch.
    wait_for("the lease to expire", LIMIT, || fleet.log().contains("lease expired").then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    signal(&paused, libc::SIGCONT);
    // Whatever the sleeper still sends under its old epoch is refused: every
    // port once, exactly the truth.
    assert_results_match(&fleet, scan, &truth);
    std::thread::sleep(Duration::from_secs(2));
    assert_results_match(&fleet, scan, &truth);
}

#[test]
fn a_flood_of_agents_reconnects_after_a_coordinator_restart() {
    const AGENTS: usize = 12;
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let mut first = fleet.serve(&SERVE);
    let _agents: Vec<Guard> = (0..AGENTS).map(|i| agent(&fleet, &format!("r{}", i % 3), &format!("edge{i}"))).collect();
    fleet.wait_connected(AGENTS, LIMIT);
    first.kill();
    let _second = fleet.serve(&SERVE);
    // All of them at once (each backs off with jitter), none refused.
    fleet.wait_connected(AGENTS, LIMIT);
    assert!(!fleet.log().contains("connection refused"), "{}", fleet.log());
    let scan = start_slow_scan(&fleet, &truth);
    assert_results_match(&fleet, scan, &truth);
}

#[test]
fn a_backup_taken_mid_scan_restores_and_the_scan_completes() {
    let truth = LoopbackTargets::start(10, 10);
    let fleet = Fleet::new();
    let mut first = fleet.serve(&SERVE);
    let _agent = agent(&fleet, "r1", "a1");
    fleet.wait_connected(1, LIMIT);
    let scan = start_slow_scan(&fleet, &truth);
    wait_mid_scan(&fleet, scan);

    // Taken through the serving coordinator, while its agent writes results.
    let file = fleet.path().join("mid-scan.backup");
    let out = run(fleet.cli().args(["admin", "backup"]).arg(&file), LIMIT);
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("entries in") && said.contains("store schema"), "{said}");
    assert!(!fleet.path().join(".mid-scan.backup.partial").exists(), "the partial file is renamed");
    let again = run(fleet.cli().args(["admin", "backup"]).arg(&file), LIMIT);
    assert_eq!(again.status.code(), Some(2), "an existing file is kept without --force");

    // The store is lost; the backup comes back in its place.
    assert!(first.terminate(Duration::from_secs(20)).is_some_and(|s| s.success()), "the coordinator stops cleanly");
    std::fs::rename(fleet.data_dir(), fleet.path().join("lost")).unwrap();
    let restore = |dir: &std::path::Path| {
        let mut cmd = std::process::Command::new(vantage_tests::bins::vantage());
        cmd.arg("--data-dir").arg(dir).args(["admin", "restore"]).arg(&file);
        run(&mut cmd, LIMIT)
    };
    let out = restore(&fleet.data_dir());
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let refused = restore(&fleet.data_dir());
    assert_eq!(refused.status.code(), Some(2), "a data directory with a store is not overwritten");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds a store"));

    // The restored coordinator knows its agent and finishes the scan exactly.
    let _second = fleet.serve(&SERVE);
    fleet.wait_connected(1, LIMIT);
    assert_results_match(&fleet, scan, &truth);
}
