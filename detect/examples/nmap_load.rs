//! Loads an nmap-service-probes file and prints the load report, the time
//! and memory it took, and the NULL probe's match throughput on a banner.
//!
//! `cargo run --release -p vantage-detect --example nmap_load [PATH]`
//! (default `/usr/share/nmap/nmap-service-probes`).

use std::time::{Duration, Instant};

use vantage_detect::nmap::ProbeDb;

/// Resident and peak resident memory of this process, in KiB (Linux).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/usr/share/nmap/nmap-service-probes".into());
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let (rss_before, _) = memory_kib();
    let start = Instant::now();
    let (db, report) = ProbeDb::parse(&text);
    let load = start.elapsed();
    let (rss_after, peak) = memory_kib();
    println!("{path}: {report}");
    for e in report.patterns_failed.iter().chain(&report.errors).chain(&report.warnings) {
        println!("  {e}");
    }
    println!(
        "parse + compile: {:.3} s; resident memory {} KiB -> {} KiB (+{} KiB), peak {} KiB",
        load.as_secs_f64(),
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before),
        peak
    );

    let Some(null) = db.null_probe() else {
        println!("no NULL probe");
        return;
    };
    let banners: [(&str, &[u8]); 3] = [
        ("OpenSSH banner (early hit)", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
        ("Postfix SMTP banner", b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n"),
        ("unknown banner (no match, every NULL line tried)", b"HELLO from a service nobody knows v0.1\r\n"),
    ];
    println!("NULL probe: {} match lines", null.rules().len());
    for (label, banner) in banners {
        let found = db.match_response(null, banner);
        let mut n = 0u32;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..10 {
                std::hint::black_box(db.match_response(null, std::hint::black_box(banner)));
            }
            n += 10;
        }
        let per = start.elapsed() / n;
        println!(
            "  {label}: {:?} line {:?}; {:.1} µs per response, {:.0} responses/s",
            found.as_ref().map(|m| (&m.service, &m.product, &m.version)),
            found.as_ref().map(|m| m.line),
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64()
        );
    }
}
