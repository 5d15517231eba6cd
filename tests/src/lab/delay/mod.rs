//! A delayed path for the lab on kernels without netem: everything the
//! target namespace sends to a scanner or the control address detours
//! through a TUN device (`dl0`) and a user-space delay line.
//!
//! ```text
//!  target socket ── rule 200: iif lo to <scanner/control> → table 100: default dev dl0
//!        └─► dl0 ─► delay line (read, hold `delay`, write back) ─► dl0
//!                 rule 100: iif dl0 → main: forwarded out of t0 to the scanner
//! ```
//!
//! `tc ... netem` would be simpler, but some kernels are built without it
//! (and without NFQUEUE in nftables), while TUN is nearly always there. The
//! delay is one-way, on the targets' answers, as netem on `t0` would add it.
//! The device is persistent (`ip tuntap add`): if the line dies, the answers
//! are dropped rather than silently sent undelayed. Everything stays inside
//! the target namespace, and the only destinations routed into the line are
//! the lab's own scanner and control addresses.
//!
//! The line runs as its own process (`vantage-lab delay`, [`line`]), which
//! installs the path, removes it again on SIGTERM or SIGINT, and writes its
//! counters ([`DelayStats`]) to a JSON file. [`DelayLine`] starts and stops
//! it by PID; `vantage-lab down` (deleting the namespace) removes all of it.

pub mod line;

use std::fmt::Write as _;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::net::{self, run};
use super::spec::{CONTROL_ADDR, LabSpec, MAX_SCANNERS};
use super::{LabError, state_dir};

/// The TUN device of the delay line, in the target namespace.
pub const DELAY_IF: &str = "dl0";
/// The routing table that sends the targets' answers into [`DELAY_IF`].
const TABLE: u32 = 100;
/// Packets the line holds at most; more are dropped and counted.
pub const DEFAULT_QUEUE: usize = 65_536;
/// How long the line may take to install its path.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a stopped line may take to remove its path and exit.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// The delay line's counters, written by the line to its stats file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayStats {
    /// Packets written back into the device after their delay.
    pub forwarded: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Packets dropped because the queue was full.
    pub dropped: u64,
    /// Packets the kernel refused when written back.
    pub send_errors: u64,
    /// Most packets held at once.
    pub max_queued: u64,
    /// Latest a packet left after its due time, in microseconds (scheduling lag).
    pub max_late_us: u64,
}

/// Sysctls of the target namespace the path needs: forwarding (the line's
/// packets come back in through `dl0` and go out of `t0`), and no martian or
/// reverse-path check on `dl0`, whose packets carry the namespace's own
/// source addresses.
fn sysctls() -> Vec<(String, &'static str)> {
    [("ipv4/ip_forward", "1"), ("ipv4/conf/all/rp_filter", "0")]
        .into_iter()
        .map(|(k, v)| (format!("net/{k}"), v))
        .chain([
            (format!("net/ipv4/conf/{DELAY_IF}/rp_filter"), "0"),
            (format!("net/ipv4/conf/{DELAY_IF}/accept_local"), "1"),
        ])
        .collect()
}

/// The `ip -batch` commands that route the targets' answers through the
/// device (which must exist): one rule per address a scanner or the control
/// namespace may have, whether this lab has them or not.
fn path_commands(spec: &LabSpec) -> String {
    let mut out = format!("link set {DELAY_IF} txqueuelen 10000 up\nroute add default dev {DELAY_IF} table {TABLE}\n");
    let _ = writeln!(out, "rule add pref 100 iif {DELAY_IF} lookup main");
    let to = (0..MAX_SCANNERS).map(|i| spec.scanner_addr(i)).chain([CONTROL_ADDR]);
    for addr in to {
        let _ = writeln!(out, "rule add pref 200 iif lo to {addr}/32 lookup {TABLE}");
    }
    out
}

/// Creates the persistent TUN device [`DELAY_IF`] in `ns`.
pub fn create_device(ns: &str) -> Result<(), LabError> {
    run(Command::new("ip").args(["-n", ns, "tuntap", "add", "dev", DELAY_IF, "mode", "tun"])).map(drop)
}

/// Routes the targets' answers into the device: run once the line has it open.
pub fn install(spec: &LabSpec, dir: &Path) -> Result<(), LabError> {
    let ns = spec.ns_targets();
    let path = dir.join("delay.ip");
    std::fs::write(&path, path_commands(spec)).map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    run(Command::new("ip").args(["-n", &ns, "-batch"]).arg(&path))?;
    net::run_in(&ns, || {
        for (key, value) in sysctls() {
            let file = format!("/proc/sys/{key}");
            std::fs::write(&file, value).map_err(|e| LabError::io(format!("writing {file} in {ns}"), e))?;
        }
        Ok(())
    })?
}

/// Undoes [`create_device`] and [`install`] (the device's routes go with
/// it): the targets answer directly again. Idempotent.
pub fn remove(spec: &LabSpec) -> Result<(), LabError> {
    let ns = spec.ns_targets();
    let ip = |args: &[&str]| run(Command::new("ip").args(["-n", &ns]).args(args));
    // Each `rule del` removes one rule of that preference; there are at most MAX_SCANNERS + 2.
    for pref in ["100", "200"] {
        for _ in 0..=MAX_SCANNERS + 1 {
            if ip(&["rule", "del", "pref", pref]).is_err() {
                break;
            }
        }
    }
    let links = ip(&["-o", "link", "show"])?;
    if links.lines().any(|l| l.split(':').nth(1).is_some_and(|n| n.trim() == DELAY_IF)) {
        ip(&["link", "del", DELAY_IF])?;
    }
    Ok(())
}

/// A running delay line (`vantage-lab delay`, in the target namespace),
/// stopped by PID when dropped.
pub struct DelayLine {
    spec: LabSpec,
    delay: Duration,
    stats: PathBuf,
    child: Option<Child>,
}

impl DelayLine {
    /// Starts a line delaying the targets' answers by `delay`, and waits until
    /// its path is installed.
    pub fn start(spec: &LabSpec, delay: Duration) -> Result<DelayLine, LabError> {
        let dir = state_dir(&spec.name);
        let (ready, stats, log_path) = (dir.join("delay.ready"), dir.join("delay.json"), dir.join("delay.log"));
        let _ = std::fs::remove_file(&ready);
        let mut cmd = Command::new(super::server_program());
        cmd.args(["delay", "--name", &spec.name])
            .arg("--delay")
            .arg(humantime::format_duration(delay).to_string())
            .arg("--stats")
            .arg(&stats)
            .arg("--ready")
            .arg(&ready);
        let child = super::spawn_logged(cmd, &log_path, "starting the delay line")?;
        let mut line = DelayLine { spec: spec.clone(), delay, stats, child: Some(child) };
        let deadline = Instant::now() + READY_LIMIT;
        while !ready.exists() {
            let child = line.child.as_mut().expect("a started line has its child");
            let exited = child.try_wait().map_err(|e| LabError::io("waiting for the delay line", e))?.is_some();
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(LabError::NotReady { waited: READY_LIMIT, log: log.trim().to_string() });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(line)
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The counters as last written by the line (every [`line::STATS_EVERY`]).
    pub fn stats(&self) -> Result<DelayStats, LabError> {
        read_stats(&self.stats)
    }

    /// Stops the line (SIGTERM: it removes its path and writes its final
    /// counters), and returns those counters.
    pub fn stop(mut self) -> Result<DelayStats, LabError> {
        let clean = self.terminate();
        remove(&self.spec)?;
        clean?;
        read_stats(&self.stats)
    }

    /// SIGTERM by PID, then SIGKILL if it has not exited within [`STOP_LIMIT`].
    fn terminate(&mut self) -> Result<(), LabError> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let pid = i32::try_from(child.id()).expect("PIDs fit in i32");
        // SAFETY: kill(2) on the PID of our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(LabError::Teardown(format!("the delay line exited with {status}"))),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(LabError::Teardown(format!("the delay line ignored SIGTERM for {STOP_LIMIT:?}")));
                }
            }
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate();
            let _ = remove(&self.spec);
        }
    }
}

fn read_stats(path: &Path) -> Result<DelayStats, LabError> {
    let text = std::fs::read_to_string(path).map_err(|e| LabError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| LabError::Spec(format!("delay stats {}: {e}", path.display())))
}

/// The median time of `count` sequential TCP connects to `addr` (an open
/// port) from namespace `ns`: one round trip each, so it shows the added
/// latency. Any failed connect is an error.
pub fn median_connect(ns: &str, addr: SocketAddrV4, count: usize, timeout: Duration) -> Result<Duration, LabError> {
    let times = net::run_in(ns, || {
        (0..count)
            .map(|_| {
                let started = Instant::now();
                TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout)
                    .map(|_| started.elapsed())
                    .map_err(|e| LabError::io(format!("connecting to {addr} from {ns}"), e))
            })
            .collect::<Result<Vec<Duration>, LabError>>()
    })??;
    let mut times = times;
    times.sort();
    times.get(times.len() / 2).copied().ok_or_else(|| LabError::Spec("median of no connects".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scanner_and_control_addresses_are_routed_into_the_line() {
        let cmds = path_commands(&LabSpec::new("d"));
        assert!(cmds.contains("rule add pref 200 iif lo to 198.18.0.1/32 lookup 100"), "{cmds}");
        assert!(cmds.contains("rule add pref 200 iif lo to 198.18.0.8/32 lookup 100"), "{cmds}");
        assert!(cmds.contains("rule add pref 200 iif lo to 198.18.0.250/32 lookup 100"), "{cmds}");
        assert_eq!(cmds.matches("pref 200").count(), MAX_SCANNERS as usize + 1, "{cmds}");
        assert!(!cmds.contains("198.18.1."), "no target address: {cmds}");
        assert!(cmds.contains("rule add pref 100 iif dl0 lookup main"), "the line's packets leave normally");
    }
}
