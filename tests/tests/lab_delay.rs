//! The lab's delay line (needs root and /dev/net/tun): the targets' answers
//! go through it, so a connect from a scanner succeeds, takes at least the
//! configured delay (a lower bound only: it proves the path goes through the
//! line), and the line counts what it forwarded. Stopping it removes the path.
//!
//! Without root, the test skips (and fails when `CI=true`): see `lab::require`.

use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use vantage_tests::lab::delay::{DELAY_IF, median_connect};
use vantage_tests::lab::{self, DelayLine, DelayStats, HostKind, Lab, LabSpec, PortRange, net};

/// Far above a veth round trip (tens of microseconds).
const DELAY: Duration = Duration::from_millis(80);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the counters may take to show the packets (they are written every 200 ms).
const STATS_LIMIT: Duration = Duration::from_secs(5);

fn device_exists(ns: &str) -> bool {
    net::run(Command::new("ip").args(["-n", ns, "link", "show", DELAY_IF])).is_ok()
}

/// Polls the line's counters until `done` holds, for at most [`STATS_LIMIT`].
fn stats_until(line: &DelayLine, done: impl Fn(&DelayStats) -> bool) -> DelayStats {
    let deadline = Instant::now() + STATS_LIMIT;
    loop {
        let stats = line.stats().expect("the line's counters");
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connects_through_the_delay_line_take_the_delay() {
    if !lab::require() {
        return;
    }
    let spec = LabSpec {
        hosts: 1,
        open: 2,
        filtered: 0,
        ports: PortRange::new(1, 100),
        ..LabSpec::new(&format!("delay-{}", std::process::id()))
    };
    let lab = Lab::up(&spec).expect("lab up");
    let host = lab.truth().of_kind(HostKind::Live).next().expect("a live host").clone();
    let open = SocketAddrV4::new(host.addr, *host.open.first().expect("an open port"));
    let closed_port = (1..=100).find(|p| !host.open.contains(p)).expect("a closed port");
    let closed = SocketAddrV4::new(host.addr, closed_port);

    let line = DelayLine::start(&spec, DELAY).expect("the delay line starts");
    assert!(device_exists(&spec.ns_targets()), "{DELAY_IF} exists while the line runs");

    let took = median_connect(&spec.ns_scanner(), open, 3, CONNECT_TIMEOUT).expect("connects through the line");
    assert!(took >= DELAY, "a connect to {open} took {took:?}, less than the line's {DELAY:?}: not through the line");

    // A closed port's reset comes back through the line too.
    let (refused, waited) = lab
        .in_scanner(|| {
            let started = Instant::now();
            let result = TcpStream::connect_timeout(&SocketAddr::V4(closed), CONNECT_TIMEOUT);
            (result.err().map(|e| e.kind()), started.elapsed())
        })
        .expect("scanner thread");
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused), "{closed} is closed");
    assert!(waited >= DELAY, "the reset from {closed} came after {waited:?}, less than {DELAY:?}");

    // 3 SYN-ACKs and a RST at least (plus whatever else the targets sent).
    let stats = stats_until(&line, |s| s.forwarded >= 4);
    assert!(stats.forwarded >= 4, "the line forwarded too little: {stats:?}");
    assert!(stats.bytes >= 4 * 40, "at least an IPv4 and a TCP header each: {stats:?}");
    assert_eq!((stats.dropped, stats.send_errors), (0, 0), "{stats:?}");

    let last = line.stop().expect("the line stops and removes its path");
    assert!(last.forwarded >= stats.forwarded, "final counters {last:?} after {stats:?}");
    assert!(!device_exists(&spec.ns_targets()), "{DELAY_IF} is gone once the line stopped");
    let direct = lab
        .in_scanner(|| TcpStream::connect_timeout(&SocketAddr::V4(open), CONNECT_TIMEOUT).map(drop))
        .expect("scanner thread");
    assert!(direct.is_ok(), "without the line the targets answer directly: {direct:?}");
    lab.down().expect("lab down");
}

#[test]
fn lab_down_removes_a_running_delay_line() {
    if !lab::require() {
        return;
    }
    let spec =
        LabSpec { hosts: 1, open: 1, filtered: 0, ..LabSpec::new(&format!("delay-down-{}", std::process::id())) };
    let lab = Lab::up(&spec).expect("lab up");
    let line = DelayLine::start(&spec, DELAY).expect("the delay line starts");
    let pid = i32::try_from(line.pid().expect("a running line")).expect("PID");
    // As `vantage-lab down` after a crash: the line's process is killed by the teardown.
    std::mem::forget(line);
    Lab::teardown(&spec).expect("teardown");
    assert!(!net::alive(pid), "the delay line {pid} survived the teardown");
    assert!(net::existing(&spec).expect("ip netns list").is_empty(), "the namespaces are gone");
    drop(lab);
}
