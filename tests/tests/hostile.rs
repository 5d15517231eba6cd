//! A whole scan against hostile services on loopback: endless bytes, a
//! slow drip, garbage, a TLS alert for every hello, and silence. Detection
//! must cost each port no more than `--detect-timeout`, keep at most the
//! banner cap of what it read, and the scan must finish and report every
//! port: no stall, no crash.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vantage_tests::bins;
use vantage_tests::proc::run;

/// Copies of each hostile service: enough to run many conversations at once.
const COPIES: usize = 12;
const BANNER_BYTES: usize = 200;

#[derive(Clone, Copy, Debug)]
enum Hostile {
    Endless,
    Drip,
    Garbage,
    TlsAlert,
    Silent,
}

fn serve(kind: Hostile) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().take(64) {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || handle(conn, kind));
        }
    });
    port
}

fn handle(mut s: TcpStream, kind: Hostile) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut buf = [0u8; 512];
    match kind {
        Hostile::Endless => {
            let block = [b'A'; 16 * 1024];
            for _ in 0..100_000 {
                if s.write_all(&block).is_err() {
                    return;
                }
            }
        }
        Hostile::Drip => {
            for _ in 0..2_000 {
                if s.write_all(b".").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Hostile::Garbage => {
            let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
            let _ = s.write_all(&garbage);
            let _ = s.read(&mut buf);
        }
        Hostile::TlsAlert => {
            // Whatever arrives, a fatal handshake_failure alert, then close.
            if s.read(&mut buf).is_ok() {
                let _ = s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
            }
        }
        Hostile::Silent => {
            let _ = s.read(&mut buf);
        }
    }
}

#[test]
fn hostile_services_cost_at_most_the_detection_cap() {
    let kinds = [Hostile::Endless, Hostile::Drip, Hostile::Garbage, Hostile::TlsAlert, Hostile::Silent];
    let ports: Vec<(u16, Hostile)> = kinds.iter().flat_map(|k| (0..COPIES).map(move |_| (serve(*k), *k))).collect();
    let list: Vec<String> = ports.iter().map(|(p, _)| p.to_string()).collect();
    let data = tempfile::tempdir().unwrap();
    let vantage = bins::vantage();
    let started = Instant::now();
    let out = run(
        Command::new(vantage).arg("--data-dir").arg(data.path()).args([
            "scan",
            "--targets",
            "127.0.0.1",
            "--ports",
            &list.join(","),
            "--detect-timeout",
            "1s",
            "--banner-timeout",
            "500ms",
            "--banner-bytes",
            &BANNER_BYTES.to_string(),
            "--format",
            "json",
        ]),
        Duration::from_secs(120),
    );
    let elapsed = started.elapsed();
    eprintln!("scan of {} hostile ports took {elapsed:?}", ports.len());
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let observations = doc["observations"].as_array().unwrap();
    assert_eq!(observations.len(), ports.len(), "every hostile port is reported");
    for o in observations {
        let port = o["port"].as_u64().unwrap() as u16;
        let kind = ports.iter().find(|(p, _)| *p == port).map(|(_, k)| *k).unwrap();
        assert_eq!(o["state"], "open", "{kind:?} on {port}");
        let service = o["service"]["service"].as_str().unwrap_or_else(|| panic!("{kind:?} on {port}: no service"));
        // Escaped text of at most BANNER_BYTES raw bytes (an escape is at most 4 characters).
        assert!(o["banner"].as_str().unwrap().len() <= 4 * BANNER_BYTES, "{kind:?} banner too long");
        assert!(!["ssh", "http", "redis", "mysql"].contains(&service), "{kind:?} on {port} taken for {service}");
    }
    // 60 ports, all at once, each capped at 1 s of conversation after a
    // 0.5 s greeting: far below this bound unless something stalls.
    assert!(elapsed < Duration::from_secs(30), "scan took {elapsed:?}");
}
