//! A scan whose targets have no route at all says so in one line and exits
//! non-zero, instead of reporting every port as filtered.
//!
//! The scanner runs in an empty network namespace of its own (only `lo`),
//! so its probes to 198.18.0.0/15 cannot leave the machine: the kernel
//! refuses them with "network unreachable".

use std::process::Command;
use std::time::Duration;

use vantage_tests::bins;
use vantage_tests::proc::run;

/// An empty namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        let ok = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        assert!(ok(&["netns", "add", name]), "ip netns add {name}");
        assert!(ok(&["-n", name, "link", "set", "lo", "up"]), "lo up in {name}");
        Netns(name.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn scan_unreachable(mode: &str) {
    let ns = Netns::create(&format!("vt-unreach-{mode}"));
    let data = tempfile::tempdir().unwrap();
    let scope = data.path().join("scope.txt");
    std::fs::write(&scope, "198.18.0.0/15\n").unwrap();
    let out = run(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(bins::vantage())
            .arg("--data-dir")
            .arg(data.path())
            .arg("--scope")
            .arg(&scope)
            .args(["scan", "--targets", "198.18.0.1-4", "--ports", "22,80", "--timeout", "200ms", "--mode", mode]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("vantage: no route to any target: all 8 probes"), "{stderr}");
    assert!(out.stdout.is_empty(), "no result table for a scan that could not reach anything");
}

#[test]
fn connect_scan_of_an_unreachable_network() {
    if vantage_tests::require_root("connect_scan_of_an_unreachable_network") {
        scan_unreachable("connect");
    }
}

#[test]
fn syn_scan_of_an_unreachable_network() {
    if vantage_tests::require_root("syn_scan_of_an_unreachable_network") {
        scan_unreachable("syn");
    }
}
