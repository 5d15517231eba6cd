//! `vantage report` end to end on loopback (real binary, real store): two
//! monthly reviews, then the November report in every format; and the HTML
//! rendered by headless Chromium (Debian's `chromium`), which must load it
//! without a console message and show the executive summary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use vantage_tests::proc::run;
use vantage_tests::review::{find, json, ok, port, scan, ssh_like, vantage};

/// What the scenario leaves for the assertions.
struct Reports {
    html: String,
    md: String,
    json: Value,
    csv: String,
    /// The finding remediated in November (a port closed after October).
    remediated_id: String,
}

/// October: an SSH-like service (undocumented remote access: critical), a
/// documented port (low) and an odd one (medium). November: the odd one is
/// closed (remediated once a re-probe confirms it) and a new port opened.
fn reports() -> &'static Reports {
    static REPORTS: OnceLock<Reports> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        let ssh = ssh_like();
        let documented = TcpListener::bind("127.0.0.1:0").unwrap();
        let odd = TcpListener::bind("127.0.0.1:0").unwrap();
        let (ssh_port, doc_port, odd_port) = (port(&ssh), port(&documented), port(&odd));
        let register = dir.join("register.toml");
        std::fs::write(
            &register,
            format!(
                "[[service]]\nhost = \"127.0.0.1\"\nport = {doc_port}\njustification = \"Loopback test service\"\n\
                 owner = \"ops\"\nreview_by = \"2099-12-31\"\n"
            ),
        )
        .unwrap();
        let policy = dir.join("policy.toml");
        std::fs::write(&policy, "[costs]\ncurrency = \"EUR\"\ncritical = 250000\nmedium = 10000\n").unwrap();
        scan(dir, &[ssh_port, doc_port, odd_port], "2026-10");
        ok(dir, &["review", "2026-10", "--register", register.to_str().unwrap(), "--policy", policy.to_str().unwrap()]);
        let remediated_id = find(&json(dir, &["findings", "--format", "json"]), odd_port, "undocumented")["id"]
            .as_str()
            .unwrap()
            .to_string();

        drop(odd);
        let fresh = TcpListener::bind("127.0.0.1:0").unwrap();
        scan(dir, &[ssh_port, doc_port, odd_port, port(&fresh)], "2026-11");
        ok(dir, &["review", "2026-11"]);

        let text = |format: &str, file: &str| {
            let path = dir.join(file);
            let args = ["report", "--period", "2026-11", "--format", format, "-o", path.to_str().unwrap()];
            let out = ok(dir, &[&args[..], &["--policy", policy.to_str().unwrap()]].concat());
            assert!(String::from_utf8_lossy(&out.stderr).contains("report of 2026-11"), "{out:?}");
            std::fs::read_to_string(path).unwrap()
        };
        let html = text("html", "r.html");
        let csv = text("csv", "r.csv");
        let json_text = text("json", "r.json");
        // Markdown to stdout, the default period (the newest reviewed) and format.
        let md = String::from_utf8(ok(dir, &["report"]).stdout).unwrap();
        drop((ssh, documented, fresh));
        Reports { html, md, json: serde_json::from_str(&json_text).unwrap(), csv, remediated_id }
    })
}

#[test]
fn a_report_summarises_the_period_in_every_format() {
    let r = reports();
    let total = &r.json["summary"]["total"];
    // New: the port opened in November. Remediated: the odd one. Open: SSH
    // (critical), the documented port (low) and the new one (medium).
    assert_eq!((total["new"].as_u64(), total["remediated"].as_u64()), (Some(1), Some(1)), "{total}");
    assert_eq!((total["open"].as_u64(), total["overdue"].as_u64()), (Some(3), Some(0)), "{total}");
    let critical = &r.json["summary"]["by_severity"][0];
    assert_eq!((critical["severity"].as_str(), critical["open"].as_u64()), (Some("critical"), Some(1)));
    assert_eq!(r.json["previous"], "2026-10");
    assert!(r.json["summary"]["trend"]["sentence"].as_str().unwrap().contains("against 3 last month (2026-10)"));
    assert_eq!(r.json["findings"][0]["severity"], "critical", "worst first");
    assert!(r.json["findings"][0]["sentence"].as_str().unwrap().contains("OpenSSH 9.2p1"));
    assert_eq!(r.json["changes"]["counts"]["new"], 1, "{}", r.json["changes"]);
    // The remediated finding is tracked, with the period that closed it.
    let tracked = r.json["tracking"].as_array().unwrap();
    let closed = tracked.iter().find(|t| t["id"] == r.remediated_id.as_str()).expect("remediated finding tracked");
    assert_eq!((closed["status"].as_str(), closed["remediated_in"].as_str()), (Some("remediated"), Some("2026-11")));
    // Cost avoided from the policy's figures: one medium closure.
    assert_eq!(r.json["cost"]["period_total"], 10_000);
    let metrics: Vec<&str> = r.json["metrics"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(metrics, ["exposed-services", "mttr", "documented-share", "repeats", "acknowledgement", "cost-avoided"]);

    assert!(r.md.starts_with("# External port review 2026-11\n"), "{}", r.md);
    for section in ["## Executive summary", "## Baseline comparison", "## Findings by priority", "## Remediation"] {
        assert!(r.md.contains(section), "markdown lacks {section}");
    }
    assert!(r.md.contains(&format!("| {} | medium |", r.remediated_id)), "{}", r.md);
    // Without --policy the cost is not configured, and the report says how (escaped Markdown).
    assert!(r.md.contains(r"add a \[costs\] table to the policy file"), "{}", r.md);

    let lines: Vec<&str> = r.csv.lines().collect();
    assert!(lines[0].starts_with("id,severity,status,kind,target,owner,deadline"), "{}", r.csv);
    assert_eq!(lines.len(), 4, "a header and one row per open finding: {}", r.csv);

    let html = &r.html;
    assert!(html.contains("<h2>Executive summary</h2>") && html.contains("id=\"k-open\">3<"), "{html}");
    assert!(html.find("Executive summary") < html.find("Baseline comparison"), "the summary comes first");
    assert!(html.contains(&r.remediated_id) && html.contains("<details>") && html.contains("<svg"));
    assert!(html.contains("@media print"));
    // One self-contained file: nothing refers to anything outside it.
    for outside in ["http://", "https://", "<script", "<link", "@import", "url(", " src="] {
        assert!(!html.contains(outside), "the HTML refers outside itself: {outside}");
    }
}

#[test]
fn a_report_without_a_review_says_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let out = vantage(data.path(), &["report"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `vantage review` first"), "{out:?}");
    let out = vantage(data.path(), &["report", "-o", "r.txt"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"), "{out:?}");
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `target/`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test>
    exe.ancestors().nth(3).expect("target directory").to_path_buf()
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], page: &str) -> std::process::Output {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(page);
    // proc::run kills the browser by its PID if it outlives the limit.
    run(&mut cmd, Duration::from_secs(90))
}

/// Lines of Chromium's log about the page itself: console messages, failed
/// loads. The rest (D-Bus, GPU, sandbox notices) is the browser's own noise.
fn page_errors(stderr: &[u8], page: &str) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains(page)
                || l.contains("net::ERR_")
                || l.contains("Failed to load resource")
                || l.contains("Uncaught")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn headless_chromium_renders_the_html_report() {
    let test = "headless_chromium_renders_the_html_report";
    let Some(browser) = vantage_tests::require_tool(test, &["chromium", "chromium-browser"], "chromium") else {
        return;
    };
    let r = reports();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    std::fs::write(&file, &r.html).unwrap();
    let page = format!("file://{}", file.display());

    let dom = headless(&browser, &dir.path().join("profile-dom"), &["--dump-dom"], &page);
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(text.contains("<h2>Executive summary</h2>"), "the DOM lacks the summary: {text}");
    assert!(text.contains("id=\"k-open\">3<") && text.contains("id=\"k-remediated\">1<"), "{text}");
    assert!(text.contains("<svg"), "the charts are in the DOM");
    let errors = page_errors(&dom.stderr, &page);
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    let png = target_dir().join("report-screenshot.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(
        &browser,
        &dir.path().join("profile-shot"),
        &[&format!("--screenshot={}", png.display()), "--window-size=1280,2000", "--hide-scrollbars"],
        &page,
    );
    assert!(shot.status.success(), "chromium failed: {}", String::from_utf8_lossy(&shot.stderr));
    let errors = page_errors(&shot.stderr, &page);
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 20_000, "a screenshot of a whole report is more than {} bytes", bytes.len());
    println!("report screenshot: {}", png.display());
    eprintln!("report screenshot: {}", png.display());
}
