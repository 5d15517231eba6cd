//! Harness for Vantage's end-to-end tests: real binaries, real sockets.
//!
//! # Layout
//! * [`bins`]: building and locating `vantage` and `vantage-agent`.
//! * [`fleet`]: a coordinator, enrolled agents and an operator CLI on
//!   loopback, with real certificates.
//! * [`proc`]: child processes that are killed (by PID) when the test ends,
//!   and commands run with a time limit.
//! * [`review`]: `vantage` over one data directory: scans for a period,
//!   reviews, findings as JSON.
//! * [`targets`]: loopback listeners with a known ground truth.
//! * [`recorder`]: a recording HTTP tracker and SMTP server for the ticket tests.
//! * [`lab`]: a network of namespaces in 198.18.0.0/15 with a known ground
//!   truth at scale (needs root); `vantage-lab` drives it from a shell.
//!
//! Tests only ever touch loopback addresses (127.0.0.0/8), or lab addresses
//! inside namespaces they create, which have no route out.

pub mod bins;
pub mod fleet;
pub mod lab;
pub mod proc;
pub mod recorder;
pub mod review;
pub mod targets;

/// Whether a test that needs root may run. In CI (`CI=true`) a missing
/// privilege fails the test; elsewhere the test is skipped with a message.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test} needs root, and CI must run it");
    eprintln!("skipping {test}: needs root (raw sockets)");
    false
}

/// A Debian tool a test runs, found on `PATH` under one of `names`. In CI
/// (`CI=true`) a missing one fails the test (`.ci/run` installs `package`);
/// elsewhere the test is skipped with a message.
pub fn require_tool(test: &str, names: &[&str], package: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file());
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "{test} needs `{}`: .ci/run installs Debian's {package}", names[0]);
        eprintln!("skipping {test}: no `{}` (apt-get install {package})", names[0]);
    }
    found
}
