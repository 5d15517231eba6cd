//! No secrets in logs (#8, Operate): a coordinator and an agent at trace
//! level, in JSON, through enrollment with a join token, a scan and a
//! certificate renewal; their logs never hold the token, a private key or
//! any line of one, and every line is one JSON object.

use std::path::Path;
use std::time::Duration;

use vantage_tests::bins;
use vantage_tests::fleet::Fleet;
use vantage_tests::proc::{run, wait_for};
use vantage_tests::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(60);

/// The body lines of every private key in the PEM file at `path`.
fn private_key_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            inside = line.contains("PRIVATE KEY");
        } else if line.starts_with("-----END") {
            inside = false;
        } else if inside && line.len() >= 16 {
            lines.push(line.to_string());
        }
    }
    assert!(!lines.is_empty(), "{} holds a private key", path.display());
    lines
}

fn assert_clean(what: &str, log: &str, secrets: &[String]) {
    assert!(!log.trim().is_empty(), "{what} logged nothing; the test would prove nothing");
    for (n, line) in log.lines().enumerate() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok_and(|v| v.is_object()), "{what} line {} is not a JSON object: {line}", n + 1);
    }
    assert!(!log.contains("PRIVATE KEY"), "{what} logs key material");
    for secret in secrets {
        assert!(!log.contains(secret.as_str()), "{what} logs a secret ({}...)", &secret[..8]);
    }
}

#[test]
fn trace_logs_hold_no_token_and_no_key() {
    // SAFETY: set before any thread of this test process starts a child; this
    // file has one test, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("VANTAGE_LOG", "trace") };
    let truth = LoopbackTargets::start(3, 3);
    let fleet = Fleet::new();
    // Agents renew at two thirds of 12 s: a renewal within the test.
    let _coordinator = fleet.serve(&["--agent-cert-ttl", "12s"]);
    let token = fleet.token("r1", "10m");
    let dir = fleet.path().join("agents").join("a1");
    let enroll = run(
        std::process::Command::new(bins::agent())
            .args(["enroll", "--log-format", "json", "--token", &token, "--coordinator", fleet.url(), "--name", "a1"])
            .arg("--dir")
            .arg(&dir),
        LIMIT,
    );
    assert!(enroll.status.success(), "enroll: {}", String::from_utf8_lossy(&enroll.stderr));
    let key_before = std::fs::read(dir.join("agent.pem")).unwrap();
    let _agent = fleet.agent(&dir, &[]);
    fleet.wait_connected(1, LIMIT);
    let doc = fleet.json(&["scan", "--mode", "connect", "--targets", "127.0.0.1", "--ports", &truth.port_spec()]);
    assert_eq!(doc["scan"]["finished"], true);
    let agent_log = dir.with_extension("log");
    wait_for("a certificate renewal", LIMIT, || {
        std::fs::read_to_string(&agent_log).ok()?.contains("certificate renewed").then_some(())
    });
    assert_ne!(std::fs::read(dir.join("agent.pem")).unwrap(), key_before, "renewal rewrote the agent's file");

    let mut secrets = vec![token.clone(), token.split('.').nth(1).expect("vjt1.SECRET.CA").to_string()];
    let pki = fleet.pki_dir();
    for file in [pki.join("ca.key"), pki.join("coordinator.pem"), pki.join("operator.pem"), dir.join("agent.pem")] {
        secrets.extend(private_key_lines(&file));
    }
    // The agent's first key too, if renewal made a new one.
    let first = dir.with_extension("first.pem");
    std::fs::write(&first, &key_before).unwrap();
    secrets.extend(private_key_lines(&first));

    let logs = [
        ("the coordinator", fleet.log()),
        ("the agent", std::fs::read_to_string(&agent_log).unwrap()),
        ("enrollment", String::from_utf8(enroll.stderr).unwrap()),
    ];
    for (what, log) in &logs {
        assert_clean(what, log, &secrets);
    }
    // Trace level really was on (the filter came through).
    assert!(logs[0].1.contains("\"level\":\"TRACE\"") || logs[0].1.contains("\"level\":\"DEBUG\""), "trace level on");
}
