//! A whole scan end to end, against loopback listeners whose truth we know:
//! (a) the embedded default, (b) a coordinator with two agent processes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::bins;
use vantage_tests::fleet::Fleet;
use vantage_tests::proc::{Guard, run};
use vantage_tests::targets::{LoopbackTargets, banner};

const SCAN_LIMIT: Duration = Duration::from_secs(120);

/// Open ports reported in a `--format json` document, with their banners and agents.
fn reported(doc: &Value) -> BTreeMap<u16, (String, String)> {
    // (banner, agent) by port
    let mut out = BTreeMap::new();
    for o in doc["observations"].as_array().expect("observations array") {
        assert_eq!(o["addr"], "127.0.0.1");
        assert_eq!(o["state"], "open");
        let port = o["port"].as_u64().unwrap() as u16;
        let prev =
            out.insert(port, (o["banner"].as_str().unwrap().to_string(), o["agent"].as_str().unwrap().to_string()));
        assert!(prev.is_none(), "port {port} reported twice");
    }
    out
}

fn assert_matches_truth(doc: &Value, truth: &LoopbackTargets) {
    let got = reported(doc);
    let open: BTreeSet<u16> = got.keys().copied().collect();
    assert_eq!(open, truth.open, "reported open ports differ from the listeners");
    assert!(truth.closed.iter().all(|p| !got.contains_key(p)), "a closed port was reported open");
    for port in &truth.greeting {
        assert_eq!(got[port].0, banner(*port).replace("\r\n", "\\r\\n"), "banner of port {port}");
    }
    let probes = truth.open.len() + truth.closed.len();
    assert_eq!(doc["scan"]["probes_done"].as_u64(), Some(probes as u64));
    assert_eq!(doc["scan"]["open"].as_u64(), Some(truth.open.len() as u64));
    assert_eq!(doc["scan"]["closed"].as_u64(), Some(truth.closed.len() as u64));
    assert_eq!(doc["scan"]["finished"], true);
}

/// Runs an embedded `vantage scan --format json` with extra flags.
fn embedded_scan(data: &std::path::Path, extra: &[&str]) -> Value {
    let out = run(
        Command::new(bins::vantage()).arg("--data-dir").arg(data).args(["scan", "--format", "json"]).args(extra),
        SCAN_LIMIT,
    );
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn syn_scan_finds_exactly_the_listeners() {
    if !vantage_tests::require_root("syn_scan_finds_exactly_the_listeners") {
        return;
    }
    let truth = LoopbackTargets::start(12, 40);
    let data = tempfile::tempdir().unwrap();
    let doc = embedded_scan(data.path(), &["--mode", "syn", "--targets", "127.0.0.1", "--ports", &truth.port_spec()]);
    assert_matches_truth(&doc, &truth);
}

#[test]
fn a_host_answering_on_every_port_is_reported_once() {
    // 150 consecutive listening ports on 127.0.0.2: all open, as on a tarpit.
    let listeners = (0..200)
        .find_map(|_| {
            let base: u16 = rand::random_range(20_000..40_000);
            let ls: Result<Vec<_>, _> =
                (base..base + 150).map(|p| std::net::TcpListener::bind(("127.0.0.2", p))).collect();
            ls.ok().map(|ls| (base, ls))
        })
        .expect("a free block of 150 ports");
    let (base, _ls) = listeners;
    let data = tempfile::tempdir().unwrap();
    let ports = format!("{base}-{}", base + 149);
    let doc = embedded_scan(data.path(), &["--targets", "127.0.0.2", "--ports", &ports, "--banner-timeout", "0s"]);
    let obs = doc["observations"].as_array().unwrap();
    assert_eq!(obs.len(), 1, "one observation for the whole host: {obs:?}");
    assert_eq!(obs[0]["state"], "answers-all");
    assert_eq!(obs[0]["port"], 0);
    assert_eq!(doc["scan"]["open"], 150, "the counters still say what was seen");
}

#[test]
fn embedded_scan_finds_exactly_the_listeners() {
    let truth = LoopbackTargets::start(12, 40);
    let data = tempfile::tempdir().unwrap();
    let doc = embedded_scan(data.path(), &["--targets", "127.0.0.1", "--ports", &truth.port_spec()]);
    assert_matches_truth(&doc, &truth);

    // The same results are in the store for later commands.
    let again = run(
        Command::new(bins::vantage()).arg("--data-dir").arg(data.path()).args(["results", "--format", "json"]),
        SCAN_LIMIT,
    );
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let stored: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(reported(&stored), reported(&doc));
}

#[test]
fn coordinator_splits_the_scan_between_two_agent_processes() {
    let truth = LoopbackTargets::start(16, 48);
    let fleet = Fleet::new();
    // Tiny shards, so that both agents get some.
    let _coordinator = fleet.serve(&["--shard-probes", "4"]);
    let _agents: Vec<Guard> = ["r1", "r2"]
        .iter()
        .map(|region| fleet.start_agent(region, &format!("agent-{region}"), &["--capacity", "1"]))
        .collect();
    fleet.wait_connected(2, Duration::from_secs(30));

    let out = run(
        fleet.cli().args(["scan", "--targets", "127.0.0.1", "--ports", &truth.port_spec(), "--format", "json"]),
        SCAN_LIMIT,
    );
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_matches_truth(&doc, &truth);
    let agents: BTreeSet<String> = reported(&doc).into_values().map(|(_, agent)| agent).collect();
    assert_eq!(agents, BTreeSet::from(["a-1".to_string(), "a-2".to_string()]), "work was not split");
    // Each agent's region is the one its join token was made for.
    let regions: BTreeSet<&str> =
        doc["observations"].as_array().unwrap().iter().filter_map(|o| o["region"].as_str()).collect();
    assert_eq!(regions, BTreeSet::from(["r1", "r2"]));
}

/// An HTTP server on loopback that records every request it gets, for a
/// bounded time, and answers each with a small page.
fn recording_http_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + SCAN_LIMIT;
        while std::time::Instant::now() < deadline {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            if n > 0 {
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nServer: recorder\r\nContent-Length: 0\r\n\r\n");
            }
        }
    });
    (port, rx)
}

#[test]
fn http_probes_name_the_operators_contact() {
    let (port, requests) = recording_http_server();
    let data = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(bins::vantage()).arg("--data-dir").arg(data.path()).args([
            "--contact",
            "security@example.invalid",
            "scan",
            "--targets",
            "127.0.0.1",
            "--ports",
            &port.to_string(),
            "--format",
            "json",
        ]),
        SCAN_LIMIT,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<String> = requests.try_iter().collect();
    let want = format!("User-Agent: Vantage/{} (+security@example.invalid)\r\n", env!("CARGO_PKG_VERSION"));
    assert!(got.iter().any(|r| r.starts_with("GET / HTTP/1.0\r\n") && r.contains(&want)), "{got:?}");

    // A contact that could inject a header is refused before anything is sent.
    let out = run(
        Command::new(bins::vantage()).arg("--data-dir").arg(data.path()).args([
            "--contact",
            "x\r\nEvil: 1",
            "scan",
            "--targets",
            "127.0.0.1",
            "--ports",
            &port.to_string(),
        ]),
        SCAN_LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
