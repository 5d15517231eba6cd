//! Scan results for other tools, end to end on loopback: the nmap XML of a
//! real scan is valid against nmap's own DTD (xmllint) and read by ndiff,
//! nmap's report differ, which sees what changed between two scans; JSON
//! Lines carry one observation per line.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::proc::run;
use vantage_tests::review::{ok, vantage};
use vantage_tests::targets::LoopbackTargets;

const LIMIT: Duration = Duration::from_secs(60);
const DTD: &str = "/usr/share/nmap/nmap.dtd";
/// Short waits: half the listeners never speak.
const QUICK: [&str; 4] = ["--banner-timeout", "500ms", "--detect-timeout", "2s"];

fn results(data: &Path, scan: &str, format: &str) -> String {
    let out = ok(data, &["results", scan, "--all", "--format", format]);
    String::from_utf8(out.stdout).expect("UTF-8 results")
}

#[test]
fn nmap_xml_is_valid_and_ndiff_reads_what_changed() {
    let test = "nmap_xml_is_valid_and_ndiff_reads_what_changed";
    let (Some(xmllint), Some(ndiff)) = (
        vantage_tests::require_tool(test, &["xmllint"], "libxml2-utils"),
        vantage_tests::require_tool(test, &["ndiff"], "ndiff"),
    ) else {
        return;
    };
    assert!(Path::new(DTD).is_file(), "{DTD} comes with Debian's nmap package, which .ci/run installs");
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Scan 1 with both sets of listeners up; scan 2 of the same ports once
    // the second set is gone. (Agents report open ports only.)
    let (kept, gone) = (LoopbackTargets::start(2, 1), LoopbackTargets::start(2, 1));
    let spec = format!("{},{}", kept.port_spec(), gone.port_spec());
    let gone_ports = gone.open.clone();
    ok(data.path(), &[&["scan", "--targets", "127.0.0.1", "--ports", &spec][..], &QUICK].concat());
    drop(gone);
    ok(data.path(), &[&["scan", "--targets", "127.0.0.1", "--ports", &spec][..], &QUICK].concat());

    let before = dir.path().join("before.xml");
    let after = dir.path().join("after.xml");
    std::fs::write(&before, results(data.path(), "1", "nmap-xml")).unwrap();
    std::fs::write(&after, results(data.path(), "2", "nmap-xml")).unwrap();

    for file in [&before, &after] {
        let v = run(Command::new(&xmllint).args(["--noout", "--dtdvalid", DTD]).arg(file), LIMIT);
        assert!(
            v.status.success(),
            "{} is not valid against nmap's DTD:\n{}\n{}",
            file.display(),
            String::from_utf8_lossy(&v.stderr),
            std::fs::read_to_string(file).unwrap()
        );
    }

    // ndiff exits 0 for no differences, 1 for some, 2 when it cannot read a report.
    let same = run(Command::new(&ndiff).arg(&before).arg(&before), LIMIT);
    assert_eq!(same.status.code(), Some(0), "ndiff: {}", String::from_utf8_lossy(&same.stderr));
    let diff = run(Command::new(&ndiff).arg(&before).arg(&after), LIMIT);
    let text = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(1), "ndiff: {text}{}", String::from_utf8_lossy(&diff.stderr));
    // The second set's ports are gone; the first set's did not change.
    let lines: Vec<&str> = text.lines().collect();
    for port in &gone_ports {
        let gone_line =
            |l: &&str| l.strip_prefix(&format!("-{port}/tcp")).is_some_and(|r| r.trim_start().starts_with("open"));
        assert!(lines.iter().any(gone_line), "ndiff does not see {port} open before only:\n{text}");
    }
    for port in &kept.open {
        assert!(!text.contains(&format!("{port}/tcp")), "port {port} did not change:\n{text}");
    }
    assert!(std::fs::read_to_string(&before).unwrap().contains("<service name="), "services are in the report");
}

#[test]
fn json_lines_carry_one_observation_each() {
    let data = tempfile::tempdir().unwrap();
    let truth = LoopbackTargets::start(5, 2);
    ok(data.path(), &[&["scan", "--targets", "127.0.0.1", "--ports", &truth.port_spec()][..], &QUICK].concat());
    let text = results(data.path(), "1", "jsonl");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    let open: BTreeSet<u16> =
        lines.iter().filter(|o| o["state"] == "open").map(|o| o["port"].as_u64().unwrap() as u16).collect();
    assert_eq!(open, truth.open);
    assert_eq!(lines.len(), truth.open.len(), "one line per observation:\n{text}");
    assert!(lines.iter().all(|o| o["addr"] == "127.0.0.1" && o["region"].is_string() && o["seen_at"].is_string()));
    let bad = vantage(data.path(), &["results", "1", "--format", "xml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nmap-xml"));
}
