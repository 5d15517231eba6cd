//! Tickets and notifications against real peers on loopback: a recording
//! HTTP server that plays GitHub's issue routes (and fails or stalls on
//! purpose), a recording SMTP server, a real sled store, the real delivery
//! task; and end to end with the `vantage` binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use vantage_coordinator::notify::{self, Notifier, NotifierConfig, TicketState};
use vantage_coordinator::review::findings::{Detail, Finding, FindingKey, Kind, Severity, Status};
use vantage_coordinator::store::{Document, Store};
use vantage_tests::bins;
use vantage_tests::proc::run;
use vantage_tests::recorder::{Fault, HttpRecorder, SmtpRecorder};

const TOKEN_ENV: &str = "VANTAGE_TEST_TRACKER_TOKEN";
const TOKEN: &str = "t0k3n-for-tests";

fn token() {
    static SET: Once = Once::new();
    // SAFETY: set once, before any delivery of this process reads it.
    SET.call_once(|| unsafe { std::env::set_var(TOKEN_ENV, TOKEN) });
}

fn finding(n: u16, kind: Kind, severity: Severity) -> Finding {
    let at = SystemTime::now();
    Finding {
        id: format!("F-{n}"),
        key: FindingKey { addr: "127.0.0.1".parse().unwrap(), proto: vantage_shared::Proto::Tcp, port: 5000 + n, kind },
        severity,
        status: Status::Open,
        owner: Some("db-team".into()),
        contact: Some("db-team@example.invalid".into()),
        first_seen: at,
        opened_at: at,
        last_seen: at,
        last_period: "2026-11".parse().unwrap(),
        deadline: at + Duration::from_secs(86_400),
        repeats: 0,
        sentence: format!("PostgreSQL on 127.0.0.1:{} is open to the internet.", 5000 + n),
        detail: Detail { service: Some("postgresql".into()), ..Default::default() },
        history: Vec::new(),
    }
}

fn configure(store: &Store, text: &str) {
    notify::Integrations::parse(text).expect("a valid integrations file");
    let doc = Document {
        kind: "integrations".into(),
        name: "integrations.toml".into(),
        text: text.into(),
        stored_at: SystemTime::now(),
    };
    store.put_document(&doc).unwrap();
}

fn github(url: &str) -> String {
    format!(
        "[retry]\nattempts = 2\nbackoff = \"20ms\"\nmax_backoff = \"100ms\"\n\n[integration.gh]\nkind = \"github\"\n\
         url = \"{url}\"\nrepo = \"acme/security\"\ntoken_env = \"{TOKEN_ENV}\"\ntimeout = \"300ms\"\n"
    )
}

/// Rounds until the outbox is empty (at most 60 s, 2,000 rounds).
async fn deliver_all(store: &Store) {
    let mut n = Notifier::new(store.clone(), NotifierConfig { poll: Duration::from_millis(20), drain: Duration::ZERO });
    let start = Instant::now();
    for _ in 0..2000 {
        let r = n.round().await.unwrap();
        if r.left == 0 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "outbox not drained: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("outbox not drained after 2000 rounds");
}

fn creates(rec: &HttpRecorder) -> usize {
    rec.requests().iter().filter(|r| r.method == "POST" && r.path == "/repos/acme/security/issues").count()
}

/// Every finding has exactly one issue, labelled with its marker.
fn one_issue_each(rec: &HttpRecorder, findings: &[Finding]) -> BTreeMap<String, u64> {
    let issues = rec.issues();
    findings
        .iter()
        .map(|f| {
            let marker = format!("vantage:{}", f.id);
            let mine: Vec<_> = issues.iter().filter(|i| i.labels.contains(&marker)).collect();
            assert_eq!(mine.len(), 1, "{} has {} issues: {issues:#?}", f.id, mine.len());
            (f.id.clone(), mine[0].number)
        })
        .collect()
}

#[tokio::test]
async fn tickets_survive_errors_and_timeouts_exactly_once() {
    token();
    let rec = HttpRecorder::start();
    // Half the requests fail (a fixed pseudo-random draw); the third create
    // takes effect and then stalls past the client's timeout.
    let mut posts = 0;
    let mut draw: u64 = 0x5eed;
    rec.set_faults(move |_, r| {
        if r.method == "POST" && r.path.ends_with("/issues") {
            posts += 1;
            if posts == 3 {
                return Fault::StallAfter(Duration::from_secs(1));
            }
        }
        draw = draw.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        if (draw >> 33) % 2 == 1 { Fault::Fail } else { Fault::None }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    configure(&store, &github(&rec.url()));
    let findings: Vec<Finding> = (1..=8).map(|n| finding(n, Kind::ExposedService, Severity::High)).collect();
    assert_eq!(notify::store_findings(&store, &[], &findings).unwrap(), 8);
    deliver_all(&store).await;

    let issues = one_issue_each(&rec, &findings);
    let reqs = rec.requests();
    let failed = reqs.iter().filter(|r| r.fault == Fault::Fail).count();
    eprintln!(
        "8 findings: {} requests, {failed} failed on purpose, {} creates sent, 8 issues",
        reqs.len(),
        creates(&rec)
    );
    assert!(failed > 0, "some requests failed on purpose");
    assert!(reqs.iter().any(|r| matches!(r.fault, Fault::StallAfter(_))), "one create stalled");
    // The stalled create was found by its label, not filed again.
    assert!(
        reqs.iter().any(|r| r.method == "GET" && r.query.contains("vantage%3AF-")),
        "a lost create is searched for"
    );
    assert!(reqs.iter().all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))));
    let created = reqs.iter().find(|r| r.method == "POST" && r.fault == Fault::None).unwrap();
    assert!(
        created.body["title"].as_str().unwrap().contains("CRITICAL")
            || created.body["title"].as_str().unwrap().contains("HIGH")
    );
    assert!(created.body["body"].as_str().unwrap().contains("Why it matters"));
    for f in &findings {
        let t = store.ticket(&f.id, "gh").unwrap().expect("ticket stored");
        assert_eq!((t.state, t.key.clone()), (TicketState::Open, Some(format!("#{}", issues[&f.id]))));
    }

    // A review later: two remediated, one more severe; the rest unchanged.
    let mut after = findings.clone();
    after[0].status = Status::Remediated { at: SystemTime::now(), period: "2026-12".parse().unwrap() };
    after[1].status = Status::Remediated { at: SystemTime::now(), period: "2026-12".parse().unwrap() };
    after[2].severity = Severity::Critical;
    let queued = notify::store_findings(&store, &findings, &after).unwrap();
    assert_eq!(queued, 3, "only changed findings are delivered again");
    let creates_before = creates(&rec);
    deliver_all(&store).await;
    assert_eq!(creates(&rec), creates_before, "no new issue for a changed finding");
    let issues = rec.issues();
    for (f, open) in [(&after[0], false), (&after[1], false), (&after[2], true), (&after[3], true)] {
        let i = issues.iter().find(|i| i.labels.contains(&format!("vantage:{}", f.id))).unwrap();
        assert_eq!(i.open, open, "{}", f.id);
        if !open {
            assert!(i.comments.iter().any(|c| c.contains("remediated")), "{i:?}");
        }
    }
    let i2 = issues.iter().find(|i| i.labels.contains(&"vantage:F-3".to_string())).unwrap();
    assert!(i2.title.contains("CRITICAL") && i2.edits >= 1, "{i2:?}");
    assert_eq!(store.ticket("F-1", "gh").unwrap().unwrap().state, TicketState::Closed);
}

#[tokio::test]
async fn a_restart_while_the_tracker_fails_files_nothing_twice() {
    token();
    let rec = HttpRecorder::start();
    let dir = tempfile::tempdir().unwrap();
    let findings: Vec<Finding> = (1..=6).map(|n| finding(n, Kind::Undocumented, Severity::Medium)).collect();
    // First run: two creates go through, the third takes effect but its answer is lost, then everything fails.
    let mut posts = 0;
    rec.set_faults(move |_, r| {
        if r.method == "POST" {
            posts += 1;
        }
        match posts {
            0..=2 => Fault::None,
            3 if r.method == "POST" => Fault::StallAfter(Duration::from_secs(1)),
            _ => Fault::Fail,
        }
    });
    {
        let store = Store::open(dir.path()).unwrap();
        configure(&store, &github(&rec.url()));
        notify::store_findings(&store, &[], &findings).unwrap();
        let mut n = Notifier::new(store.clone(), NotifierConfig::default());
        for _ in 0..3 {
            n.round().await.unwrap();
        }
        assert!(store.outbox().unwrap().len() >= 4, "deliveries wait in the outbox");
        assert_eq!(rec.issues().len(), 3);
        // Stopped here: the store closes with the outbox and a create whose answer never came.
    }
    rec.set_faults(|n, _| if n % 3 == 0 { Fault::Fail } else { Fault::None });
    let store = Store::open(dir.path()).unwrap();
    deliver_all(&store).await;
    one_issue_each(&rec, &findings);
    assert_eq!(rec.issues().len(), 6, "exactly one issue per finding across the restart");
    assert!(store.outbox().unwrap().is_empty());
}

#[tokio::test]
async fn jira_issues_are_created_once_and_transitioned_when_remediated() {
    token();
    let rec = HttpRecorder::start();
    let mut draw: u64 = 0x7a11;
    rec.set_faults(move |_, r| {
        // The first create takes effect and then stalls; then a third of the requests fail.
        if r.method == "POST" && r.path.ends_with("/issue") && r.body["fields"]["labels"][1] == "vantage-F-1" {
            return Fault::StallAfter(Duration::from_secs(1));
        }
        draw = draw.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        if (draw >> 33).is_multiple_of(3) { Fault::Fail } else { Fault::None }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let text = format!(
        "[retry]\nattempts = 2\nbackoff = \"20ms\"\nmax_backoff = \"100ms\"\n[integration.jira]\nkind = \"jira\"\n\
         url = \"{}\"\nproject = \"SEC\"\nuser = \"vantage@example.invalid\"\ntoken_env = \"{TOKEN_ENV}\"\n\
         timeout = \"300ms\"\n",
        rec.url()
    );
    configure(&store, &text);
    let findings: Vec<Finding> = (1..=4).map(|n| finding(n, Kind::KnownExploited, Severity::Critical)).collect();
    notify::store_findings(&store, &[], &findings).unwrap();
    deliver_all(&store).await;
    let issues = rec.issues();
    assert_eq!(issues.len(), 4, "one issue per finding, the stalled create adopted: {issues:#?}");
    let reqs = rec.requests();
    // Basic auth: user and token.
    let auth = reqs[0].header("authorization").unwrap();
    assert!(auth.starts_with("Basic "), "{auth}");
    let first = reqs.iter().find(|r| r.method == "POST" && r.fault == Fault::None).unwrap();
    assert_eq!(first.body["fields"]["project"]["key"], "SEC");
    assert!(first.body["fields"]["description"].as_str().unwrap().contains("exploiting in the wild"));
    assert_eq!(store.ticket("F-1", "jira").unwrap().unwrap().key.as_deref(), Some("SEC-1"));

    let mut after = findings.clone();
    after[0].status = Status::Remediated { at: SystemTime::now(), period: "2026-12".parse().unwrap() };
    notify::store_findings(&store, &findings, &after).unwrap();
    deliver_all(&store).await;
    let closed = rec.issues().into_iter().find(|i| i.number == 1).unwrap();
    assert!(!closed.open, "moved through Done: {closed:?}");
    let log: Vec<String> = rec.requests().iter().map(|r| format!("{} {} {:?}", r.method, r.path, r.fault)).collect();
    assert_eq!(closed.comments.iter().filter(|c| c.contains("remediated")).count(), 1, "{log:#?}");
    assert_eq!(rec.issues().len(), 4);
}

#[tokio::test]
async fn a_new_critical_finding_is_escalated_to_chat_mail_and_owner() {
    let rec = HttpRecorder::start();
    let smtp = SmtpRecorder::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let text = format!(
        "escalate = [\"slack-sec\", \"mail\"]\nowner_via = \"mail\"\n[retry]\nbackoff = \"20ms\"\n\
         [integration.slack-sec]\nkind = \"slack\"\nurl = \"{}/slack\"\n\
         [integration.mail]\nkind = \"email\"\nsmtp = \"127.0.0.1:{}\"\ntls = \"none\"\n\
         from = \"vantage@example.invalid\"\nto = [\"oncall@example.invalid\"]\n",
        rec.url(),
        smtp.port()
    );
    configure(&store, &text);
    let critical = finding(1, Kind::ExposedService, Severity::Critical);
    let medium = finding(2, Kind::Undocumented, Severity::Medium);
    assert_eq!(notify::store_findings(&store, &[], &[critical.clone(), medium.clone()]).unwrap(), 3);
    deliver_all(&store).await;

    let slack: Vec<_> = rec.requests().into_iter().filter(|r| r.path == "/slack").collect();
    assert_eq!(slack.len(), 1, "one chat message, for the critical finding only");
    let text = slack[0].body["text"].as_str().unwrap();
    assert!(text.starts_with("*[F-1] CRITICAL exposed database or management service"), "{text}");
    assert!(text.contains("Close it to the internet now"), "{text}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let mut to: Vec<&str> = mails.iter().flat_map(|m| m.to.iter().map(String::as_str)).collect();
    to.sort();
    assert_eq!(to, ["db-team@example.invalid", "oncall@example.invalid"]);
    for m in &mails {
        let body = m.data.replace("=\r\n", "");
        assert!(body.contains("[F-1]"), "{body}");
        assert!(body.contains("What to do"), "{body}");
    }
    let esc = store.escalation("F-1").unwrap().expect("escalation recorded");
    assert_eq!(esc.channels.len(), 3, "{esc:?}");
    assert!(store.escalation("F-2").unwrap().is_none());
    // Seen again next month: not new, not escalated again.
    assert_eq!(
        notify::store_findings(&store, std::slice::from_ref(&critical), std::slice::from_ref(&critical)).unwrap(),
        0
    );
}

// ---------------------------------------------------------------- end to end

const LIMIT: Duration = Duration::from_secs(120);

fn ok(data: &Path, args: &[&str]) -> std::process::Output {
    let out = run(Command::new(bins::vantage()).arg("--data-dir").arg(data).args(args), LIMIT);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn a_review_files_tickets_and_closes_them_when_the_port_closes() {
    let rec = HttpRecorder::start();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let file = dir.join("integrations.toml");
    std::fs::write(&file, format!("[integration.hook]\nkind = \"webhook\"\nurl = \"{}/hook\"\n", rec.url())).unwrap();
    let checked = ok(dir, &["integrations", "check", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("1 integrations: hook (webhook)"));

    let p = port.to_string();
    ok(dir, &["scan", "--targets", "127.0.0.1", "--ports", &p, "--period", "2026-10", "--detect-timeout", "1s"]);
    ok(dir, &["review", "2026-10", "--integrations", file.to_str().unwrap(), "--format", "json"]);
    let events = |what: &str| -> Vec<Value> {
        rec.requests().into_iter().filter(|r| r.path == "/hook" && r.body["event"] == what).map(|r| r.body).collect()
    };
    let created = events("created");
    assert_eq!(created.len(), 1, "{:#?}", rec.requests());
    assert_eq!(created[0]["finding"]["key"]["port"], port);
    let id = created[0]["finding_id"].as_str().unwrap().to_string();
    let shown = ok(dir, &["findings", "show", &id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(&format!("ticket: hook {id}")), "{shown}");

    // The next month the port is closed: the ticket hears so, once.
    drop(listener);
    ok(dir, &["scan", "--targets", "127.0.0.1", "--ports", &p, "--period", "2026-11", "--detect-timeout", "1s"]);
    ok(dir, &["review", "2026-11", "--format", "json"]);
    let remediated = events("remediated");
    assert_eq!(remediated.len(), 1, "{:#?}", rec.requests());
    assert_eq!(remediated[0]["finding_id"], id.as_str());
    assert_eq!(events("created").len(), 1, "never filed twice");
    let shown = ok(dir, &["findings", "show", &id, "--format", "json"]);
    let v: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(v["tickets"][0]["state"], "closed", "{v:#}");
}

#[test]
fn a_bad_integrations_file_names_line_and_field() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("integrations.toml");
    std::fs::write(&file, "[integration.gh]\nkind = \"github\"\nrepo = \"nope\"\ntoken_env = \"GH\"\n").unwrap();
    let out = run(Command::new(bins::vantage()).args(["integrations", "check", file.to_str().unwrap()]), LIMIT);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: integration.gh.repo: `nope`: write owner/name"), "{err}");
}
