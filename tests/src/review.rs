//! Driving `vantage` over one data directory as a monthly review does:
//! scans of loopback listeners for a period, reviews, findings as JSON.
//! Shared by the findings and report tests.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::bins;
use crate::proc::run;
use serde_json::Value;

/// How long one `vantage` command may take.
pub const LIMIT: Duration = Duration::from_secs(120);

/// `vantage --data-dir DATA ARGS...` (embedded coordinator), killed after [`LIMIT`].
pub fn vantage(data: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new(bins::vantage()).arg("--data-dir").arg(data).args(args), LIMIT)
}

/// As [`vantage`], and it must succeed.
pub fn ok(data: &Path, args: &[&str]) -> std::process::Output {
    let out = vantage(data, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// As [`ok`], its stdout one JSON document.
pub fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&ok(data, args).stdout).expect("one JSON document")
}

/// A listener that greets like OpenSSH 9.2p1 (at most 50 connections).
pub fn ssh_like() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.try_clone().unwrap();
    std::thread::spawn(move || {
        for mut s in server.incoming().take(50).flatten() {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        }
    });
    l
}

/// The listener's port.
pub fn port(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

/// Scans these loopback ports for a review period (detection bounded to 1 s a port).
pub fn scan(data: &Path, ports: &[u16], period: &str) {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    ok(
        data,
        &["scan", "--targets", "127.0.0.1", "--ports", &list.join(","), "--period", period, "--detect-timeout", "1s"],
    );
}

/// The finding of `kind` on `port`.
pub fn find<'a>(findings: &'a Value, port: u16, kind: &str) -> &'a Value {
    findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"]["port"] == port && f["key"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding on {port} in {findings:#}"))
}
