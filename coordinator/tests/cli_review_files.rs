//! The offline commands on the review's own files (#6): `vantage register`,
//! `inventory` and `vulns`, run as the real binary on temporary copies of
//! `tests/data/`. None of them may reach a coordinator, so every run names a
//! data directory that must still not exist afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const REGISTER: &str = include_str!("data/register-sample.toml");
const INVENTORY: &str = include_str!("data/inventory-sample.csv");
const OPENSSH_9_2P1: &str = "cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*";

/// A temporary directory holding copies of the sample files, where the
/// commands run.
struct Workspace {
    dir: tempfile::TempDir,
}

/// What one run of `vantage` left.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("register.toml"), REGISTER).unwrap();
        fs::write(dir.path().join("inventory.csv"), INVENTORY).unwrap();
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vulns");
        for name in ["nvdcve-2.0-sample.json", "kev-sample.json"] {
            fs::copy(data.join(name), dir.path().join(name)).unwrap();
        }
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).unwrap()
    }

    /// Runs `vantage --data-dir data ARGS` in the directory, without any
    /// coordinator from the environment.
    fn vantage(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_vantage"))
            .current_dir(self.dir.path())
            .arg("--data-dir")
            .arg(self.path("data"))
            .args(args)
            .env_remove("VANTAGE_COORDINATOR")
            .env_remove("VANTAGE_DATA_DIR")
            .env_remove("VANTAGE_LOG")
            .output()
            .expect("vantage runs");
        Run {
            code: out.status.code().expect("vantage exits"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs a command on local files: it must not have touched the data directory.
    fn run(&self, args: &[&str]) -> Run {
        let run = self.vantage(args);
        assert!(!self.path("data").exists(), "`vantage {}` created the data directory: {run:?}", args.join(" "));
        run
    }
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "{self:?}");
        self
    }

    /// The stdout line that starts with `start`.
    fn line(&self, start: &str) -> &str {
        self.stdout.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line `{start}`: {self:?}"))
    }
}

/// The 1-based line where `needle` first occurs.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` is not in the text"));
    text[..at].matches('\n').count() + 1
}

/// Where the entry whose host line is `host_line` starts: its `[[service]]` header.
fn entry_line(text: &str, host_line: &str) -> usize {
    let at = text.find(host_line).unwrap_or_else(|| panic!("`{host_line}` is not in the text"));
    line_of(text, &text[text[..at].rfind("[[service]]").unwrap()..])
}

#[test]
fn register_check_summarises_and_lists_what_is_due() {
    let ws = Workspace::new();
    let run = ws.run(&["register", "check", "register.toml", "--as-of", "2026-10-15"]).ok();
    let summary = "register.toml: 5 entries (4 tcp, 1 udp), 5 owners: net-team 1, ops 1, partner-desk 1";
    assert!(run.stdout.starts_with(summary), "{run:?}");
    let partner = run.line("due in 16 days");
    let place = format!("register.toml:{}", entry_line(REGISTER, "host = \"198.18.2.20"));
    for part in ["2026-10-31", "198.18.2.20-198.18.2.29", "2222/tcp", "partner-desk", &place] {
        assert!(partner.contains(part), "`{part}` in `{partner}`");
    }
    assert!(!run.stdout.contains("2026-12-31"), "the bastion is due in 77 days: {run:?}");

    let run = ws.run(&["register", "check", "register.toml", "--as-of", "2026-11-15", "--within", "60days"]).ok();
    assert!(run.line("overdue by 15 days").contains("partner-desk"), "{run:?}");
    assert!(run.line("due in 46 days").contains("198.18.0.1"), "{run:?}");
    assert_eq!(run.stdout.lines().count(), 5, "summary, heading, header and two entries: {run:?}");

    let run = ws.run(&["register", "check", "register.toml", "--as-of", "2026-01-01"]).ok();
    assert!(run.stdout.contains("no entry is overdue or due for review within 30 days"), "{run:?}");
}

#[test]
fn register_check_names_the_line_entry_and_field_of_an_error() {
    let ws = Workspace::new();
    ws.write("register.toml", &REGISTER.replace(r#"versions = ">=9.0, <10.0""#, r#"versions = "~9""#));
    let run = ws.run(&["register", "check", "register.toml"]).fails(1);
    let line = line_of(REGISTER, r#"versions = ">=9.0, <10.0""#);
    assert!(run.stderr.starts_with(&format!("vantage: register.toml:{line}: service 3: versions: ")), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    ws.write("register.toml", &REGISTER.replace("owner = \"partner-desk\"\n", ""));
    let run = ws.run(&["register", "check", "register.toml"]).fails(1);
    let line = entry_line(REGISTER, "host = \"198.18.2.20");
    assert!(run.stderr.contains(&format!("register.toml:{line}: service 4: owner: missing")), "{run:?}");

    let run = ws.run(&["register", "check", "absent.toml"]).fails(2);
    assert!(run.stderr.contains("absent.toml"), "{run:?}");
    ws.run(&["register", "check", "register.toml", "--as-of", "next week"]).fails(2);
}

/// `register add` with a full set of flags.
const ADD: &[&str] = &[
    "register",
    "add",
    "register.toml",
    "--host",
    "198.18.2.5",
    "--port",
    "443",
    "--service",
    "http",
    "--tls",
    "--product",
    "nginx",
    "--versions",
    ">=1.22, <1.27",
    "--justification",
    "API gateway",
    "--owner",
    "api-team",
    "--contact",
    "api@example.invalid",
    "--review-by",
    "2027-06-30",
];

#[test]
fn register_add_then_show_keeps_the_files_comments() {
    let ws = Workspace::new();
    let run = ws.run(ADD).ok();
    let edited = ws.read("register.toml");
    assert!(edited.starts_with(REGISTER), "the text before the new entry is untouched:\n{edited}");
    assert!(edited.contains("review_by = 2026-12-31 # agreed for the migration"), "{edited}");
    let line = entry_line(&edited, "host = \"198.18.2.5\"");
    assert!(run.stderr.contains(&format!("added service 6 at register.toml:{line}: 198.18.2.5 443/tcp")), "{run:?}");

    let run = ws.run(&["register", "show", "register.toml"]).ok();
    assert!(run.stdout.starts_with("HOST "), "{run:?}");
    let row = run.line("198.18.2.5 ");
    for part in ["443/tcp", "http+tls", "nginx", ">=1.22, <1.27", "api-team", "2027-06-30", "API gateway"] {
        assert!(row.contains(part), "`{part}` in `{row}`");
    }
    assert_eq!(run.stdout.lines().count(), 7, "a header and six entries: {run:?}");

    let run = ws.run(&["register", "show", "register.toml", "--format", "json"]).ok();
    let entries: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let added = &entries[5];
    assert_eq!(added["host"], "198.18.2.5");
    assert_eq!((added["port"].as_str(), added["proto"].as_str()), (Some("443"), Some("tcp")));
    assert_eq!((added["tls"].as_bool(), added["contact"].as_str()), (Some(true), Some("api@example.invalid")));
    assert_eq!(entries[2]["review_by"], "2026-12-31");
}

#[test]
fn register_add_refuses_a_bad_flag_and_leaves_the_file() {
    let ws = Workspace::new();
    let mut args = ADD.to_vec();
    let at = args.iter().position(|a| *a == ">=1.22, <1.27").unwrap();
    args[at] = "~1.22";
    let run = ws.run(&args).fails(2);
    assert!(run.stderr.starts_with("vantage: --versions: "), "{run:?}");
    args[at] = ">=1.22";
    let at = args.iter().position(|a| *a == "2027-06-30").unwrap();
    args[at] = "mid-2027";
    let run = ws.run(&args).fails(2);
    assert!(run.stderr.starts_with("vantage: --review-by: "), "{run:?}");
    assert_eq!(ws.read("register.toml"), REGISTER);
    ws.run(&[ADD, &["--no-tls"]].concat()).fails(2);
}

#[test]
fn register_remove_counts_entries_and_keeps_the_rest() {
    let ws = Workspace::new();
    let run = ws.run(&["register", "remove", "register.toml", "--host", "198.18.0.1", "--port", "22"]).ok();
    assert!(run.stderr.starts_with("removed 1 entry from register.toml:"), "{run:?}");
    let edited = ws.read("register.toml");
    assert!(!edited.contains("Bastion") && !edited.contains("OpenSSH only"), "{edited}");
    assert!(edited.contains("# --- Remote access ---"), "section headings stay: {edited}");
    assert!(edited.contains("# The partner's SFTP drop"), "{edited}");

    // The /24 written as a range, every port of it.
    let run = ws.run(&["register", "remove", "register.toml", "--host", "198.18.1.0-198.18.1.255"]).ok();
    assert!(run.stderr.starts_with("removed 1 entry"), "{run:?}");
    let show = ws.run(&["register", "show", "register.toml", "--format", "json"]).ok();
    let entries: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let owners: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["owner"].as_str().unwrap()).collect();
    assert_eq!(owners, ["shop-team", "partner-desk", "net-team"]);
}

#[test]
fn register_remove_and_renew_fail_when_nothing_matches() {
    let ws = Workspace::new();
    let run = ws.run(&["register", "remove", "register.toml", "--host", "198.18.9.9"]).fails(1);
    assert!(run.stderr.contains("register.toml: no entry matches --host 198.18.9.9"), "{run:?}");
    // An address inside a documented network is not the network's entry.
    let run = ws.run(&["register", "remove", "register.toml", "--host", "198.18.1.5", "--port", "80,443"]).fails(1);
    assert!(run.stderr.contains("no entry matches --host 198.18.1.5 --port 80,443"), "{run:?}");
    let args = ["register", "renew", "register.toml", "--host", "198.18.0.1", "--proto", "udp"];
    let run = ws.run(&[&args[..], &["--review-by", "2027-06-30"]].concat()).fails(1);
    assert!(run.stderr.contains("no entry matches --host 198.18.0.1 --proto udp"), "{run:?}");
    assert_eq!(ws.read("register.toml"), REGISTER);
}

#[test]
fn register_renew_sets_the_date_and_keeps_its_comment() {
    let ws = Workspace::new();
    let args = ["register", "renew", "register.toml", "--host", "198.18.0.1", "--port", "22"];
    let run = ws.run(&[&args[..], &["--review-by", "2027-06-30"]].concat()).ok();
    assert!(run.stderr.starts_with("renewed 1 entry in register.toml until 2027-06-30:"), "{run:?}");
    assert!(run.stderr.contains("review by 2026-12-31 -> 2027-06-30"), "{run:?}");
    assert_eq!(
        ws.read("register.toml"),
        REGISTER.replace("review_by = 2026-12-31 #", "review_by = \"2027-06-30\" #"),
        "only the date changed"
    );
    ws.run(&[&args[..], &["--review-by", "2027-13-01"]].concat()).fails(2);

    // Without --port, every entry of the host.
    let mut add = ADD.to_vec();
    add[4] = "198.18.0.1";
    ws.run(&add).ok();
    let run = ws.run(&["register", "renew", "register.toml", "--host", "198.18.0.1", "--review-by", "2028-01-31"]).ok();
    assert!(run.stderr.starts_with("renewed 2 entries"), "{run:?}");
    let show = ws.run(&["register", "show", "register.toml", "--format", "json"]).ok();
    let entries: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let dates: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["review_by"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2027-03-31", "2027-06-30", "2028-01-31", "2026-10-31", "2027-12-31", "2028-01-31"]);
}

#[test]
fn inventory_check_counts_records_and_locates_errors() {
    let ws = Workspace::new();
    let run = ws.run(&["inventory", "check", "inventory.csv"]).ok();
    assert!(run.stdout.starts_with("inventory.csv: 8 records, 7 hosts (further columns: owner, location)"), "{run:?}");

    let broken = format!("{INVENTORY}198.18.5.0/24,nginx,1.24.0,web-team,edge\n");
    ws.write("inventory.csv", &broken);
    let run = ws.run(&["inventory", "check", "inventory.csv"]).fails(1);
    let line = line_of(&broken, "198.18.5.0/24");
    assert!(run.stderr.starts_with(&format!("vantage: inventory.csv:{line}: column 1 (host): ")), "{run:?}");
    ws.run(&["inventory", "check", "absent.csv"]).fails(2);
}

#[test]
fn vulns_check_reports_the_import_and_the_hits_for_a_cpe() {
    let ws = Workspace::new();
    let files = ["vulns", "check", "--nvd", "nvdcve-2.0-sample.json", "--kev", "kev-sample.json"];
    let run = ws.run(&[&files[..], &["--cpe", OPENSSH_9_2P1]].concat()).ok();
    assert!(run.line("nvdcve-2.0-sample.json: NVD feed, 10 CVEs").contains("2099-01-15"), "{run:?}");
    run.line("kev-sample.json: KEV catalog, 4 entries");
    run.line("9 CVEs kept with 11 match criteria; not kept: 1 without criteria (not analysed yet), 1 rejected");
    run.line("4 KEV entries; 1 not in the NVD feeds: CVE-2099-0999");
    run.line(&format!("{OPENSSH_9_2P1}: 2 CVEs, 2 shown, some known exploited"));
    let hit = run.line("CVE-2099-0001 ");
    for part in ["9.8", "critical", "yes (since 2099-01-12, ransomware)", "shown", "< 9.3p2"] {
        assert!(hit.contains(part), "`{part}` in `{hit}`");
    }
    assert!(run.line("CVE-2099-0002 ").contains(" no "), "{run:?}");

    let run = ws.run(&[&files[..], &["--cpe", OPENSSH_9_2P1, "--format", "json"]].concat()).ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["report"]["kev_not_in_nvd"][0], "CVE-2099-0999");
    let hits = &doc["lookups"][0]["hits"];
    assert_eq!((hits[0]["cve"].as_str(), hits[0]["evidence"].as_str()), (Some("CVE-2099-0001"), Some("shown")));
    assert_eq!(hits[0]["kev"]["cve_id"], "CVE-2099-0001");
    assert_eq!(hits.as_array().unwrap().len(), 2);
}

#[test]
fn vulns_check_refuses_what_it_cannot_read() {
    let ws = Workspace::new();
    let run = ws.run(&["vulns", "check", "--nvd", "kev-sample.json"]).fails(1);
    assert!(run.stderr.contains("kev-sample.json: expected an NVD CVE JSON 2.0 feed"), "{run:?}");
    ws.run(&["vulns", "check", "--nvd", "absent.json"]).fails(2);
    let run = ws.run(&["vulns", "check", "--kev", "kev-sample.json", "--cpe", "openssh 9.2p1"]).fails(2);
    assert!(run.stderr.contains("--cpe: `openssh 9.2p1` is not a CPE 2.3 formatted string"), "{run:?}");
    ws.run(&["vulns", "check"]).fails(2);
}

/// The data directory checks above would see a command that opened a
/// coordinator: one that does creates it.
#[test]
fn a_command_that_needs_a_coordinator_creates_the_data_directory() {
    let ws = Workspace::new();
    let run = ws.vantage(&["baseline", "list"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(ws.path("data").is_dir(), "{run:?}");
}
