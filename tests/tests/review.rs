//! The monthly review end to end on loopback: scans in two periods, the
//! periods' baselines, and the diff between them (real binary, real store).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::bins;
use vantage_tests::proc::run;

const LIMIT: Duration = Duration::from_secs(120);

fn vantage(data: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new(bins::vantage()).arg("--data-dir").arg(data).args(args), LIMIT)
}

fn json(data: &Path, args: &[&str]) -> Value {
    let out = vantage(data, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn listen(n: usize) -> Vec<TcpListener> {
    (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect()
}

fn port(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

fn scan(data: &Path, ports: &[u16], period: &str) {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let args =
        ["scan", "--targets", "127.0.0.1", "--ports", &list.join(","), "--period", period, "--detect-timeout", "1s"];
    let out = vantage(data, &args);
    assert!(out.status.success(), "scan failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// (kind, port) of each change in a diff document whose status is `status`
/// (every change must have it).
fn changes_with(doc: &Value, status: &str) -> BTreeSet<(String, u16)> {
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["status"], status, "{c}");
            assert_eq!(c["confirmed"], status == "confirmed", "{c}");
            (c["kind"].as_str().unwrap().to_string(), c["port"].as_u64().unwrap() as u16)
        })
        .collect()
}

/// The changes of a diff whose candidates were all confirmed by the re-probe.
fn changes(doc: &Value) -> BTreeSet<(String, u16)> {
    changes_with(doc, "confirmed")
}

#[test]
fn diff_between_two_periods_and_baseline_history() {
    let data = tempfile::tempdir().unwrap();
    let stay = listen(2);
    let go = listen(2);
    let late = listen(2);
    let all: Vec<u16> = stay.iter().chain(&go).chain(&late).map(port).collect();
    let (go_ports, late_ports): (Vec<u16>, Vec<u16>) = (go.iter().map(port).collect(), late.iter().map(port).collect());

    // October: `stay` and `go` listen; `late` not yet.
    drop(late);
    scan(data.path(), &all, "2026-10");
    // November: `go` is gone, `late` has come.
    drop(go);
    let late: Vec<TcpListener> = late_ports.iter().map(|p| TcpListener::bind(("127.0.0.1", *p)).unwrap()).collect();
    scan(data.path(), &all, "2026-11");

    let doc = json(data.path(), &["diff", "2026-10", "2026-11", "--format", "json"]);
    let want: BTreeSet<(String, u16)> = go_ports
        .iter()
        .map(|p| ("closed".to_string(), *p))
        .chain(late_ports.iter().map(|p| ("new".to_string(), *p)))
        .collect();
    assert_eq!(changes(&doc), want);
    assert_eq!(doc["from"]["period"], "2026-10");
    assert_eq!(doc["to"]["entries"], 4);

    // Ignore rules: one in force hides a change; an expired one hides nothing and says so.
    let rules = data.path().join("ignore.toml");
    std::fs::write(
        &rules,
        format!(
            "[[ignore]]\ntarget = \"127.0.0.1\"\nports = \"{}\"\nkinds = [\"closed\"]\nreason = \"decommissioned\"\nexpires = \"2999-12-31\"\n\n\
             [[ignore]]\ntarget = \"127.0.0.1\"\nports = \"{}\"\nreason = \"old noise\"\nexpires = \"2020-01-31\"\n",
            go_ports[0], late_ports[0]
        ),
    )
    .unwrap();
    let out =
        vantage(data.path(), &["diff", "2026-10", "2026-11", "--format", "json", "--ignore", rules.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignore rule 2 (\"old noise\") expired on 2020-01-31"));
    let filtered: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rest = want.clone();
    rest.remove(&("closed".to_string(), go_ports[0]));
    assert_eq!(changes(&filtered), rest);
    assert_eq!(filtered["ignored"][0]["port"], go_ports[0]);
    assert_eq!(filtered["ignored"][0]["ignored_by"]["reason"], "decommissioned");

    // The first review has nothing before it: everything is new.
    let first = json(data.path(), &["diff", "2026-09", "2026-10", "--format", "json"]);
    assert!(first["from"].is_null());
    let first = changes_with(&first, "not-reprobed");
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|(kind, _)| kind == "new"));

    // A candidate the re-probe does not see again is no change: `go` comes back.
    let back: Vec<TcpListener> = go_ports.iter().map(|p| TcpListener::bind(("127.0.0.1", *p)).unwrap()).collect();
    let doc = json(data.path(), &["diff", "2026-10", "2026-11", "--format", "json"]);
    let contradicted: BTreeSet<u16> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "contradicted")
        .map(|c| c["port"].as_u64().unwrap() as u16)
        .collect();
    assert_eq!(contradicted, go_ports.iter().copied().collect());
    drop(back);

    // Re-running November replaces its baseline on purpose and keeps the old one.
    drop(late);
    scan(data.path(), &all, "2026-11");
    let list = json(data.path(), &["baseline", "list", "--format", "json"]);
    let november: Vec<&Value> = list.as_array().unwrap().iter().filter(|b| b["period"] == "2026-11").collect();
    assert_eq!(november.len(), 2, "{list}");
    assert_eq!((november[0]["revision"].as_u64(), november[0]["current"].as_bool()), (Some(1), Some(false)));
    assert_eq!((november[1]["revision"].as_u64(), november[1]["current"].as_bool()), (Some(2), Some(true)));
    assert_eq!(november[1]["entries"], 2);
    drop(stay);
}

#[test]
fn bad_periods_are_usage_errors() {
    let data = tempfile::tempdir().unwrap();
    for args in [&["diff", "2026-13", "2026-11"][..], &["diff", "2026-11", "2026-10"], &["diff", "2026-10", "2026-11"]]
    {
        let out = vantage(data.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    let out = vantage(data.path(), &["scan", "--targets", "127.0.0.1", "--ports", "1", "--period", "November"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM"));
}

#[test]
fn an_imported_nmap_report_is_the_first_baseline() {
    let data = tempfile::tempdir().unwrap();
    let kept = listen(1);
    let (kept_port, gone_port) = (port(&kept[0]), port(&listen(1)[0]));
    // September, as an earlier nmap run saw it: both ports open, one with a service.
    let xml = format!(
        r#"<?xml version="1.0"?><nmaprun scanner="nmap"><host endtime="1788000000">
<address addr="127.0.0.1" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="{kept_port}"><state state="open"/></port>
<port protocol="tcp" portid="{gone_port}"><state state="open"/><service name="ssh" product="OpenSSH" version="9.2p1" method="probed"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe></service></port>
</ports></host></nmaprun>"#
    );
    let report = data.path().join("september.xml");
    std::fs::write(&report, xml).unwrap();
    let out = vantage(data.path(), &["import", "nmap-xml", report.to_str().unwrap(), "--period", "2026-09"]);
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 2 open ports"));

    scan(data.path(), &[kept_port, gone_port], "2026-10");
    let doc = json(data.path(), &["diff", "2026-09", "2026-10", "--format", "json"]);
    assert_eq!(changes(&doc), BTreeSet::from([("closed".to_string(), gone_port)]));
    assert_eq!(doc["from"]["regions"][0], "nmap-import");

    // A file that is not an nmap report is refused, and nothing is stored.
    std::fs::write(&report, "<html><body>not nmap</body></html>").unwrap();
    let out = vantage(data.path(), &["import", "nmap-xml", report.to_str().unwrap(), "--period", "2026-08"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an nmap XML report"));
    let list = json(data.path(), &["baseline", "list", "--format", "json"]);
    assert!(list.as_array().unwrap().iter().all(|b| b["period"] != "2026-08"));
    drop(kept);
}
