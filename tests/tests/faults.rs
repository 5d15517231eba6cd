//! Faults lose nothing: a coordinator killed mid-scan resumes where it was,
//! and the work of an agent killed mid-shard completes on another agent.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::bins;
use vantage_tests::proc::{Guard, free_port, run, wait_for};
use vantage_tests::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(120);

fn coordinator(data: &Path, listen: &str) -> Guard {
    Guard::spawn(
        "coordinator",
        Command::new(bins::vantage()).arg("--data-dir").arg(data).args([
            "serve",
            "--listen",
            listen,
            "--shard-probes",
            "2",
            "--lease",
            "3s",
        ]),
    )
}

fn agent(url: &str, name: &str) -> Guard {
    Guard::spawn(name, Command::new(bins::agent()).args(["--coordinator", url, "--name", name, "--capacity", "1"]))
}

fn cli(url: &str, args: &[&str]) -> Value {
    let out = run(Command::new(bins::vantage()).args(args).args(["--coordinator", url, "--format", "json"]), LIMIT);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Connected agents, or `None` while the coordinator is not up yet.
fn agents(url: &str) -> Option<usize> {
    let out =
        run(Command::new(bins::vantage()).args(["fleet", "list", "--format", "json", "--coordinator", url]), LIMIT);
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    list.as_array().map(Vec::len)
}

/// Starts a slow scan (silent listeners hold each banner read) and returns its id.
fn start_slow_scan(url: &str, truth: &LoopbackTargets) -> u64 {
    let out = run(
        Command::new(bins::vantage()).args([
            "scan",
            "--coordinator",
            url,
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
fn shards(url: &str, scan: u64) -> Option<(u64, u64)> {
    let out =
        run(Command::new(bins::vantage()).args(["scan", "list", "--format", "json", "--coordinator", url]), LIMIT);
    let scans: Value = serde_json::from_slice(&out.stdout).ok()?;
    let s = scans.as_array()?.iter().find(|s| s["id"] == scan)?;
    Some((s["shards_done"].as_u64()?, s["shards_total"].as_u64()?))
}

/// Waits until some shards are done, and checks that some are not: the
/// fault must strike mid-scan for the test to mean anything.
fn wait_mid_scan(url: &str, scan: u64) {
    let (done, total) = wait_for("some progress", LIMIT, || shards(url, scan).filter(|&(done, _)| done >= 2));
    assert!(done < total, "the scan finished before the fault ({done}/{total}); make it slower");
}

fn assert_results_match(url: &str, scan: u64, truth: &LoopbackTargets) {
    let status = cli(url, &["scan", "watch", &scan.to_string()]);
    assert_eq!(status["finished"], true);
    let doc = cli(url, &["results", &scan.to_string()]);
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
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let mut first = coordinator(data.path(), &listen);
    let _agent = agent(&url, "a1");
    wait_for("the agent", LIMIT, || agents(&url).filter(|&n| n == 1));
    let scan = start_slow_scan(&url, &truth);
    wait_mid_scan(&url, scan);
    first.kill();
    let _second = coordinator(data.path(), &listen);
    wait_for("the agent to reconnect", LIMIT, || agents(&url).filter(|&n| n == 1));
    assert_results_match(&url, scan, &truth);
}

#[test]
fn a_killed_agents_shards_complete_elsewhere() {
    let truth = LoopbackTargets::start(10, 10);
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let _coordinator = coordinator(data.path(), &listen);
    let mut doomed = agent(&url, "doomed");
    let _survivor = agent(&url, "survivor");
    wait_for("two agents", LIMIT, || agents(&url).filter(|&n| n == 2));
    let scan = start_slow_scan(&url, &truth);
    wait_mid_scan(&url, scan);
    doomed.kill();
    assert_results_match(&url, scan, &truth);
}
