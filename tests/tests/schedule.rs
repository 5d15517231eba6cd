//! The schedule of `vantage serve` and `vantage verify`, with real processes
//! on loopback: a seconds-level cron runs reviews whose findings the CLI
//! lists, a reminder reaches a recording webhook, a coordinator stopped
//! across several slots catches up once when it is back, and `vantage
//! verify` remediates a finding whose port closed and keeps an open one.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use vantage_tests::fleet::Fleet;
use vantage_tests::proc::wait_for;
use vantage_tests::recorder::HttpRecorder;
use vantage_tests::review::{find, json, ok, scan};

/// The schedule in these tests: a review every 10 s.
const EVERY: u64 = 10;
const CRON: &str = "*/10 * * * * *";

/// A loopback service that greets every connection, until closed (then the
/// port refuses connections). Lives at most 10 minutes.
struct Service {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    fn start(greeting: &'static [u8]) -> Service {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(greeting);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Service { port, stop, thread: Some(thread) }
    }

    /// Stops listening: the port is closed once this returns.
    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.close();
    }
}

const SSH: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
const FTP: &[u8] = b"220 (vsFTPd 3.0.3)\r\n";

fn by_port(findings: &Value, port: u16) -> Option<Value> {
    findings.as_array()?.iter().find(|f| f["key"]["port"] == port).cloned()
}

#[test]
fn verify_in_embedded_mode_remediates_a_closed_port_and_keeps_an_open_one() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (ssh, mut ftp) = (Service::start(SSH), Service::start(FTP));
    scan(dir, &[ssh.port, ftp.port], "2026-11");
    let findings = json(dir, &["review", "2026-11", "--format", "json"]);
    let open_id = find(&findings, ssh.port, "exposed-service")["id"].as_str().unwrap().to_string();
    let closed_id =
        by_port(&findings, ftp.port).expect("a finding on the ftp port")["id"].as_str().unwrap().to_string();

    ftp.close();
    let v = json(dir, &["verify", &closed_id, "--by", "alice", "--format", "json"]);
    assert_eq!((v["conclusion"].as_str(), v["status"].as_str()), (Some("gone"), Some("remediated")), "{v:#}");
    assert_eq!(v["regions"], serde_json::json!([{"region": "local", "open": false}]));
    let v = json(dir, &["verify", &open_id, "--format", "json"]);
    assert_eq!((v["conclusion"].as_str(), v["status"].as_str()), (Some("open"), Some("open")), "{v:#}");
    assert_eq!(v["regions"], serde_json::json!([{"region": "local", "open": true}]));

    // Both carry the verification in their history.
    let shown = json(dir, &["findings", "show", &closed_id, "--format", "json"]);
    let last = shown["history"].as_array().unwrap().last().unwrap()["what"].as_str().unwrap().to_string();
    assert!(last.starts_with("verified by alice: closed from every region (local)"), "{last}");
    let shown = json(dir, &["findings", "show", &open_id, "--format", "json"]);
    let last = shown["history"].as_array().unwrap().last().unwrap()["what"].as_str().unwrap().to_string();
    assert!(last.contains("still open from local"), "{last}");
    // The human form names the region and the conclusion.
    let out = ok(dir, &["verify", &open_id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("local") && text.contains(&format!("still open from local: {open_id} is open")), "{text}");
    // An unknown finding is a usage error.
    let out = vantage_tests::review::vantage(dir, &["verify", "F-999"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The coordinator's JSON log lines after byte `from` whose message contains `what`.
fn log_lines(fleet: &Fleet, from: usize, what: &str) -> Vec<Value> {
    let log = fleet.log();
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"].as_str().is_some_and(|m| m.contains(what)))
        .collect()
}

#[test]
fn serve_reviews_on_schedule_reminds_catches_up_once_and_verifies() {
    let rec = HttpRecorder::start();
    let fleet = Fleet::new();
    let (ssh, mut ftp) = (Service::start(SSH), Service::start(FTP));
    let integrations = fleet.path().join("integrations.toml");
    std::fs::write(
        &integrations,
        format!(
            "escalate = [\"hook\"]\n[retry]\nattempts = 2\nbackoff = \"50ms\"\nmax_backoff = \"200ms\"\n\n\
             [integration.hook]\nkind = \"webhook\"\nurl = \"{}/hook\"\ntickets = false\n",
            rec.url()
        ),
    )
    .unwrap();
    let ports = format!("{},{}", ssh.port, ftp.port);
    let args = [
        "--schedule",
        CRON,
        "--remind-before",
        "4s",
        "--recheck",
        "off",
        "--review-targets",
        "127.0.0.1",
        "--review-ports",
        &ports,
        "--integrations",
        integrations.to_str().unwrap(),
    ];
    let started = Instant::now();
    let mut coordinator = fleet.serve(&args);
    let _agent = fleet.start_agent("eu", "eu-1", &["--allow", "127.0.0.1"]);

    // A scheduled review's findings, as the CLI lists them.
    let findings = wait_for("a scheduled review's findings", Duration::from_secs(60), || {
        let f = fleet.json(&["findings"]);
        (by_port(&f, ssh.port).is_some() && by_port(&f, ftp.port).is_some()).then_some(f)
    });
    let scans = fleet.json(&["scan", "list"]);
    assert!(
        scans
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["label"].as_str().is_some_and(|l| l.starts_with("scheduled review"))),
        "{scans:#}"
    );

    // A reminder reached the webhook, with the open findings' count (the
    // first ones, before any review, say 0); once per slot.
    let reminders = wait_for("a reminder counting the findings", Duration::from_secs(3 * EVERY), || {
        let r: Vec<_> = rec.requests().into_iter().filter(|r| r.body["event"] == "reminder").collect();
        r.iter().any(|r| r.body["open"].as_u64() >= Some(2)).then_some(r)
    });
    let last = &reminders.last().unwrap().body;
    assert!(last["title"].as_str().unwrap().starts_with("Port security review on"), "{last:#}");
    assert!(last["text"].as_str().unwrap().contains(last["review_at"].as_str().unwrap()), "{last:#}");
    let mut keys: Vec<&str> = reminders.iter().filter_map(|r| r.header("Idempotency-Key")).collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "one reminder per slot: {keys:?}");

    // Stopped across at least two slots, then back: one catch-up run.
    assert!(coordinator.terminate(Duration::from_secs(10)).is_some(), "the coordinator stops on SIGTERM");
    std::thread::sleep(Duration::from_secs(2 * EVERY + 1));
    let restart_at = fleet.log().len();
    let coordinator2 = fleet.serve(&args);
    let catch_up = wait_for("the catch-up run", Duration::from_secs(30), || {
        log_lines(&fleet, restart_at, "catching up").into_iter().next()
    });
    assert!(catch_up["fields"]["missed"].as_u64().unwrap() >= 2, "{catch_up:#}");
    // The slots missed while it was down were one run: of the runs started
    // since, exactly one stands for slots before the restart. (Slots that
    // pass while that run waits for the agent to reconnect are owed again,
    // as one more run, after it.)
    wait_for("the next slot's review", Duration::from_secs(60 + 3 * EVERY), || {
        (!log_lines(&fleet, restart_at, "scheduled review due").is_empty()).then_some(())
    });
    let serving = log_lines(&fleet, restart_at, "coordinator serving")[0]["timestamp"].as_str().unwrap().to_string();
    let runs = log_lines(&fleet, restart_at, "scheduled review ");
    let for_the_gap: Vec<&Value> = runs
        .iter()
        .filter(|l| {
            let f = &l["fields"];
            let slot = f["first_slot"].as_str().or(f["slot"].as_str()).unwrap_or("~");
            // RFC 3339 UTC times of one format compare as strings.
            slot < serving.as_str()
        })
        .collect();
    assert_eq!(for_the_gap.len(), 1, "{}", fleet.log().get(restart_at..).unwrap_or(""));
    assert_eq!(for_the_gap[0]["fields"]["missed"], catch_up["fields"]["missed"]);

    // On demand, through the coordinator: the closed port's finding is
    // remediated, the open one's stays open.
    let ftp_id = by_port(&findings, ftp.port).unwrap()["id"].as_str().unwrap().to_string();
    let ssh_id = find(&findings, ssh.port, "exposed-service")["id"].as_str().unwrap().to_string();
    ftp.close();
    let v = fleet.json(&["verify", &ftp_id]);
    assert_eq!((v["conclusion"].as_str(), v["status"].as_str()), (Some("gone"), Some("remediated")), "{v:#}");
    assert_eq!(v["regions"], serde_json::json!([{"region": "eu", "open": false}]));
    let v = fleet.json(&["verify", &ssh_id]);
    assert_eq!((v["conclusion"].as_str(), v["status"].as_str()), (Some("open"), Some("open")), "{v:#}");
    let all = fleet.json(&["findings", "--all"]);
    assert_eq!(by_port(&all, ftp.port).unwrap()["status"], "remediated");
    eprintln!("schedule test took {:?}", started.elapsed());
    drop(coordinator2);
}

#[test]
fn the_recheck_remediates_a_critical_finding_once_its_port_closes() {
    let fleet = Fleet::new();
    let mut ssh = Service::start(SSH);
    let _coordinator = fleet.serve(&["--schedule", "off", "--recheck", "2s"]);
    let _agent = fleet.start_agent("eu", "eu-1", &["--allow", "127.0.0.1"]);
    fleet.wait_connected(1, Duration::from_secs(30));
    let port = ssh.port.to_string();
    let findings = fleet.json(&["review", "--targets", "127.0.0.1", "--ports", &port]);
    let f = find(&findings, ssh.port, "exposed-service");
    assert_eq!(f["severity"], "critical");
    let id = f["id"].as_str().unwrap().to_string();

    // Re-checked while open: still open, and said so in its history.
    let checked = wait_for("a re-check of the open finding", Duration::from_secs(30), || {
        let f = fleet.json(&["findings", "show", &id]);
        let said = f["history"]
            .as_array()?
            .iter()
            .any(|e| e["what"].as_str().is_some_and(|w| w.contains("still open from eu")));
        said.then_some(f)
    });
    assert_eq!(checked["status"], "open");
    ssh.close();
    let gone = wait_for("the re-check to remediate it", Duration::from_secs(30), || {
        let f = fleet.json(&["findings", "show", &id]);
        (f["status"] == "remediated").then_some(f)
    });
    let last = gone["history"].as_array().unwrap().last().unwrap()["what"].as_str().unwrap().to_string();
    assert_eq!(last, "verified by schedule: closed from every region (eu); remediated");
}
