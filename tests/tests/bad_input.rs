//! Bad input gets one clear line on stderr and a non-zero exit, and starts nothing.

use std::process::Command;
use std::time::Duration;

use vantage_tests::bins;
use vantage_tests::proc::run;

/// Runs `vantage scan` with `args` against a fresh data directory; returns
/// (exit code, stderr).
fn scan(args: &[&str]) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(bins::vantage()).arg("--data-dir").arg(data.path()).arg("scan").args(args),
        Duration::from_secs(60),
    );
    assert!(out.stdout.is_empty(), "no data on stdout for a refused scan");
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stderr).unwrap())
}

fn assert_one_line_error(args: &[&str], needle: &str) {
    let (code, stderr) = scan(args);
    assert_eq!(code, 2, "exit code for {args:?}; stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line for {args:?}, got: {stderr}");
    assert!(stderr.starts_with("vantage: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
}

#[test]
fn unparsable_target() {
    assert_one_line_error(&["--targets", "127.0.0.1,127.0.0.300", "--ports", "80"], "`127.0.0.300`");
}

#[test]
fn port_out_of_range() {
    assert_one_line_error(&["--targets", "127.0.0.1", "--ports", "22,70000"], "port 70000 is out of range");
}

#[test]
fn reversed_port_range() {
    assert_one_line_error(&["--targets", "127.0.0.1", "--ports", "100-20"], "reversed range");
}

#[test]
fn reversed_address_range() {
    assert_one_line_error(&["--targets", "127.0.0.9-127.0.0.1", "--ports", "80"], "reversed range");
}

#[test]
fn empty_scope() {
    assert_one_line_error(
        &["--targets", "127.0.0.1", "--exclude", "127.0.0.0/8", "--ports", "80"],
        "no address is left",
    );
}

#[test]
fn out_of_scope_target_is_refused_before_any_probe() {
    // 198.18.0.0/15 is the benchmarking range: not in the loopback default scope.
    assert_one_line_error(&["--targets", "198.18.0.1", "--ports", "80"], "outside the scope");
}

/// Runs `vantage --scope FILE scan ARGS` with `scope` as the file's text;
/// returns (exit code, stderr).
fn scan_with_scope(scope: &str, args: &[&str]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("scope.txt");
    std::fs::write(&path, scope).unwrap();
    let out = run(
        Command::new(bins::vantage())
            .arg("--data-dir")
            .arg(data.path())
            .arg("--scope")
            .arg(&path)
            .arg("scan")
            .args(args),
        Duration::from_secs(60),
    );
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn huge_range_needs_consent() {
    let (code, stderr) = scan_with_scope("0.0.0.0/0\n", &["--targets", "0.0.0.0/0", "--ports", "80"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--i-know-this-is-huge"), "{stderr}");
}

#[test]
fn malformed_scope_file_names_the_line() {
    let (code, stderr) =
        scan_with_scope("# lab\n127.0.0.0/8\n127.0.0.0/40\n", &["--targets", "127.0.0.1", "--ports", "80"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("line 3: `127.0.0.0/40`"), "{stderr}");
}
