//! The lab's network: namespaces joined by veth pairs on a bridge.
//!
//! ```text
//!  vl-<name>-scan            vl-<name>-br             vl-<name>-t
//!  s0 198.18.0.1/15 ── bs ── br0 ── bt ── t0 198.18.1.0/15, .1, ... (one address per target)
//!  vl-<name>-scan1                │ │
//!  s0 198.18.0.2/15 ── bs1 ───────┘ └──── bc ── c0 198.18.0.250/15
//!  ... (one per scanner)                         vl-<name>-ctl (with `control`)
//! ```
//!
//! Nothing here routes anywhere else: there is no default route and no link
//! to the host's interfaces, so every packet a scanner sends stays in the lab.
//! Everything is done with iproute2 so the lab can be rebuilt or inspected by
//! hand with the same commands.

use std::fmt::Write as _;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LabError;
use super::spec::{CONTROL_ADDR, LabSpec, PREFIX_LEN};

/// The scanner's interface (in `vl-<name>-scan`).
pub const SCANNER_IF: &str = "s0";
/// The targets' interface (in `vl-<name>-t`).
pub const TARGET_IF: &str = "t0";
/// The control namespace's interface (in `vl-<name>-ctl`).
pub const CONTROL_IF: &str = "c0";
/// Fixed, locally administered MACs, so raw-packet scanners (masscan) can
/// be told where to send without resolving a router.
pub const SCANNER_MAC: &str = "02:00:c6:12:00:01";
pub const TARGET_MAC: &str = "02:00:c6:12:01:00";

/// Sysctls of the scanner namespace: the widest ephemeral port range for
/// connect scans. (The neighbour table's gc_thresh limits are global, not
/// per namespace, so labs stay well under their default of 1024 neighbours.)
const SCANNER_SYSCTLS: &[(&str, &str)] = &[("net/ipv4/ip_local_port_range", "1024 65535")];
/// Sysctls of the target namespace: a deep accept queue for the tarpit.
const TARGET_SYSCTLS: &[(&str, &str)] = &[("net/core/somaxconn", "65535"), ("net/ipv4/tcp_max_syn_backlog", "65535")];

/// Runs a command and returns its stdout; a failure carries its stderr.
pub fn run(cmd: &mut Command) -> Result<String, LabError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io(format!("cannot run {:?}", cmd.get_program()), e))?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: format!("{cmd:?}"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip -n <ns> -batch <file>` with the given commands, one a line.
fn batch(ns: &str, commands: &str, dir: &Path, label: &str) -> Result<(), LabError> {
    let path = dir.join(format!("{label}.ip"));
    std::fs::write(&path, commands).map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    run(Command::new("ip").args(["-n", ns, "-batch"]).arg(&path)).map(drop)
}

/// Creates the namespaces, the bridge, the veth pairs and the addresses:
/// the target namespace owns `targets`.
pub fn create(spec: &LabSpec, targets: &[Ipv4Addr], dir: &Path) -> Result<(), LabError> {
    let (br, t) = (spec.ns_bridge(), spec.ns_targets());
    for ns in spec.namespaces() {
        run(Command::new("ip").args(["netns", "add", &ns]))?;
    }
    batch(&br, &bridge_commands(spec), dir, "bridge")?;
    for i in 0..spec.scanners {
        let scan = spec.ns_scanner_at(i);
        let (addr, mac) = (spec.scanner_addr(i), scanner_mac(i));
        let scanner = format!(
            "link set lo up\nlink set {SCANNER_IF} address {mac}\n\
             addr add {addr}/{PREFIX_LEN} dev {SCANNER_IF}\nlink set {SCANNER_IF} up\n"
        );
        batch(&scan, &scanner, dir, &format!("scanner{i}"))?;
        sysctl(&scan, SCANNER_SYSCTLS)?;
    }
    if spec.control {
        let control = format!(
            "link set lo up\naddr add {CONTROL_ADDR}/{PREFIX_LEN} dev {CONTROL_IF}\nlink set {CONTROL_IF} up\n"
        );
        batch(&spec.ns_control(), &control, dir, "control")?;
    }
    batch(&t, &target_commands(targets), dir, "targets")?;
    sysctl(&t, TARGET_SYSCTLS)
}

/// The bridge and one veth pair per other namespace, its far end moved there.
fn bridge_commands(spec: &LabSpec) -> String {
    let mut ports: Vec<(String, &str, String)> = (0..spec.scanners)
        .map(|i| (if i == 0 { "bs".to_string() } else { format!("bs{i}") }, SCANNER_IF, spec.ns_scanner_at(i)))
        .collect();
    ports.push(("bt".into(), TARGET_IF, spec.ns_targets()));
    if spec.control {
        ports.push(("bc".into(), CONTROL_IF, spec.ns_control()));
    }
    let mut out = "link set lo up\nlink add br0 type bridge\nlink set br0 up\n".to_string();
    for (near, far, ns) in &ports {
        let _ = writeln!(out, "link add {near} type veth peer name {far} netns {ns}");
        let _ = writeln!(out, "link set {near} master br0\nlink set {near} up");
    }
    out
}

/// Scanner `i`'s MAC: [`SCANNER_MAC`] for the first, the next ones after it.
fn scanner_mac(i: u32) -> String {
    if i == 0 { SCANNER_MAC.to_string() } else { format!("02:00:c6:12:00:{:02x}", 1 + i) }
}

/// The target namespace's interface and its addresses.
fn target_commands(targets: &[Ipv4Addr]) -> String {
    let mut out = format!("link set lo up\nlink set {TARGET_IF} address {TARGET_MAC}\n");
    for addr in targets {
        let _ = writeln!(out, "addr add {addr}/{PREFIX_LEN} dev {TARGET_IF}");
    }
    out.push_str(&format!("link set {TARGET_IF} up\n"));
    out
}

/// Writes `/proc/sys/net` settings from a thread inside `ns` (they are per
/// namespace), so no `sysctl` binary is needed.
fn sysctl(ns: &str, settings: &[(&str, &str)]) -> Result<(), LabError> {
    run_in(ns, || {
        for (key, value) in settings {
            let path = format!("/proc/sys/{key}");
            std::fs::write(&path, value).map_err(|e| LabError::io(format!("writing {path} in {ns}"), e))?;
        }
        Ok(())
    })?
}

/// The lab's namespaces that exist now.
pub fn existing(spec: &LabSpec) -> Result<Vec<String>, LabError> {
    let list = run(Command::new("ip").args(["netns", "list"]))?;
    // Whatever the spec says now, a lab of this name may have been built with more.
    let ours: Vec<String> = LabSpec { scanners: super::spec::MAX_SCANNERS, control: true, ..spec.clone() }.namespaces();
    // Lines look like `vl-x-t (id: 3)` or just `vl-x-t`.
    Ok(list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| ours.iter().any(|o| o == n))
        .map(String::from)
        .collect())
}

/// Kills (SIGKILL) every process inside namespace `ns`: only lab processes
/// (listeners, scanners we started) ever run there. Waits until they are gone.
pub fn kill_inside(ns: &str) -> Result<(), LabError> {
    let pids: Vec<i32> =
        run(Command::new("ip").args(["netns", "pids", ns]))?.lines().filter_map(|l| l.trim().parse().ok()).collect();
    for pid in &pids {
        // SAFETY: kill(2) with a PID read from `ip netns pids` of our own namespace.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) {
        if Instant::now() > deadline {
            return Err(LabError::Teardown(format!("processes {pids:?} in {ns} survived SIGKILL")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Alive and not a zombie (a zombie has left its namespaces already).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Deletes a namespace; its veth ends go with it, and with them their peers.
pub fn delete(ns: &str) -> Result<(), LabError> {
    run(Command::new("ip").args(["netns", "delete", ns])).map(drop)
}

/// Moves the calling thread into network namespace `ns`: sockets it opens
/// from now on live in the lab. Only for threads of their own.
pub fn enter(ns: &str) -> Result<(), LabError> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| LabError::io(format!("opening {path}"), e))?;
    // SAFETY: setns(2) on a namespace file we hold open; it moves only this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(LabError::io(format!("setns into {ns}"), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Runs `f` on a thread that has joined network namespace `ns`, so plain
/// std sockets opened by `f` live in the lab.
pub fn run_in<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    std::thread::scope(|s| {
        let thread = s.spawn(|| enter(ns).map(|()| f()));
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::Truth;

    #[test]
    fn dark_hosts_get_no_address() {
        let spec = LabSpec { hosts: 2, dark: 1, drop_all: true, ..LabSpec::new("n") };
        let cmds = target_commands(&Truth::generate(&spec).owned_addrs());
        assert!(cmds.contains("addr add 198.18.1.1/15 dev t0"));
        assert!(!cmds.contains("198.18.1.2/"), "the dark host is not owned: {cmds}");
        assert!(cmds.contains("addr add 198.18.1.3/15 dev t0"), "the drop-all host answers ARP");
    }
}
