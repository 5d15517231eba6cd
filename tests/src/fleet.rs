//! A real fleet, set up the way the deploy guide says: a PKI from
//! `vantage pki init`, a coordinator process serving TLS, agents enrolled
//! with one-time join tokens, an operator CLI with its certificate. Each
//! process runs where a test puts it: here, or inside a lab namespace.
//!
//! Every start-up of these processes for multi-process tests goes through
//! [`Fleet`], and every command that talks to the coordinator comes from
//! [`Fleet::cli`], so how agents and operators reach the coordinator is
//! decided in this one file.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::bins;
use crate::lab::{CONTROL_ADDR, LabSpec};
use crate::proc::{Guard, free_port, run, wait_for};

/// How long one command may take.
const LIMIT: Duration = Duration::from_secs(60);
/// How long the coordinator and its agents may take to come up.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a process may take to exit on SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

/// Where a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// In the test's own network namespace.
    Here,
    /// Inside a network namespace (`ip netns exec NAME ...`), such as a lab's.
    Netns(String),
}

impl Site {
    /// A command that runs `program` at this site.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self {
            Site::Here => Command::new(program),
            Site::Netns(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
        }
    }
}

/// One agent of a fleet started by [`Fleet::start`].
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub name: String,
    pub region: String,
    pub site: Site,
    /// The agent's own `--allow` list.
    pub allow: String,
}

/// What [`Fleet::start`] starts.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// Where the coordinator runs; operators' commands run there too.
    pub site: Site,
    /// The address it listens on, reachable from every agent's site.
    pub listen: SocketAddr,
    /// The coordinator's scope file.
    pub scope: String,
    /// More `vantage serve` flags (`--shard-probes`, `--lease`, ...).
    pub serve_args: Vec<String>,
    pub agents: Vec<AgentSpec>,
}

impl FleetSpec {
    /// A fleet inside a lab: the coordinator in the control namespace at
    /// `CONTROL_ADDR:port`, in scope `scope`, and one agent per scanner
    /// namespace (`agents` of them, named `agentN`, in region `region(N)`,
    /// allowed `scope`).
    pub fn in_lab(
        lab: &LabSpec,
        scope: &str,
        port: u16,
        agents: u32,
        region: impl Fn(u32) -> String,
        serve_args: Vec<String>,
    ) -> FleetSpec {
        FleetSpec {
            site: Site::Netns(lab.ns_control()),
            listen: SocketAddr::V4(SocketAddrV4::new(CONTROL_ADDR, port)),
            scope: scope.to_string(),
            serve_args,
            agents: (0..agents)
                .map(|i| AgentSpec {
                    name: format!("agent{i}"),
                    region: region(i),
                    site: Site::Netns(lab.ns_scanner_at(i)),
                    allow: scope.to_string(),
                })
                .collect(),
        }
    }
}

/// A fleet's directory (PKI, store, agents' identities, logs) and address,
/// and the processes [`Fleet::start`] started (killed by PID when dropped,
/// agents first).
pub struct Fleet {
    pub listen: String,
    pub url: String,
    site: Site,
    scope: Option<PathBuf>,
    agents: Vec<Guard>,
    coordinator: Option<Guard>,
    dir: tempfile::TempDir,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    /// A fleet on loopback, in scope loopback; nothing runs yet.
    pub fn new() -> Fleet {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Fleet::at(Site::Here, listen, None)
    }

    /// A fleet whose coordinator will listen on `listen` at `site`, with
    /// `scope` as its scope file; creates the PKI (its certificate names
    /// the listen address).
    pub fn at(site: Site, listen: SocketAddr, scope: Option<&str>) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let scope = scope.map(|text| {
            let path = dir.path().join("scope.txt");
            std::fs::write(&path, format!("{text}\n")).expect("writing the scope file");
            path
        });
        let fleet = Fleet {
            url: format!("https://{listen}"),
            listen: listen.to_string(),
            site,
            scope,
            agents: Vec::new(),
            coordinator: None,
            dir,
        };
        let out = run(fleet.base(&Site::Here).args(["pki", "init", "--san", &listen.ip().to_string()]), LIMIT);
        assert!(out.status.success(), "pki init: {}", String::from_utf8_lossy(&out.stderr));
        fleet
    }

    /// Starts a coordinator and enrolled agents as `spec` says, and waits
    /// until every agent is connected.
    pub fn start(spec: &FleetSpec) -> Fleet {
        let mut fleet = Fleet::at(spec.site.clone(), spec.listen, Some(&spec.scope));
        let args: Vec<&str> = spec.serve_args.iter().map(String::as_str).collect();
        fleet.coordinator = Some(fleet.serve(&args));
        for a in &spec.agents {
            let token = fleet.token(&a.region, "10m");
            let dir =
                fleet.try_enroll_at(&a.site, &token, &a.name).unwrap_or_else(|e| panic!("enroll {}: {e}", a.name));
            let agent = fleet.agent_at(&a.site, &dir, &["--allow", &a.allow]);
            fleet.agents.push(agent);
        }
        fleet.wait_connected(spec.agents.len(), START_LIMIT);
        fleet
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> &str {
        &self.url
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

    fn base(&self, site: &Site) -> Command {
        let mut cmd = site.command(bins::vantage());
        cmd.arg("--data-dir").arg(self.data_dir()).arg("--pki").arg(self.pki_dir());
        cmd
    }

    /// Starts `vantage serve` with `args` and waits until it answers; its
    /// log is appended to [`Fleet::coordinator_log`].
    pub fn serve(&self, args: &[&str]) -> Guard {
        let log = File::options().create(true).append(true).open(self.coordinator_log()).expect("log file");
        let mut cmd = self.base(&self.site);
        if let Some(scope) = &self.scope {
            cmd.arg("--scope").arg(scope);
        }
        cmd.args(["--log-format", "json", "serve", "--listen", &self.listen]).args(args).stderr(log);
        let guard = Guard::spawn("coordinator", &mut cmd);
        wait_for("the coordinator to answer", START_LIMIT, || self.agents());
        guard
    }

    /// The operator CLI, where the coordinator runs, with its certificate.
    pub fn cli(&self) -> Command {
        let mut cmd = self.base(&self.site);
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

    /// Runs `vantage-agent enroll` here; the agent's identity directory, or
    /// what the enrollment said when it failed.
    pub fn try_enroll(&self, token: &str, name: &str) -> Result<PathBuf, String> {
        self.try_enroll_at(&Site::Here, token, name)
    }

    fn try_enroll_at(&self, site: &Site, token: &str, name: &str) -> Result<PathBuf, String> {
        let dir = self.path().join("agents").join(name);
        let out = run(
            site.command(bins::agent())
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

    /// Starts an enrolled agent (identity in `dir`) here with extra `args`;
    /// its log goes to `<dir>.log`.
    pub fn agent(&self, dir: &Path, args: &[&str]) -> Guard {
        self.agent_at(&Site::Here, dir, args)
    }

    fn agent_at(&self, site: &Site, dir: &Path, args: &[&str]) -> Guard {
        let log = File::create(dir.with_extension("log")).expect("agent log");
        let mut cmd = site.command(bins::agent());
        cmd.arg("--dir").arg(dir).args(["--log-format", "json"]).args(args).stderr(log);
        Guard::spawn(&dir.display().to_string(), &mut cmd)
    }

    /// Enrolls and starts an agent here.
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

    /// Stops the agents, then the coordinator (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(mut self) {
        for agent in &mut self.agents {
            agent.terminate(GRACE);
        }
        if let Some(c) = &mut self.coordinator {
            c.terminate(GRACE);
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Agents before their coordinator, so none of them sees it vanish.
        self.agents.clear();
    }
}
