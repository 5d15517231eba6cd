//! Findings end to end on loopback (real binary, real store): a review
//! judges a period's open ports against a register, re-running it changes
//! nothing, decisions are recorded, and later periods remediate and reopen.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use vantage_tests::review::{find, json, ok, port, scan, ssh_like, vantage};

/// A listener that greets like OpenSSH 9.2p1, or like vsftpd 3.0.3 while
/// `ftp` is set (at most 200 connections).
fn switching(ftp: Arc<AtomicBool>) -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.try_clone().unwrap();
    std::thread::spawn(move || {
        for mut s in server.incoming().take(200).flatten() {
            let greeting: &[u8] = if ftp.load(Ordering::SeqCst) {
                b"220 (vsFTPd 3.0.3)\r\n"
            } else {
                b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
            };
            let _ = s.write_all(greeting);
        }
    });
    l
}

#[test]
fn a_review_judges_remediates_and_reopens() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let ssh = ssh_like();
    let documented = TcpListener::bind("127.0.0.1:0").unwrap();
    let odd = TcpListener::bind("127.0.0.1:0").unwrap();
    let (ssh_port, doc_port, odd_port) = (port(&ssh), port(&documented), port(&odd));
    let ports = [ssh_port, doc_port, odd_port];
    let register = dir.join("register.toml");
    std::fs::write(
        &register,
        format!(
            "# The one port we mean to have.\n[[service]]\nhost = \"127.0.0.1\"\nport = {doc_port}\n\
             justification = \"Loopback test service\"\nowner = \"ops\"\nreview_by = \"2099-12-31\"\n"
        ),
    )
    .unwrap();

    scan(dir, &ports, "2026-10");
    // Vulnerability data, imported offline (the sample feeds written for the tests).
    let feeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/tests/data/vulns");
    let (nvd, kev) = (feeds.join("nvdcve-2.0-sample.json"), feeds.join("kev-sample.json"));
    let imported = ok(dir, &["vulns", "import", "--nvd", nvd.to_str().unwrap(), "--kev", kev.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported: 9 CVEs, 4 KEV entries"), "{imported:?}");
    let oct = json(dir, &["review", "2026-10", "--register", register.to_str().unwrap(), "--format", "json"]);
    let exploited = find(&oct, ssh_port, "known-exploited");
    assert_eq!(
        (exploited["severity"].as_str(), exploited["detail"]["cves"][0].as_str()),
        (Some("critical"), Some("CVE-2099-0001"))
    );
    assert_eq!(find(&oct, ssh_port, "vulnerable-version")["severity"], "high");
    let exposed = find(&oct, ssh_port, "exposed-service");
    assert_eq!(exposed["severity"], "critical");
    assert_eq!(exposed["detail"]["product"], "OpenSSH");
    let sentence = exposed["sentence"].as_str().unwrap();
    assert!(sentence.starts_with("OpenSSH 9.2p1 reachable from the internet on 127.0.0.1:"), "{sentence}");
    assert!(sentence.ends_with("(due within 24 hours)."), "{sentence}");
    assert_eq!(find(&oct, odd_port, "undocumented")["severity"], "medium");
    // Documented and as expected: low, owned, and listed only with --all.
    let all = json(dir, &["findings", "--all", "--format", "json"]);
    let doc = find(&all, doc_port, "documented");
    assert_eq!((doc["severity"].as_str(), doc["owner"].as_str()), (Some("low"), Some("ops")));

    // DefectDojo's generic import: one finding per identity, the required fields set.
    let dojo = json(dir, &["findings", "export", "--format", "defectdojo"]);
    let dojo = dojo["findings"].as_array().unwrap();
    assert_eq!(dojo.len(), all.as_array().unwrap().len());
    let exposed_id = format!("127.0.0.1:{ssh_port}/tcp exposed-service");
    let exported = dojo.iter().find(|f| f["unique_id_from_tool"] == exposed_id.as_str()).expect("exported");
    assert_eq!((exported["severity"].as_str(), exported["active"].as_bool()), (Some("Critical"), Some(true)));
    assert!(exported["title"].as_str().unwrap().contains("OpenSSH 9.2p1"), "{exported}");

    // The same review again: the same findings, nothing new.
    let again = json(dir, &["review", "2026-10", "--format", "json"]);
    assert_eq!(again, oct, "re-running a review must not change its findings");

    // A decision, recorded.
    let id = exposed["id"].as_str().unwrap();
    ok(dir, &["findings", "ack", id, "--by", "alice"]);
    let acked = json(dir, &["findings", "show", id, "--format", "json"]);
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["by"], "alice");

    // November: the odd port is closed. Its finding is remediated.
    drop(odd);
    scan(dir, &ports, "2026-11");
    ok(dir, &["review", "2026-11"]);
    let nov = json(dir, &["findings", "--all", "--format", "json"]);
    let closed = find(&nov, odd_port, "undocumented");
    assert_eq!(closed["status"], "remediated");
    assert_eq!(find(&nov, ssh_port, "exposed-service")["status"], "acknowledged");

    // December: it is back. The same finding, reopened, a repeat.
    let odd = TcpListener::bind(("127.0.0.1", odd_port)).unwrap();
    scan(dir, &ports, "2026-12");
    ok(dir, &["review", "2026-12"]);
    let dec = json(dir, &["findings", "--format", "json"]);
    let back = find(&dec, odd_port, "undocumented");
    assert_eq!((back["status"].as_str(), back["repeats"].as_u64()), (Some("reopened"), Some(1)));
    assert_eq!(back["id"], closed["id"]);

    // Accepting the risk takes it off the default list, until its date.
    let back_id = back["id"].as_str().unwrap();
    ok(dir, &["findings", "accept", back_id, "--reason", "lab port", "--until", "2099-01-01"]);
    let active = json(dir, &["findings", "--format", "json"]);
    assert!(active.as_array().unwrap().iter().all(|f| f["id"] != back_id), "{active:#}");
    let critical = json(dir, &["findings", "--severity", "critical", "--format", "json"]);
    assert!(critical.as_array().unwrap().iter().all(|f| f["severity"] == "critical"));
    drop((ssh, documented, odd));
}

#[test]
fn a_malformed_register_is_refused_with_its_line_and_nothing_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let register = data.path().join("register.toml");
    std::fs::write(
        &register,
        "[[service]]\nhost = \"127.0.0.1\"\nport = 22\nversions = \">=9.0, <\"\n\
         justification = \"x\"\nowner = \"ops\"\nreview_by = \"2099-12-31\"\n",
    )
    .unwrap();
    let out = vantage(data.path(), &["review", "2026-10", "--register", register.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("register.toml:4: service 1: versions"), "{err}");
    // No period was reviewed and no findings exist.
    let out = vantage(data.path(), &["findings", "--all", "--format", "json"]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), serde_json::json!([]));
}

#[test]
fn a_review_without_a_baseline_says_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let out = vantage(data.path(), &["review", "2026-10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no baseline for 2026-10") && err.contains("--period 2026-10"), "{err}");
}

#[test]
fn one_command_scans_the_month_and_reviews_it() {
    let data = tempfile::tempdir().unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = port(&open).to_string();
    let out = ok(data.path(), &["review", "2026-10", "--targets", "127.0.0.1", "--ports", &p, "--format", "json"]);
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(find(&findings, port(&open), "undocumented")["last_period"], "2026-10");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 open") && stderr.contains("1 new"), "{stderr}");
    // The scan belongs to the period: its baseline is there to diff against next month.
    let baselines = json(data.path(), &["baseline", "list", "--format", "json"]);
    assert_eq!(baselines[0]["period"], "2026-10");
    drop(open);
}

#[test]
fn a_closure_the_reprobe_contradicts_remediates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let flaky = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = port(&flaky);
    scan(dir, &[p], "2026-10");
    ok(dir, &["review", "2026-10"]);
    // Closed while November's scan ran, listening again by the time of the review.
    drop(flaky);
    scan(dir, &[p], "2026-11");
    let again = TcpListener::bind(("127.0.0.1", p)).unwrap();
    let out = ok(dir, &["review", "2026-11", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 findings that no longer apply stay as they were"), "{stderr}");
    let f = find(&json(dir, &["findings", "--all", "--format", "json"]), p, "undocumented").clone();
    assert_eq!(f["status"], "open", "{f:#}");
    // Without a re-probe nothing is confirmed either.
    drop(again);
    let out = ok(dir, &["review", "2026-11", "--no-confirm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not re-probing 1 ports whose findings would be remediated (--no-confirm)"), "{stderr}");
    assert_eq!(find(&json(dir, &["findings", "--all", "--format", "json"]), p, "undocumented")["status"], "open");
}

#[test]
fn a_service_change_remediates_only_once_a_reprobe_sees_it() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let ftp = Arc::new(AtomicBool::new(false));
    let listener = switching(ftp.clone());
    let p = port(&listener);
    // October: remote access, undocumented: a critical exposure.
    scan(dir, &[p], "2026-10");
    ok(dir, &["review", "2026-10"]);
    let exposed =
        |dir: &Path| find(&json(dir, &["findings", "--all", "--format", "json"]), p, "exposed-service").clone();
    assert_eq!(exposed(dir)["status"], "open");
    // November's scan meets an FTP server there, but SSH is back by the review.
    ftp.store(true, Ordering::SeqCst);
    scan(dir, &[p], "2026-11");
    ftp.store(false, Ordering::SeqCst);
    let out = ok(dir, &["review", "2026-11"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("re-probing 0 closed ports and 1 changed ones"), "{stderr}");
    assert!(stderr.contains("1 findings that no longer apply stay as they were"), "{stderr}");
    assert_eq!(exposed(dir)["status"], "open", "a change the re-probe did not see remediates nothing");
    // The FTP server is there to stay: the re-probe sees it, and the SSH exposure is remediated.
    ftp.store(true, Ordering::SeqCst);
    let out = ok(dir, &["review", "2026-11"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 remediated"), "{stderr}");
    assert_eq!(exposed(dir)["status"], "remediated");
    drop(listener);
}
