//! The "deploy a fleet" guide of deploy/README.md, run as written: its sh
//! block goes to bash with only names and paths swapped (the coordinator's
//! name and port for a loopback one, /etc and /var/lib for a temporary
//! directory, the documentation ranges for loopback listeners). A guide
//! that stops working fails here.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vantage_tests::bins;
use vantage_tests::proc::free_port;
use vantage_tests::review::{port, ssh_like};

/// The whole guide, with its own waits, runs within this.
const LIMIT: Duration = Duration::from_secs(300);
const MARKER: &str = "<!-- fleet-guide: the test runs the next sh block -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The sh block after the marker.
fn guide() -> String {
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    let after = readme.split_once(MARKER).expect("deploy/README.md has the fleet guide's marker").1;
    let block = after.trim_start().strip_prefix("```sh\n").expect("an sh block right after the marker");
    block.split_once("\n```").expect("the block ends").0.to_string()
}

/// The guide's shell, in its own process group: it starts the coordinator
/// and agents in the background, and all of them go when this is dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        // SAFETY: killpg(2) on the process group this test created (its leader's PID).
        unsafe { libc::killpg(pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        // The group is empty once killpg finds no member.
        // SAFETY: signal 0 only checks that the group still exists.
        while Instant::now() < deadline && unsafe { libc::killpg(pgid, 0) } == 0 {
            let _ = self.0.try_wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

#[test]
fn the_fleet_guide_works_as_written() {
    let script = guide();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ssh = ssh_like();
    let quiet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free_port();
    let ports = format!("{},{},{closed}", port(&ssh), port(&quiet));
    let listen = free_port().to_string();
    let swaps = [
        ("coordinator.example.com:7420", format!("127.0.0.1:{listen}")),
        ("coordinator.example.com", "127.0.0.1".to_string()),
        ("/etc/vantage", root.join("etc").display().to_string()),
        ("/var/lib/", format!("{}/", root.join("lib").display())),
        ("198.18.0.0/15", "127.0.0.0/8".to_string()),
        ("198.18.1.0/24", "127.0.0.1".to_string()),
        ("22,80,443,3306,5432,8080", ports),
        ("deploy/", format!("{}/deploy/", repo().display())),
    ];
    let mut run = script.clone();
    for (from, to) in &swaps {
        assert!(run.contains(from), "the guide no longer says `{from}`; update this test's swaps");
        run = run.replace(from, to);
    }
    assert!(!run.contains("198.18.") && !run.contains("example.com"), "only loopback is left:\n{run}");
    std::fs::create_dir_all(root.join("lib")).unwrap();

    let bin_dir = bins::vantage().parent().unwrap().to_path_buf();
    assert!(bins::agent().starts_with(&bin_dir), "both binaries in one directory");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let (out, err) = (root.join("guide.out"), root.join("guide.err"));
    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &run])
        .current_dir(root)
        .env("PATH", path)
        .env("HOME", root)
        .env_remove("VANTAGE_COORDINATOR")
        .env_remove("VANTAGE_PKI")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut group = Group(child);
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = group.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the guide did not finish within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = (std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&err).unwrap());
    assert!(status.success(), "the guide failed ({status}):\n{run}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");

    // Both agents enrolled in their regions and connected.
    for name in ["agent-eu-west", "agent-us-east"] {
        assert!(stdout.lines().any(|l| l.contains(name) && l.contains(" connected ")), "{name}:\n{stdout}");
    }
    // The review found the SSH-like service, and the report shows it to the people who decide.
    let ssh_target = format!("127.0.0.1:{}", port(&ssh));
    assert!(stdout.contains(&ssh_target), "findings list the SSH port:\n{stdout}");
    let report = std::fs::read_to_string(root.join("report.html")).expect("the guide writes report.html");
    assert!(report.contains("Executive summary"), "the report has its summary");
    let row = report.lines().find(|l| l.contains(&ssh_target)).expect("the report names the SSH port");
    assert!(row.contains("OpenSSH 9.2p1") && row.contains("exposed-service"), "{row}");
    drop(group);
}
