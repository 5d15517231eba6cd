//! Service and version detection against real Debian daemons in the service
//! lab (needs root and the packages of `tests/lab-services.packages`).
//!
//! Every daemon runs on its standard port and on an odd one; Vantage must
//! name the service on both from what the daemon says, and the product and
//! version must agree with what the installed package reports about itself
//! (`dpkg-query`), never with a literal copied from a run.
//!
//! Without root or the packages, the tests skip (and fail when `CI=true`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::bins;
use vantage_tests::lab::services;
use vantage_tests::lab::{LabService, Proto, ServiceLab};
use vantage_tests::proc::run;

const SCAN_LIMIT: Duration = Duration::from_secs(120);
const NMAP_PROBES: &str = "/usr/share/nmap/nmap-service-probes";

/// Daemons that state no version to an anonymous client: PostgreSQL
/// before authentication, snmpd's sysDescr is the kernel's, slapd's root
/// DSE, Dovecot's greeting, inetutils telnetd, rsync (protocol only), git.
const NO_VERSION: &[&str] = &["postgresql", "snmpd", "slapd", "dovecot", "telnetd", "rsync", "git"];
/// Daemons whose product nobody can name from the wire: inetutils telnetd
/// only negotiates options; rsync and git-daemon name their protocol only.
const NO_PRODUCT: &[&str] = &["telnetd", "rsync", "git"];
/// Ports Vantage has no probe for: git-daemon answers nothing it does not
/// understand; TFTP answers from another port (open|filtered, like nmap).
const UNPROBED: &[&str] = &["git", "tftpd"];

fn lab_name(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

/// Runs a Vantage scan of `ports` of the services host from the scanner
/// namespace; returns the observations by (proto, port).
fn scan(lab: &ServiceLab, data: &Path, mode: &str, ports: &[u16], extra: &[&str]) -> BTreeMap<(String, u16), Value> {
    let scope = data.join("scope.txt");
    std::fs::write(&scope, format!("{}\n", lab.addr())).unwrap();
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut cmd = lab.scanner_command(bins::vantage());
    cmd.arg("--data-dir").arg(data).arg("--scope").arg(&scope).args(extra);
    cmd.args(["scan", "--mode", mode, "--targets", &lab.addr().to_string(), "--ports", &ports.join(",")]);
    let out = run(cmd.args(["--format", "json"]), SCAN_LIMIT);
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    doc["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| ((o["proto"].as_str().unwrap().to_string(), o["port"].as_u64().unwrap() as u16), o.clone()))
        .collect()
}

fn ports(lab: &ServiceLab, proto: Proto) -> Vec<u16> {
    lab.services().iter().filter(|s| s.proto == proto).map(|s| s.port).collect()
}

/// Checks one lab service against what Vantage reported; returns the problems.
fn check(s: &LabService, seen: &BTreeMap<(String, u16), Value>) -> Vec<String> {
    let proto = if s.proto == Proto::Tcp { "tcp" } else { "udp" };
    let at = format!("{} {}/{proto} ({})", s.daemon, s.port, if s.odd { "odd port" } else { "standard port" });
    let Some(o) = seen.get(&(proto.to_string(), s.port)) else { return vec![format!("{at}: not reported")] };
    if o["state"] != "open" {
        return vec![format!("{at}: state {}", o["state"])];
    }
    let f = &o["service"];
    let mut problems = Vec::new();
    if f["service"] != s.service.as_str() {
        problems.push(format!("{at}: service {} (want {})", f["service"], s.service));
    }
    if s.tls != f["tls"].is_object() {
        problems.push(format!("{at}: TLS facts {} (want TLS: {})", f["tls"], s.tls));
    }
    let product = f["product"].as_str().unwrap_or("").to_lowercase();
    if !NO_PRODUCT.contains(&s.daemon.as_str()) && !product.contains(&s.product.to_lowercase()) {
        problems.push(format!("{at}: product {:?} (want {:?})", f["product"], s.product));
    }
    let want = s.upstream_version();
    if !NO_VERSION.contains(&s.daemon.as_str()) && f["version"].as_str() != Some(want) {
        problems.push(format!("{at}: version {:?} (want {want:?} from {} {})", f["version"], s.package, s.version));
    }
    if !f["cpe"].as_array().is_none_or(|c| c.iter().all(|c| c.as_str().is_some_and(|c| c.starts_with("cpe:2.3:")))) {
        problems.push(format!("{at}: CPE {}", f["cpe"]));
    }
    problems
}

fn assert_all(lab: &ServiceLab, seen: &BTreeMap<(String, u16), Value>, proto: Proto) {
    let problems: Vec<String> = lab
        .services()
        .iter()
        .filter(|s| s.proto == proto && !UNPROBED.contains(&s.daemon.as_str()))
        .flat_map(|s| check(s, seen))
        .collect();
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn built_in_detection_names_every_lab_service() {
    if !services::require() {
        return;
    }
    let lab = ServiceLab::up(&lab_name("det")).expect("service lab up");
    let data = tempfile::tempdir().unwrap();
    let tcp = scan(&lab, data.path(), "connect", &ports(&lab, Proto::Tcp), &[]);
    assert_all(&lab, &tcp, Proto::Tcp);
    // What a review leans on, beyond names: anonymous access and TLS facts.
    let redis = &tcp[&("tcp".to_string(), 6379)]["service"];
    assert_eq!((redis["category"].as_str(), redis["access"].as_str()), (Some("database"), Some("open")));
    let https = &tcp[&("tcp".to_string(), 443)]["service"]["tls"];
    assert_eq!(https["self_signed"], true, "{https}");
    assert!(https["not_after"].as_i64() > https["not_before"].as_i64());
    assert_eq!(tcp[&("tcp".to_string(), 5432)]["service"]["access"], "auth-required");

    let udp = scan(&lab, data.path(), "udp", &ports(&lab, Proto::Udp), &[]);
    assert_all(&lab, &udp, Proto::Udp);
    lab.down().expect("teardown");
}

#[test]
fn nmap_probes_file_adds_without_taking_away() {
    if !services::require() {
        return;
    }
    assert!(Path::new(NMAP_PROBES).exists(), "{NMAP_PROBES} is missing: install nmap");
    let lab = ServiceLab::up(&lab_name("detn")).expect("service lab up");
    let data = tempfile::tempdir().unwrap();
    let tcp = scan(&lab, data.path(), "connect", &ports(&lab, Proto::Tcp), &["--service-probes", NMAP_PROBES]);
    assert_all(&lab, &tcp, Proto::Tcp);
    lab.down().expect("teardown");
}
