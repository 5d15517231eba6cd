//! A scan slow enough to strike in the middle of (kill or stop a process),
//! and the check that its results are still exactly the truth afterwards:
//! every open port once, no closed one, every probe counted once.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::fleet::Fleet;
use crate::proc::{run, wait_for};
use crate::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(120);

/// Starts a scan of `truth` whose silent listeners hold each banner read for
/// `banner_timeout`, and returns its id.
pub fn start(fleet: &Fleet, truth: &LoopbackTargets, banner_timeout: &str) -> u64 {
    let out = run(
        fleet.cli().args([
            "scan",
            "--detach",
            "--mode",
            "connect",
            "--targets",
            "127.0.0.1",
            "--ports",
            &truth.port_spec(),
            "--banner-timeout",
            banner_timeout,
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().parse().expect("scan id on stdout")
}

/// (shards done, shards in all) of a scan.
pub fn shards(fleet: &Fleet, scan: u64) -> Option<(u64, u64)> {
    let out = run(fleet.cli().args(["scan", "list", "--format", "json"]), LIMIT);
    let scans: Value = serde_json::from_slice(&out.stdout).ok()?;
    let s = scans.as_array()?.iter().find(|s| s["id"] == scan)?;
    Some((s["shards_done"].as_u64()?, s["shards_total"].as_u64()?))
}

/// Waits until some shards are done, and checks that some are not: the
/// fault must strike mid-scan for the test to mean anything.
pub fn wait_mid_scan(fleet: &Fleet, scan: u64) {
    let (done, total) = wait_for("some progress", LIMIT, || shards(fleet, scan).filter(|&(done, _)| done >= 2));
    assert!(done < total, "the scan finished before the fault ({done}/{total}); make it slower");
}

/// Waits for the scan to finish and checks its results against the truth.
pub fn assert_results_match(fleet: &Fleet, scan: u64, truth: &LoopbackTargets) {
    let status = fleet.json(&["scan", "watch", &scan.to_string()]);
    assert_eq!(status["finished"], true);
    let doc = fleet.json(&["results", &scan.to_string()]);
    let mut seen = Vec::new();
    for o in doc["observations"].as_array().unwrap() {
        seen.push(o["port"].as_u64().unwrap() as u16);
    }
    let unique: BTreeSet<u16> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no port reported twice");
    assert_eq!(unique, truth.open, "open ports after the fault");
    assert_eq!(doc["scan"]["probes_done"].as_u64(), Some((truth.open.len() + truth.closed.len()) as u64));
}
