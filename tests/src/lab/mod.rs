//! A self-contained network of Linux namespaces with a known ground truth,
//! for scanning at scale without touching any real network.
//!
//! Loopback cannot show what a scanner does with filtered ports, silent
//! hosts or thousands of addresses; the lab can. It needs root, iproute2
//! and nftables. Every address is in 198.18.0.0/15 and no namespace has a
//! route out, so nothing sent in the lab ever leaves it.
//!
//! # Layout
//! * [`spec`]: [`LabSpec`] and the address plan.
//! * [`truth`]: the ground truth drawn from the spec ([`Truth`]), as JSON.
//! * [`net`]: namespaces, bridge, veths, addresses; running code inside a namespace.
//! * [`nft`]: filtered ports, the drop-all host and the tarpit as nftables rules.
//! * [`serve`]: the listeners (`vantage-lab serve`).
//! * [`delay`]: a delayed path through a TUN device and a user-space delay
//!   line (`vantage-lab delay`), where the kernel has no netem.
//! * [`services`]: the service lab, one host of real Debian daemons
//!   (`vantage-lab services`), for service and version detection.
//! * [`require`]: whether this machine can build a lab at all.

pub mod delay;
pub mod net;
pub mod nft;
mod require;
pub mod serve;
pub mod services;
pub mod spec;
pub mod truth;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use delay::{DelayLine, DelayStats};
pub use require::{check, require};
pub use services::{LabService, Proto, ServiceLab, installed_version};
pub use spec::{CONTROL_ADDR, LabSpec, PortRange};
pub use truth::{HostKind, HostTruth, Score, Truth};

/// How long the listeners may take to bind everything.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// Why a lab could not be built or torn down.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid lab: {0}")]
    Spec(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("ground truth {0}")]
    Truth(String),
    #[error("not ready after {waited:?}: {log}")]
    NotReady { waited: Duration, log: String },
    #[error("teardown: {0}")]
    Teardown(String),
}

impl LabError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> LabError {
        LabError::Io { what: what.into(), source }
    }
}

/// A running lab. Dropping it tears everything down (also when a test
/// fails), unless [`Lab::keep`] handed it over to `vantage-lab down`.
pub struct Lab {
    spec: LabSpec,
    truth: Truth,
    dir: PathBuf,
    /// The listener process (`ip netns exec ... vantage-lab serve`), killed on teardown.
    serve: Option<Child>,
    /// Whether dropping the lab tears it down.
    armed: bool,
}

impl Lab {
    /// Builds the lab of `spec`, after tearing down leftovers of the same name.
    pub fn up(spec: &LabSpec) -> Result<Lab, LabError> {
        spec.validate()?;
        Lab::teardown(spec)?;
        let dir = state_dir(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let truth = Truth::generate(spec);
        // From here on, dropping `lab` undoes whatever was built.
        let mut lab = Lab { spec: spec.clone(), truth, dir, serve: None, armed: true };
        lab.truth.save(&lab.truth_path())?;
        net::create(&lab.spec, &lab.truth.owned_addrs(), &lab.dir)?;
        nft::apply(&lab.spec.ns_targets(), &lab.truth, &lab.dir)?;
        lab.start_listeners()?;
        Ok(lab)
    }

    fn start_listeners(&mut self) -> Result<(), LabError> {
        let ready = self.dir.join("ready");
        let log_path = self.dir.join("serve.log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.spec.ns_targets()])
            .arg(server_program())
            .arg("serve")
            .arg("--truth")
            .arg(self.truth_path())
            .arg("--ready")
            .arg(&ready);
        let child = spawn_logged(cmd, &log_path, "starting the listeners")?;
        std::fs::write(self.dir.join("serve.pid"), child.id().to_string())
            .map_err(|e| LabError::io("writing serve.pid", e))?;
        let child = self.serve.insert(child);
        let deadline = Instant::now() + READY_LIMIT;
        while !ready.exists() {
            let exited = child.try_wait().map_err(|e| LabError::io("waiting for the listeners", e))?.is_some();
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(LabError::NotReady { waited: READY_LIMIT, log: log.trim().to_string() });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// The ground truth (also on disk at [`Lab::truth_path`]).
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    pub fn truth_path(&self) -> PathBuf {
        self.dir.join("truth.json")
    }

    /// `program` run inside the scanner namespace.
    pub fn scanner_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.spec.ns_scanner()]).arg(program);
        cmd
    }

    /// `program` run inside the namespace of scanner `i` (0 is the first).
    pub fn scanner_command_at(&self, i: u32, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.spec.ns_scanner_at(i)]).arg(program);
        cmd
    }

    /// Runs `f` on a thread inside the scanner namespace (plain std sockets work).
    pub fn in_scanner<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        net::run_in(&self.spec.ns_scanner(), f)
    }

    /// Drops (`on`) or lets through again a port of a target host, from
    /// everywhere or from one scanner: the firewall changing between scans.
    /// The truth is not updated; the test knows what it changed.
    pub fn set_block(&self, block: nft::Block, on: bool) -> Result<(), LabError> {
        nft::set_block(&self.spec.ns_targets(), block, on)
    }

    /// Tears the lab down now, reporting what went wrong.
    pub fn down(mut self) -> Result<(), LabError> {
        self.armed = false;
        self.stop_listeners();
        Lab::teardown(&self.spec)
    }

    /// Leaves the lab running after this value is gone (`vantage-lab up`);
    /// `vantage-lab down` or the next `up` of the same name removes it.
    pub fn keep(mut self) {
        self.armed = false;
        // Dropping a `Child` neither kills nor waits for it.
        self.serve = None;
    }

    fn stop_listeners(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Removes everything a lab of this name may have left: processes in
    /// its namespaces (killed by PID), the namespaces, the state directory.
    pub fn teardown(spec: &LabSpec) -> Result<(), LabError> {
        let existing = net::existing(spec)?;
        for ns in &existing {
            net::kill_inside(ns)?;
        }
        for ns in &existing {
            net::delete(ns)?;
        }
        let dir = state_dir(&spec.name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(LabError::io(format!("removing {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.stop_listeners();
        if let Err(e) = Lab::teardown(&self.spec) {
            eprintln!("lab {}: {e}", self.spec.name);
        }
    }
}

/// Where a lab keeps its truth, rules and listener log while it runs.
pub fn state_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join("vantage-lab").join(name)
}

/// Starts a lab process in the background: its output goes to `log_path`,
/// and it runs in its own process group, so a Ctrl-C meant for the caller
/// does not reach it (the caller stops it by PID).
fn spawn_logged(mut cmd: Command, log_path: &Path, what: &str) -> Result<Child, LabError> {
    let log =
        std::fs::File::create(log_path).map_err(|e| LabError::io(format!("creating {}", log_path.display()), e))?;
    let log2 = log.try_clone().map_err(|e| LabError::io("duplicating the log", e))?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().map_err(|e| LabError::io(what, e))
}

/// The `vantage-lab` binary that runs the listeners: this process if it is
/// `vantage-lab`, otherwise the one built next to the test binaries.
fn server_program() -> PathBuf {
    if let Ok(me) = std::env::current_exe()
        && me.file_name().is_some_and(|n| n == "vantage-lab")
    {
        return me;
    }
    crate::bins::lab()
}
