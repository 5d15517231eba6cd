//! The binaries under test, built once per test process.
//!
//! Integration tests of this crate cannot name another package's binaries
//! through `CARGO_BIN_EXE_*`, so the harness asks cargo to build them (a
//! no-op when they are fresh) and finds them next to the test executable
//! (or next to a binary of this workspace, such as `vantage-bench`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn target_dir() -> PathBuf {
    // .../target/<profile>/deps/<test-binary>, or .../target/<profile>/<binary>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("target/<profile>");
    let dir = if dir.ends_with("deps") { dir.parent().expect("target/<profile>") } else { dir };
    dir.to_path_buf()
}

fn build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_dir();
            let release = dir.file_name().is_some_and(|n| n == "release");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "vantage-coordinator",
                "-p",
                "vantage-agent",
                "-p",
                "vantage-tests",
            ]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the binaries failed");
            dir
        })
        .clone()
}

/// Path of the `vantage` binary.
pub fn vantage() -> PathBuf {
    build().join("vantage")
}

/// Path of the `vantage-agent` binary.
pub fn agent() -> PathBuf {
    build().join("vantage-agent")
}

/// Path of the `vantage-lab` binary (the lab's listeners run it).
pub fn lab() -> PathBuf {
    build().join("vantage-lab")
}
