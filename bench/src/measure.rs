//! Running one tool and measuring it: wall time, and the CPU time and peak
//! RSS the kernel accounted to that one child (`wait4`).
//!
//! `ip netns exec` execs the tool in place, so the child's PID is the tool's
//! and its rusage is the tool's own (the CPU the kernel spends answering in
//! the target namespace is not counted for anyone).
//!
//! The peak RSS has a floor: Linux keeps the high-water mark of the address
//! space a process leaves at `exec`, and the spawned child starts in ours.
//! So a child's `ru_maxrss` is at least this process's own peak RSS at the
//! spawn (`/bin/true` spawned from a 500 MiB process reports 514 MiB). The
//! benchmark keeps itself small (a few MiB) while it measures; work that
//! needs memory runs in a child of its own (`--checks diff` does so).

use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a running child is polled.
const POLL: Duration = Duration::from_millis(5);

/// One finished (or killed) tool run.
#[derive(Debug)]
pub struct Measured {
    pub wall: Duration,
    /// User plus system CPU time of the child.
    pub cpu: Duration,
    /// Peak resident set size, in KiB.
    pub max_rss_kib: u64,
    /// Exit code, or `None` if a signal ended it.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Measured {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` to its end, killing it (SIGKILL, by PID) after `limit`.
pub fn measure(cmd: Command, limit: Duration) -> io::Result<Measured> {
    Running::start(cmd)?.wait(limit)
}

/// A child started for measuring that runs until it ends or is stopped
/// (`vantage serve` for `--checks ingest`). Stopping and reaping happen
/// by its PID only; dropping it unreaped kills it.
pub struct Running {
    child: Option<Child>,
    pid: libc::pid_t,
    start: Instant,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn start(mut cmd: Command) -> io::Result<Running> {
        let start = Instant::now();
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let pid = child.id() as libc::pid_t;
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        Ok(Running { child: Some(child), pid, start, out, err })
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Has the child ended (without reaping it)?
    pub fn exited(&self) -> bool {
        // SAFETY: siginfo_t is plain old data; waitid with WNOWAIT only looks.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: waitid on our own, unreaped child, writing into a local.
        let r = unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) };
        // SAFETY: si_pid is valid to read after a successful waitid.
        r == 0 && unsafe { info.si_pid() } == self.pid
    }

    /// Sends SIGTERM, waits up to `grace` for the child to end (SIGKILL
    /// after that, reported as timed out), and reaps it.
    pub fn stop(self, grace: Duration) -> io::Result<Measured> {
        // SAFETY: kill(2) on our child, which has not been reaped yet.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let since = self.start.elapsed();
        self.wait(since + grace)
    }

    /// Waits for the child to end, killing it (SIGKILL) once `limit` has
    /// passed since it started.
    pub fn wait(mut self, limit: Duration) -> io::Result<Measured> {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; all zeroes is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut timed_out = false;
        loop {
            // SAFETY: wait4 on our own child, writing into locals we own.
            let r = unsafe { libc::wait4(self.pid, &mut status, libc::WNOHANG, &mut usage) };
            if r == self.pid {
                break;
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if !timed_out && self.start.elapsed() > limit {
                // SAFETY: kill(2) on our child, which has not been reaped yet.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                timed_out = true;
            }
            std::thread::sleep(POLL);
        }
        // Reaped above: dropping a std Child neither waits nor kills; Drop must not either.
        drop(self.child.take());
        let wall = self.start.elapsed();
        let joined = |h: Option<JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(Measured {
            wall,
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            timed_out,
            stdout: joined(self.out.take()),
            stderr: joined(self.err.take()),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `/proc/PID/status` says of a process's memory: (peak, current)
/// resident set in KiB. `VmHWM` is the peak of the process's own address
/// space since its `exec`, without the floor `ru_maxrss` inherits.
pub fn proc_rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name))?;
        line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// User plus system CPU time a live process has used so far (`/proc/PID/stat`).
pub fn proc_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// The 1-minute load average: the machine is shared, this says how much.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_string()
}

/// A check's closing figure: the load before its runs (`before`, from
/// [`load_average`]) and now, and the cores it shared.
pub fn load_figure(check: &str, before: &str) -> crate::checks::Figure {
    crate::checks::Figure {
        name: format!("{check}: load average (1 min)"),
        value: format!(
            "{before} before the runs, {} after, on {} cores",
            load_average(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        failed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hi; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3"]);
        let m = measure(cmd, Duration::from_secs(30)).unwrap();
        assert_eq!((m.code, m.timed_out, m.stdout.as_slice()), (Some(3), false, &b"hi\n"[..]));
        assert!(m.cpu > Duration::ZERO && m.max_rss_kib > 0, "{m:?}");
    }

    #[test]
    fn kills_after_the_limit() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let m = measure(cmd, Duration::from_millis(200)).unwrap();
        assert!(m.timed_out && m.code.is_none() && m.wall < Duration::from_secs(5), "{m:?}");
    }

    #[test]
    fn stops_a_running_child_and_reads_its_memory() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let running = Running::start(cmd).unwrap();
        let (peak, now) = proc_rss_kib(running.pid()).unwrap();
        assert!(peak >= now && now > 0);
        assert!(proc_cpu(running.pid()).is_some());
        assert!(!running.exited());
        let m = running.stop(Duration::from_secs(10)).unwrap();
        assert!(!m.timed_out && m.code.is_none(), "SIGTERM ends sleep: {m:?}");
    }
}
