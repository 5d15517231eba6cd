//! Trust: only the installation's own agents and operators get in, each
//! only to its own API, and the coordinator's log says why it refused.
//! Every refusal is asserted on what the client got (a TLS 1.3 client
//! learns of a refused certificate only at its first call) and on the
//! coordinator's log.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use vantage_proto::pki::{Ca, Role};
use vantage_tests::bins;
use vantage_tests::fleet::Fleet;
use vantage_tests::proc::{Guard, free_port, run, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

/// Waits until the coordinator's log says `needle`.
fn wait_log(fleet: &Fleet, needle: &str) {
    let deadline = std::time::Instant::now() + LIMIT;
    while !fleet.log().contains(needle) {
        assert!(std::time::Instant::now() < deadline, "no `{needle}` in the coordinator's log:\n{}", fleet.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the operator CLI with the PKI directory `pki`; its stderr if it fails.
fn cli_with(fleet: &Fleet, pki: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let out =
        run(Command::new(bins::vantage()).arg("--pki").arg(pki).args(["--coordinator", &fleet.url]).args(args), LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(stderr) }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_enrolled_agent_works_until_it_is_revoked_then_never_again() {
    let fleet = Fleet::new();
    assert_eq!(mode(&fleet.pki_dir().join("ca.key")), 0o600);
    let _coordinator = fleet.serve(&[]);
    let dir = fleet.enroll("eu-west", "edge1");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("agent.pem")), 0o600, "the key is readable by its owner only");
    let _agent = fleet.agent(&dir, &[]);
    fleet.wait_connected(1, LIMIT);
    let agents = fleet.agents().unwrap();
    assert_eq!(agents[0]["id"], "a-1");
    assert_eq!(agents[0]["region"], "eu-west", "the region is the token's");
    assert!(agents[0]["cert_expires_at"].is_string());

    let out = run(fleet.cli().args(["fleet", "revoke", "a-1", "--reason", "lost laptop"]), LIMIT);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Its open stream is cut at once, and its reconnects are refused at the handshake.
    fleet.wait_connected(0, Duration::from_secs(10));
    wait_log(&fleet, "agent a-1 was revoked");
    assert!(fleet.log().contains("TLS handshake failed: agent a-1 was revoked"), "{}", fleet.log());
    let agents = fleet.agents().unwrap();
    assert_eq!(
        (agents[0]["state"].as_str(), agents[0]["revoked_reason"].as_str()),
        (Some("revoked"), Some("lost laptop"))
    );
    // For good: still out a while later (it keeps retrying with backoff).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(fleet.connected(), Some(0));
}

#[test]
fn a_join_token_works_once_and_expires() {
    let fleet = Fleet::new();
    let _coordinator = fleet.serve(&[]);
    let token = fleet.token("eu-west", "10m");
    fleet.try_enroll(&token, "first").expect("a fresh token works");
    let again = fleet.try_enroll(&token, "second").unwrap_err();
    assert!(again.contains("already used (by agent a-1)"), "{again}");

    let short = fleet.token("eu-west", "1s");
    std::thread::sleep(Duration::from_millis(1500));
    let late = fleet.try_enroll(&short, "late").unwrap_err();
    assert!(late.contains("expired"), "{late}");
    assert!(fleet.try_enroll("vjt1.garbage", "typo").unwrap_err().contains("not a join token"));
    wait_log(&fleet, "enrollment refused");
    assert!(fleet.log().contains("join token expired"), "{}", fleet.log());

    // A token of another installation is never sent: this coordinator does
    // not present the CA the token names.
    let other = Fleet::new();
    let _other_coordinator = other.serve(&[]);
    let foreign = other.token("eu-west", "10m");
    let refused = fleet.try_enroll(&foreign, "lost").unwrap_err();
    assert!(refused.contains("does not present the CA named in the join token"), "{refused}");
    other.try_enroll(&foreign, "found").expect("the token still works where it belongs");
}

#[test]
fn certificates_of_another_ca_or_expired_ones_are_refused() {
    let fleet = Fleet::new();
    let _coordinator = fleet.serve(&[]);
    let other = Fleet::new();

    // An operator certificate of another installation.
    let foreign = fleet.path().join("foreign-operator");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::copy(fleet.pki_dir().join("ca.pem"), foreign.join("ca.pem")).unwrap();
    std::fs::copy(other.pki_dir().join("operator.pem"), foreign.join("operator.pem")).unwrap();
    let err = cli_with(&fleet, &foreign, &["fleet", "list"]).unwrap_err();
    assert!(err.contains("its log says why"), "{err}");
    wait_log(&fleet, "the certificate was not issued by this installation's CA");

    // An enrolled agent whose certificate has expired.
    let dir = fleet.enroll("eu-west", "stale");
    let ca = Ca::from_pem(
        &std::fs::read_to_string(fleet.pki_dir().join("ca.pem")).unwrap(),
        &std::fs::read_to_string(fleet.pki_dir().join("ca.key")).unwrap(),
    )
    .unwrap();
    let cert = ca.issue(&Role::Agent("a-1".into()), "stale", &[], Duration::from_secs(1)).unwrap();
    std::fs::write(dir.join("agent.pem"), format!("{}{}", cert.cert_pem, cert.key_pem)).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let _agent = fleet.agent(&dir, &[]);
    wait_log(&fleet, "certificate expired");
    assert_eq!(fleet.connected(), Some(0));
}

#[test]
fn agents_and_operators_each_reach_only_their_own_api() {
    let fleet = Fleet::new();
    let _coordinator = fleet.serve(&[]);
    let agent_dir = fleet.enroll("eu-west", "edge1");

    // An agent's certificate on the operator API.
    let as_operator = fleet.path().join("agent-as-operator");
    std::fs::create_dir(&as_operator).unwrap();
    std::fs::copy(agent_dir.join("ca.pem"), as_operator.join("ca.pem")).unwrap();
    std::fs::copy(agent_dir.join("agent.pem"), as_operator.join("operator.pem")).unwrap();
    let err = cli_with(&fleet, &as_operator, &["scan", "--targets", "127.0.0.1", "--ports", "1"]).unwrap_err();
    assert!(err.contains("the operator API is for operators; this is the certificate of agent a-1"), "{err}");
    wait_log(&fleet, "operator call refused");

    // An operator's certificate on the agent link.
    let as_agent = fleet.path().join("operator-as-agent");
    std::fs::create_dir(&as_agent).unwrap();
    for f in ["ca.pem", "enrollment.json"] {
        std::fs::copy(agent_dir.join(f), as_agent.join(f)).unwrap();
    }
    std::fs::copy(fleet.pki_dir().join("operator.pem"), as_agent.join("agent.pem")).unwrap();
    let _impostor = fleet.agent(&as_agent, &[]);
    wait_log(&fleet, "the agent link is for agents; this is the certificate of operator admin");
    assert_eq!(fleet.connected(), Some(0));
}

#[test]
fn plaintext_is_refused_and_allowed_only_on_loopback() {
    let fleet = Fleet::new();
    let _coordinator = fleet.serve(&[]);
    let plain = format!("http://{}", fleet.listen);
    let out = run(Command::new(bins::vantage()).args(["--insecure", "--coordinator", &plain, "fleet", "list"]), LIMIT);
    assert!(!out.status.success());
    wait_log(&fleet, "a plaintext (non-TLS) client: this coordinator speaks TLS only");
    // Without --insecure, http:// is refused by the client itself.
    let out = run(
        Command::new(bins::vantage()).arg("--pki").arg(fleet.pki_dir()).args([
            "--coordinator",
            &plain,
            "fleet",
            "list",
        ]),
        LIMIT,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --insecure, on loopback only"));

    // --insecure never leaves loopback: neither a listener nor an agent. Nothing is sent.
    let data = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(bins::vantage()).arg("--data-dir").arg(data.path()).args([
            "--insecure",
            "serve",
            "--listen",
            "0.0.0.0:0",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback addresses only"));
    let out = run(Command::new(bins::agent()).args(["--insecure", "--coordinator", "http://198.18.0.1:7420"]), LIMIT);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback addresses only"));

    // On loopback, --insecure works end to end.
    let listen = format!("127.0.0.1:{}", free_port());
    let _insecure = Guard::spawn(
        "insecure coordinator",
        Command::new(bins::vantage()).arg("--data-dir").arg(data.path()).args([
            "--insecure",
            "serve",
            "--listen",
            &listen,
        ]),
    );
    let url = format!("http://{listen}");
    let _agent = Guard::spawn(
        "insecure agent",
        Command::new(bins::agent()).args(["--insecure", "--coordinator", &url, "--region", "lab", "--name", "a"]),
    );
    wait_for("the insecure agent", LIMIT, || {
        let out = run(
            Command::new(bins::vantage()).args([
                "--insecure",
                "--coordinator",
                &url,
                "fleet",
                "list",
                "--format",
                "json",
            ]),
            LIMIT,
        );
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (list.as_array()?.len() == 1).then_some(())
    });
}

#[test]
fn an_agent_renews_its_short_lived_certificate_and_stays_connected() {
    let fleet = Fleet::new();
    let mut coordinator = fleet.serve(&["--agent-cert-ttl", "12s"]);
    let _agent = fleet.start_agent("eu-west", "edge1", &[]);
    fleet.wait_connected(1, LIMIT);
    let first = fleet.agents().unwrap()[0]["cert_expires_at"].clone();
    // Renewal is due after two thirds of 12 s.
    wait_log(&fleet, "agent certificate renewed");
    let renewed = fleet.agents().unwrap()[0]["cert_expires_at"].clone();
    assert_ne!(first, renewed);
    // Past the first certificate's end, a restarted coordinator sees the
    // agent reconnect with its new one.
    std::thread::sleep(Duration::from_secs(5));
    coordinator.kill();
    let _coordinator = fleet.serve(&["--agent-cert-ttl", "12s"]);
    fleet.wait_connected(1, LIMIT);
    assert!(!fleet.log().contains("certificate expired"), "{}", fleet.log());
}
