//! A real fleet on loopback, set up the way the deploy guide says: a PKI
//! from `vantage pki init`, a coordinator process serving TLS, agents
//! enrolled with one-time join tokens, an operator CLI with its certificate.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::bins;
use crate::proc::{Guard, free_port, run, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

/// A fleet's directory (PKI, store, agents' identities, logs) and address.
pub struct Fleet {
    dir: tempfile::TempDir,
    pub listen: String,
    pub url: String,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    /// Creates the PKI; nothing runs yet.
    pub fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = format!("127.0.0.1:{}", free_port());
        let fleet = Fleet { url: format!("https://{listen}"), listen, dir };
        let out = run(fleet.base().args(["pki", "init"]), LIMIT);
        assert!(out.status.success(), "pki init: {}", String::from_utf8_lossy(&out.stderr));
        fleet
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.path().join("pki")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// Where the coordinator's log goes.
    pub fn coordinator_log(&self) -> PathBuf {
        self.path().join("coordinator.log")
    }

    fn base(&self) -> Command {
        let mut cmd = Command::new(bins::vantage());
        cmd.arg("--data-dir").arg(self.data_dir()).arg("--pki").arg(self.pki_dir());
        cmd
    }

    /// Starts `vantage serve` with `args`, its log appended to [`Fleet::coordinator_log`].
    pub fn serve(&self, args: &[&str]) -> Guard {
        let log = File::options().create(true).append(true).open(self.coordinator_log()).expect("log file");
        let guard = Guard::spawn(
            "coordinator",
            self.base().args(["--log-format", "json", "serve", "--listen", &self.listen]).args(args).stderr(log),
        );
        wait_for("the coordinator to answer", LIMIT, || self.agents());
        guard
    }

    /// The operator CLI, talking to this fleet's coordinator with its certificate.
    pub fn cli(&self) -> Command {
        let mut cmd = self.base();
        cmd.arg("--coordinator").arg(&self.url);
        cmd
    }

    /// Runs the operator CLI with `--format json` and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = run(self.cli().args(args).args(["--format", "json"]), Duration::from_secs(120));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    /// A one-time join token for `region`.
    pub fn token(&self, region: &str, ttl: &str) -> String {
        let out = run(self.cli().args(["fleet", "token", "--region", region, "--ttl", ttl]), LIMIT);
        assert!(out.status.success(), "fleet token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
    }

    /// Runs `vantage-agent enroll`; the agent's identity directory.
    pub fn try_enroll(&self, token: &str, name: &str) -> Result<PathBuf, String> {
        let dir = self.path().join("agents").join(name);
        let out = run(
            Command::new(bins::agent())
                .args(["enroll", "--token", token, "--coordinator", &self.url, "--name", name, "--dir"])
                .arg(&dir),
            LIMIT,
        );
        if out.status.success() { Ok(dir) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }

    /// Enrolls an agent named `name` in `region`.
    pub fn enroll(&self, region: &str, name: &str) -> PathBuf {
        let token = self.token(region, "10m");
        self.try_enroll(&token, name).unwrap_or_else(|e| panic!("enroll {name}: {e}"))
    }

    /// Starts an enrolled agent (identity in `dir`) with extra `args`; its
    /// log goes to `<dir>.log`.
    pub fn agent(&self, dir: &Path, args: &[&str]) -> Guard {
        let log = File::create(dir.with_extension("log")).expect("agent log");
        Guard::spawn(
            &dir.display().to_string(),
            Command::new(bins::agent()).arg("--dir").arg(dir).args(["--log-format", "json"]).args(args).stderr(log),
        )
    }

    /// Enrolls and starts an agent.
    pub fn start_agent(&self, region: &str, name: &str, args: &[&str]) -> Guard {
        let dir = self.enroll(region, name);
        self.agent(&dir, args)
    }

    /// `vantage fleet list`, or `None` while the coordinator does not answer.
    pub fn agents(&self) -> Option<Vec<Value>> {
        let out = run(self.cli().args(["fleet", "list", "--format", "json"]).stderr(Stdio::null()), LIMIT);
        serde_json::from_slice::<Value>(&out.stdout).ok()?.as_array().cloned()
    }

    /// Agents with an open stream now.
    pub fn connected(&self) -> Option<usize> {
        Some(self.agents()?.iter().filter(|a| a["state"] == "connected").count())
    }

    /// Waits until exactly `n` agents are connected.
    pub fn wait_connected(&self, n: usize, limit: Duration) {
        wait_for(&format!("{n} connected agents"), limit, || self.connected().filter(|&c| c == n));
    }

    /// The coordinator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.coordinator_log()).unwrap_or_default()
    }
}
