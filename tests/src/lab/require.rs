//! Whether this machine can build a lab: root, iproute2, nftables, and the
//! right to create network namespaces (a container may lack it).
//!
//! Lab tests call [`require`]: in CI (`CI=true`) a missing capability is a
//! failure, elsewhere the test says why it skips and passes.

use std::process::Command;
use std::sync::OnceLock;

use super::net::run;

/// Why a lab cannot be built here, or `Ok` if it can. Checked once per process.
pub fn check() -> Result<(), String> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED.get_or_init(probe).clone()
}

/// For lab tests: `true` if the lab can be built. Otherwise panics when the
/// environment says CI, and prints `skipping: <why>` and returns `false` elsewhere.
pub fn require() -> bool {
    let Err(why) = check() else { return true };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "the lab cannot be built in CI: {why} (run as root with iproute2 and nftables installed)");
    eprintln!("skipping: {why}");
    false
}

fn probe() -> Result<(), String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the lab needs root (network namespaces, nftables)".into());
    }
    for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
        run(Command::new(tool).arg(arg)).map_err(|e| format!("`{tool}` is not usable: {e}"))?;
    }
    // Creating a namespace is the one thing only trying can tell.
    let ns = format!("vl-probe{}", std::process::id());
    run(Command::new("ip").args(["netns", "add", &ns])).map_err(|e| format!("cannot create a namespace: {e}"))?;
    run(Command::new("ip").args(["netns", "delete", &ns])).map(drop).map_err(|e| e.to_string())
}
