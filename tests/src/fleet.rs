//! A coordinator (`vantage serve`) and its agents (`vantage-agent`) as real
//! processes, each where a test puts it: here, or inside a lab namespace.
//!
//! Every start-up of these processes for multi-process tests goes through
//! [`Fleet::start`], and every command that talks to the coordinator comes
//! from [`Fleet::cli`], so that how agents and operators reach the
//! coordinator (today plaintext `http://`) is decided in this one file.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::bins;
use crate::proc::{Guard, run, wait_for};

/// How long the coordinator and its agents may take to come up.
const START_LIMIT: Duration = Duration::from_secs(30);
/// A `vantage fleet list` while waiting.
const POLL_LIMIT: Duration = Duration::from_secs(10);
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

/// One agent of a fleet.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub name: String,
    pub region: String,
    pub site: Site,
    /// The agent's own `--allow` list.
    pub allow: String,
}

/// What to start.
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

/// A running coordinator and its connected agents; dropping it kills them
/// (by PID, through their guards), agents first.
pub struct Fleet {
    url: String,
    site: Site,
    agents: Vec<Guard>,
    coordinator: Guard,
    /// The coordinator's data directory and scope file.
    dir: tempfile::TempDir,
}

impl Fleet {
    /// Starts the coordinator, waits until it answers, starts the agents and
    /// waits until every one of them is connected.
    pub fn start(spec: &FleetSpec) -> Fleet {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let scope = dir.path().join("scope.txt");
        std::fs::write(&scope, format!("{}\n", spec.scope)).expect("writing the scope file");
        let url = format!("http://{}", spec.listen);
        let mut serve = spec.site.command(bins::vantage());
        serve.arg("--data-dir").arg(dir.path().join("data")).arg("--scope").arg(&scope);
        serve.args(["serve", "--listen", &spec.listen.to_string()]).args(&spec.serve_args);
        let coordinator = Guard::spawn("coordinator", &mut serve);
        let mut fleet = Fleet { url, site: spec.site.clone(), agents: Vec::new(), coordinator, dir };
        wait_for("the coordinator to answer", START_LIMIT, || fleet.agent_names());
        for a in &spec.agents {
            let mut cmd = a.site.command(bins::agent());
            cmd.args(["--coordinator", &fleet.url, "--name", &a.name, "--region", &a.region, "--allow", &a.allow]);
            fleet.agents.push(Guard::spawn(&a.name, &mut cmd));
        }
        let want: Vec<&str> = spec.agents.iter().map(|a| a.name.as_str()).collect();
        wait_for("every agent to connect", START_LIMIT, || {
            let names = fleet.agent_names()?;
            want.iter().all(|w| names.iter().any(|n| n == w)).then_some(())
        });
        fleet
    }

    /// The URL agents and operators dial.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A `vantage` command against this coordinator, run where the coordinator
    /// is reachable; add the command and its flags.
    pub fn cli(&self) -> Command {
        let mut cmd = self.site.command(bins::vantage());
        cmd.args(["--coordinator", &self.url]);
        cmd
    }

    /// The coordinator's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Names of the connected agents, or `None` while the coordinator does not answer.
    fn agent_names(&self) -> Option<Vec<String>> {
        let out = run(self.cli().args(["fleet", "list", "--format", "json"]), POLL_LIMIT);
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(list.as_array()?.iter().filter_map(|a| a["name"].as_str().map(String::from)).collect())
    }

    /// Stops the agents, then the coordinator (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(mut self) {
        for agent in &mut self.agents {
            agent.terminate(GRACE);
        }
        self.coordinator.terminate(GRACE);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Agents before their coordinator, so none of them sees it vanish.
        self.agents.clear();
    }
}
