//! The lab (network namespaces in 198.18.0.0/15, needs root): first that it
//! tells the truth to a plain TCP client, then that Vantage finds exactly
//! its open ports.
//!
//! Each test builds its own lab under its own name, suffixed with the test
//! process's PID, so tests run in parallel, also with another checkout's.
//! Without root, they skip (and fail when `CI=true`): see `lab::require`.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::bins;
use vantage_tests::lab::{self, HostKind, HostTruth, Lab, LabSpec, PortRange, Truth, net, truth::banner};
use vantage_tests::proc::run;

/// Long enough for a veth round trip many times over, short enough for many probes.
const SILENCE: Duration = Duration::from_millis(400);
const SCAN_LIMIT: Duration = Duration::from_secs(180);

/// What a plain connect to `addr` ends with.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Open,
    Refused,
    Silent,
    Other(ErrorKind),
}

fn connect(addr: SocketAddrV4, timeout: Duration) -> Outcome {
    match TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout) {
        Ok(_) => Outcome::Open,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Outcome::Refused,
        Err(e) if e.kind() == ErrorKind::TimedOut => Outcome::Silent,
        Err(e) => Outcome::Other(e.kind()),
    }
}

/// Connects to every address at once (one thread each, in the caller's namespace).
fn connect_all(addrs: &[SocketAddrV4], timeout: Duration) -> Vec<(SocketAddrV4, Outcome)> {
    std::thread::scope(|s| {
        let threads: Vec<_> = addrs.iter().map(|a| s.spawn(move || (*a, connect(*a, timeout)))).collect();
        threads.into_iter().map(|t| t.join().expect("probe thread")).collect()
    })
}

fn assert_all(results: &[(SocketAddrV4, Outcome)], want: Outcome, what: &str) {
    let wrong: Vec<_> = results.iter().filter(|(_, o)| *o != want).collect();
    assert!(wrong.is_empty(), "{what}: expected {want:?}, got {wrong:?}");
}

/// Closed ports of a live host: the first `n` of its range that are neither open nor filtered.
fn closed_sample(truth: &Truth, n: usize) -> Vec<SocketAddrV4> {
    let host = truth.of_kind(HostKind::Live).next().expect("a live host");
    let free = truth.ports.iter().filter(|p| !host.open.contains(p) && !host.filtered.contains(p));
    free.step_by(97).take(n).map(|p| SocketAddrV4::new(host.addr, p)).collect()
}

/// One set of ports (open or filtered) of every live host.
fn live_ports(truth: &Truth, which: impl Fn(&HostTruth) -> &BTreeSet<u16>) -> Vec<SocketAddrV4> {
    let live = truth.of_kind(HostKind::Live);
    live.flat_map(|h| which(h).iter().map(|p| SocketAddrV4::new(h.addr, *p))).collect()
}

fn special(truth: &Truth, kind: HostKind, ports: &[u16]) -> Vec<SocketAddrV4> {
    let host = truth.of_kind(kind).next().expect("host of that kind");
    ports.iter().map(|p| SocketAddrV4::new(host.addr, *p)).collect()
}

/// A lab name of this test process (`<base>-<pid>`).
fn lab_name(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

fn lab_namespaces(name: &str) -> Vec<String> {
    net::existing(&LabSpec::new(name)).expect("ip netns list")
}

#[test]
fn the_lab_tells_the_truth() {
    if !lab::require() {
        return;
    }
    let spec = LabSpec {
        hosts: 4,
        open: 6,
        filtered: 4,
        dark: 1,
        drop_all: true,
        tarpit: true,
        ..LabSpec::new(&lab_name("truth"))
    };
    // A lab left running (as after a crash) is replaced by the next `up`.
    Lab::up(&spec).expect("first up").keep();
    let lab = Lab::up(&spec).expect("second up");
    let truth = lab.truth().clone();

    lab.in_scanner(|| {
        let listeners: Vec<_> = live_ports(&truth, |h| &h.open);
        assert_all(&connect_all(&listeners, Duration::from_secs(2)), Outcome::Open, "listeners");
        assert_all(&connect_all(&closed_sample(&truth, 10), SILENCE), Outcome::Refused, "closed ports");
        let filtered = live_ports(&truth, |h| &h.filtered);
        assert_all(&connect_all(&filtered, SILENCE), Outcome::Silent, "filtered ports");
        let tarpit = special(&truth, HostKind::Tarpit, &[1, 7, 999, 31337, 65535]);
        assert_all(&connect_all(&tarpit, Duration::from_secs(2)), Outcome::Open, "tarpit");
        let drop_all = special(&truth, HostKind::DropAll, &[22, 80, 443]);
        assert_all(&connect_all(&drop_all, SILENCE), Outcome::Silent, "drop-all host");
        for (addr, outcome) in connect_all(&special(&truth, HostKind::Dark, &[22, 80]), SILENCE) {
            assert!(!matches!(outcome, Outcome::Open | Outcome::Refused), "dark {addr} answered: {outcome:?}");
        }
    })
    .expect("inside the scanner namespace");

    assert_eq!(lab_namespaces(&spec.name).len(), 3);
    lab.down().expect("down");
    assert_eq!(lab_namespaces(&spec.name), Vec::<String>::new(), "down leaves no namespace behind");
}

#[test]
fn greeting_listeners_send_their_banner() {
    if !lab::require() {
        return;
    }
    let lab = Lab::up(&LabSpec { hosts: 1, open: 4, filtered: 0, ..LabSpec::new(&lab_name("banner")) }).expect("up");
    let host = lab.truth().hosts[0].clone();
    assert_eq!(host.greeting.len(), 2, "every other open port greets");
    lab.in_scanner(|| {
        for port in &host.open {
            let addr = SocketAddrV4::new(host.addr, *port);
            let mut conn = TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(2)).expect("connect");
            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut said = String::new();
            conn.read_to_string(&mut said).expect("the listener closes");
            let expected = if host.greeting.contains(port) { banner(addr) } else { String::new() };
            assert_eq!(said, expected, "{addr}");
        }
    })
    .expect("inside the scanner namespace");
}

#[test]
fn dropping_a_lab_tears_it_down() {
    if !lab::require() {
        return;
    }
    let spec = LabSpec::new(&lab_name("dropped"));
    let lab = Lab::up(&spec).expect("up");
    let state = lab.truth_path();
    assert!(state.exists());
    drop(lab);
    assert_eq!(lab_namespaces(&spec.name), Vec::<String>::new());
    assert!(!state.exists(), "the state directory is removed too");
}

#[test]
fn the_cli_brings_a_lab_up_and_down() {
    if !lab::require() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let truth_file = dir.path().join("truth.json");
    let cli = env!("CARGO_BIN_EXE_vantage-lab");
    let name = lab_name("cli");
    let up = run(
        Command::new(cli)
            .args(["up", "--name", &name, "--hosts", "3", "--open", "2", "--filtered", "1", "--ports", "100-200"])
            .args(["--dark", "1", "--drop-all", "--seed", "5", "--truth"])
            .arg(&truth_file),
        Duration::from_secs(60),
    );
    assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
    assert_eq!(String::from_utf8_lossy(&up.stdout).trim(), "198.18.1.0-198.18.1.4");
    let truth = Truth::load(&truth_file).expect("truth file");
    assert_eq!(truth.ports, PortRange::new(100, 200));
    assert_eq!(lab_namespaces(&name).len(), 3, "the lab outlives `up`");

    let down = run(Command::new(cli).args(["down", "--name", &name]), Duration::from_secs(60));
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    assert_eq!(lab_namespaces(&name), Vec::<String>::new());
}

/// Open ports in a `vantage ... --format json` document.
fn reported_open(doc: &Value) -> BTreeSet<SocketAddrV4> {
    let observations = doc["observations"].as_array().expect("observations array");
    let open = observations.iter().filter(|o| o["state"] == "open");
    open.map(|o| {
        let addr: Ipv4Addr = o["addr"].as_str().and_then(|a| a.parse().ok()).expect("an IPv4 addr");
        SocketAddrV4::new(addr, o["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port"))
    })
    .collect()
}

/// Scans a lab with Vantage in `mode` and checks the result against the
/// truth: every open port and nothing else, and the tarpit host reported
/// once as answering on all ports instead of as a thousand services.
fn vantage_scan_is_exact(mode: &str) {
    if !lab::require() {
        return;
    }
    let spec = LabSpec {
        hosts: 8,
        open: 8,
        filtered: 6,
        dark: 2,
        drop_all: true,
        tarpit: true,
        seed: 42,
        ..LabSpec::new(&lab_name(&format!("v{mode}")))
    };
    let lab = Lab::up(&spec).expect("up");
    let data = tempfile::tempdir().unwrap();
    let scope = data.path().join("scope.txt");
    std::fs::write(&scope, format!("{}\n", lab.truth().network)).unwrap();
    let out = run(
        lab.scanner_command(bins::vantage()).arg("--data-dir").arg(data.path()).arg("--scope").arg(&scope).args([
            "scan",
            "--mode",
            mode,
            "--targets",
            &lab.truth().targets(),
            "--ports",
            &lab.truth().ports.to_string(),
            "--format",
            "json",
            "--timeout",
            "300ms",
        ]),
        SCAN_LIMIT,
    );
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let tarpit = lab.truth().hosts.iter().find(|h| h.kind == HostKind::Tarpit).expect("a tarpit host").addr;
    let answers_all: Vec<&Value> =
        doc["observations"].as_array().unwrap().iter().filter(|o| o["state"] == "answers-all").collect();
    assert_eq!(answers_all.len(), 1, "{answers_all:?}");
    assert_eq!(answers_all[0]["addr"], tarpit.to_string());
    let want: BTreeSet<SocketAddrV4> = lab.truth().expected_open().into_iter().filter(|a| *a.ip() != tarpit).collect();
    let got = reported_open(&doc);
    let missed: Vec<_> = want.difference(&got).collect();
    let false_open: Vec<_> = got.difference(&want).collect();
    assert!(missed.is_empty() && false_open.is_empty(), "missed {missed:?}, false open {false_open:?}");
    assert_eq!(doc["scan"]["probes_done"].as_u64(), Some(lab.truth().probes()));
}

#[test]
fn vantage_connect_scan_is_exact() {
    vantage_scan_is_exact("connect");
}

#[test]
fn vantage_syn_scan_is_exact() {
    vantage_scan_is_exact("syn");
}
