//! The service lab (real Debian daemons on a lab host, needs root and the
//! packages of `tests/lab-services.packages`): every listed port answers
//! from the scanner namespace, the daemons speak with the versions their
//! packages say, nothing else listens, and teardown leaves nothing behind.
//!
//! Without root or the packages, the tests skip (and fail when `CI=true`):
//! see `lab::services::require`.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use vantage_tests::lab::services::{self, ServicesReport, udp_exchange};
use vantage_tests::lab::{LabService, LabSpec, Proto, ServiceLab, installed_version, net, state_dir};
use vantage_tests::proc::run;

const TIMEOUT: Duration = Duration::from_secs(3);

/// A lab name of this test process (`<base>-<pid>`).
fn lab_name(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

/// What a daemon that speaks first must say, if it does: its greeting starts
/// with `prefix` and names `version` (empty: no version in the greeting).
fn greeting(s: &LabService) -> Option<(&'static [u8], String)> {
    let v = s.upstream_version().to_string();
    match (s.service.as_str(), s.tls) {
        ("ssh", _) => Some((b"SSH-2.0-OpenSSH_", v)),
        ("ftp", _) => Some((b"220 (vsFTPd ", v)),
        ("smtp", _) => Some((b"220 mail.vantage-lab.invalid ESMTP Exim ", v)),
        ("imap", false) => Some((b"* OK ", String::new())),
        ("pop3", false) => Some((b"+OK ", String::new())),
        // A length, sequence 0, protocol 10, then the server version.
        ("mysql", _) => Some((b"", v)),
        // Telnet option negotiation (IAC ...).
        ("telnet", _) => Some((b"\xff", String::new())),
        _ => None,
    }
}

/// Reads until `want` bytes came or the peer stopped talking.
fn read_some(conn: &mut TcpStream, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < want && Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks one port from the calling thread's namespace.
fn check(s: &LabService) -> Result<(), String> {
    match s.proto {
        Proto::Tcp => {
            let mut conn =
                TcpStream::connect_timeout(&SocketAddr::V4(s.socket_addr()), TIMEOUT).map_err(|e| e.to_string())?;
            let Some((prefix, version)) = greeting(s) else { return Ok(()) };
            conn.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
            let said = read_some(&mut conn, 64);
            let ok = said.starts_with(prefix) && contains(&said, version.as_bytes()) && !said.is_empty();
            ok.then_some(()).ok_or_else(|| format!("greeting {:?}", String::from_utf8_lossy(&said)))
        }
        Proto::Udp => {
            // UDP may lose a datagram: a few tries.
            let mut last = String::new();
            for _ in 0..3 {
                match udp_exchange(s.socket_addr(), &s.service, TIMEOUT) {
                    Ok(answer) => return udp_content(s, &answer),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// What the valid answer of a UDP service must also hold.
fn udp_content(s: &LabService, answer: &[u8]) -> Result<(), String> {
    let want: Vec<u8> = match s.service.as_str() {
        // sysDescr.0 is the kernel's uname.
        "snmp" => b"Linux".to_vec(),
        "memcached" => format!("STAT version {}", s.upstream_version()).into_bytes(),
        // The A record of www.vantage-lab.invalid.
        "domain" => s.addr.octets().to_vec(),
        "tftp" => b"Vantage service lab".to_vec(),
        _ => Vec::new(),
    };
    contains(answer, &want).then_some(()).ok_or_else(|| {
        format!("answer {:?} lacks {:?}", String::from_utf8_lossy(answer), String::from_utf8_lossy(&want))
    })
}

/// Every listening TCP and unconnected UDP socket in namespace `ns`, as `tcp 198.18.1.1:22`.
fn listening(ns: &str) -> BTreeSet<String> {
    let out = run(Command::new("ip").args(["netns", "exec", ns, "ss", "-Hlntu"]), TIMEOUT);
    assert!(out.status.success(), "ss: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 4).then(|| format!("{} {}", f[0], f[4]))
        })
        .collect()
}

#[test]
fn every_service_answers_with_its_packaged_version() {
    if !services::require() {
        return;
    }
    let name = lab_name("svc");
    let started = Instant::now();
    let lab = ServiceLab::up(&name).expect("up");
    eprintln!("service lab up in {:.1} s ({} ports)", started.elapsed().as_secs_f64(), lab.services().len());
    let all = lab.services().to_vec();

    for s in &all {
        let version = installed_version(&s.package).expect("installed");
        assert!(!version.is_empty(), "{}", s.package);
        assert_eq!(version, s.version, "{}", s.package);
    }
    for daemon in services::daemon_names() {
        let ports: Vec<_> = all.iter().filter(|s| s.daemon == daemon).collect();
        assert!(ports.iter().any(|s| !s.odd) && ports.iter().any(|s| s.odd), "{daemon}: standard and odd ports");
    }

    // Each daemon binds its standard ports on the lab address, and nothing else listens.
    let want: BTreeSet<String> = all.iter().map(|s| format!("{} {}:{}", s.proto, s.addr, s.listens)).collect();
    assert_eq!(listening(&lab.spec().ns_targets()), want);

    let failures: Vec<String> = lab
        .in_scanner(|| {
            std::thread::scope(|scope| {
                let threads: Vec<_> = all.iter().map(|s| (s, scope.spawn(move || check(s)))).collect();
                threads
                    .into_iter()
                    .filter_map(|(s, t)| {
                        let result = t.join().expect("probe thread");
                        result.err().map(|e| format!("{}/{} ({}): {e}", s.proto, s.port, s.daemon))
                    })
                    .collect()
            })
        })
        .expect("inside the scanner namespace");
    assert!(failures.is_empty(), "{} of {} ports failed:\n{}", failures.len(), all.len(), failures.join("\n"));

    let spec = lab.spec().clone();
    let stopped = Instant::now();
    lab.down().expect("down");
    eprintln!("service lab down in {:.1} s", stopped.elapsed().as_secs_f64());
    assert_eq!(net::existing(&spec).expect("ip netns list"), Vec::<String>::new());
    assert!(!state_dir(&name).exists(), "the state directory is removed");
}

#[test]
fn the_cli_brings_a_service_lab_up_and_down() {
    if !services::require() {
        return;
    }
    let cli = env!("CARGO_BIN_EXE_vantage-lab");
    let name = lab_name("svccli");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("services.json");
    let up = run(
        Command::new(cli).args(["services", "up", "--name", &name, "--only", "redis,snmpd", "--json"]).arg(&json),
        Duration::from_secs(90),
    );
    assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
    let printed: ServicesReport = serde_json::from_slice(&up.stdout).expect("stdout is the JSON report");
    let saved: ServicesReport = serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("the --json file");
    assert_eq!(printed, saved);
    let ports: BTreeSet<(Proto, u16)> = printed.services.iter().map(|s| (s.proto, s.port)).collect();
    let want = BTreeSet::from([(Proto::Tcp, 6379), (Proto::Tcp, 16379), (Proto::Udp, 161), (Proto::Udp, 1161)]);
    assert_eq!(ports, want);
    assert!(printed.services.iter().all(|s| !s.version.is_empty() && s.addr == printed.addr));
    let spec = LabSpec::new(&name);
    assert_eq!(printed.scanner_ns, spec.ns_scanner());
    assert_eq!(net::existing(&spec).unwrap().len(), 3, "the lab outlives `up`");

    let down = run(Command::new(cli).args(["services", "down", "--name", &name]), Duration::from_secs(60));
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    assert_eq!(net::existing(&spec).unwrap(), Vec::<String>::new());
}
