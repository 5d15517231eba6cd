//! TCP connect scan: a full handshake through the kernel, no privileges.
//!
//! A bounded window of probes is kept in flight and refilled from a lazy
//! iterator (no per-range buffering), as fast as the rate limits allow. The
//! socket's answer decides the state: a completed handshake is open, a RST is
//! closed, silence or an ICMP unreachable is filtered. Silent ports are tried
//! again, with a doubled timeout, before they are called filtered, so packet
//! loss does not hide services. Timeouts follow measured round-trip times.
//! When the machine runs out of descriptors or ephemeral ports the window
//! shrinks and the probe is requeued: running out of resources means slowing
//! down, never a wrong answer and never a panic.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use vantage_shared::PortState;

use super::banner::{greeting_wait, read_banner_then_reset};
use super::rate::{Deferred, Denied};
use super::rtt::RttEstimator;
use super::{EngineStats, ProbeResult, RunHandles};

/// Settings of one connect scan.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// The longest a probe waits for an answer (the adaptive timeout's ceiling).
    pub timeout: Duration,
    /// Probes in flight at most (also capped by the descriptor budget).
    pub max_in_flight: usize,
    /// Extra attempts for a port that stayed silent.
    pub retries: u32,
    pub banner_timeout: Duration,
    pub banner_max_bytes: usize,
    /// Shorten the banner wait on ports whose usual service speaks only when
    /// spoken to (detection asks them right after).
    pub listen_by_port: bool,
}

impl ConnectConfig {
    /// How long to wait for a greeting on `port`.
    pub fn listen(&self, port: u16) -> Duration {
        greeting_wait(port, self.banner_timeout, self.listen_by_port)
    }
}

/// What one attempt saw.
enum Attempt {
    Done(ProbeResult),
    /// The scanner has no route to the target: filtered, and counted.
    NoRoute(ProbeResult),
    /// No answer within the timeout.
    Silent,
    /// A local resource ran out before a packet left.
    Exhausted(io::Error),
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    addr: IpAddr,
    port: u16,
    attempt: u32,
}

/// Runs every probe from `probes`, sending one result per probe to `out`.
///
/// `permits` is asked right before each probe leaves; an address it refuses
/// is skipped (counted by the caller), so scope is checked at the last
/// moment. Stops early, without error, when the run is cancelled or `out`
/// is closed.
pub async fn scan(
    cfg: &ConnectConfig,
    probes: impl Iterator<Item = (IpAddr, u16)>,
    permits: impl Fn(IpAddr) -> bool,
    out: mpsc::Sender<ProbeResult>,
    run: &RunHandles,
) -> EngineStats {
    let mut stats = EngineStats::default();
    let mut probes = probes.filter(|(addr, _)| permits(*addr)).map(|(addr, port)| Probe { addr, port, attempt: 0 });
    let mut retry: VecDeque<Probe> = VecDeque::new();
    // A probe the global cap holds back, and when it may go.
    let mut held: Option<Probe> = None;
    let mut resume_at: Option<tokio::time::Instant> = None;
    // Probes whose host is at its cap; others go meanwhile.
    let mut deferred: Deferred<Probe> = Deferred::new(cfg.max_in_flight.max(1));
    let mut in_flight = FuturesUnordered::new();
    let mut rtt = RttEstimator::new(cfg.timeout);
    let max_window = cfg.max_in_flight.max(1);
    let mut window = max_window;
    let mut calm_since_shrink = 0usize;

    loop {
        while in_flight.len() < window && resume_at.is_none() {
            let next = held
                .take()
                .or_else(|| deferred.pop_ready(Instant::now()))
                .or_else(|| retry.pop_front())
                .or_else(|| if deferred.is_full() { None } else { probes.next() });
            let Some(p) = next else { break };
            match run.limits.try_acquire(p.addr) {
                Ok(()) => {}
                Err(Denied::Host(wait)) if !deferred.is_full() => {
                    deferred.push(Instant::now() + wait, p);
                    continue;
                }
                Err(denied) => {
                    held = Some(p);
                    resume_at = Some(tokio::time::Instant::now() + denied.wait());
                    break;
                }
            }
            let banner_bytes = if run.quiet.contains(p.addr) { 0 } else { cfg.banner_max_bytes };
            in_flight.push(attempt(p, rtt.timeout(p.attempt), cfg.listen(p.port), banner_bytes));
        }
        if in_flight.is_empty() && held.is_none() && deferred.is_empty() {
            break;
        }
        let wake = resume_at.or(deferred.next_ready().map(tokio::time::Instant::from_std));
        let (probe, outcome) = tokio::select! {
            biased;
            _ = run.cancel.cancelled() => break,
            next = in_flight.next(), if !in_flight.is_empty() => next.expect("not empty"),
            _ = sleep_until(wake), if wake.is_some() => {
                resume_at = None;
                continue;
            }
        };
        stats.packets += 1;
        let result = match outcome {
            Attempt::NoRoute(r) => {
                stats.unreachable += 1;
                r
            }
            Attempt::Done(r) => {
                if r.state != PortState::Filtered {
                    rtt.sample(r.rtt);
                }
                r
            }
            Attempt::Silent if probe.attempt < cfg.retries => {
                retry.push_back(Probe { attempt: probe.attempt + 1, ..probe });
                continue;
            }
            Attempt::Silent => {
                ProbeResult::new(probe.addr, probe.port, PortState::Filtered, rtt.timeout(probe.attempt))
            }
            Attempt::Exhausted(err) => {
                stats.packets -= 1;
                stats.resource_waits += 1;
                if stats.resource_waits == 1 {
                    tracing::warn!(error = %err, window = in_flight.len(), "local resources exhausted; slowing down");
                }
                window = (in_flight.len() * 3 / 4).max(1);
                calm_since_shrink = 0;
                retry.push_front(probe);
                if in_flight.is_empty() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
        };
        // Grow back slowly after a shrink.
        calm_since_shrink += 1;
        if window < max_window && calm_since_shrink >= window {
            window = (window + window / 8 + 1).min(max_window);
            calm_since_shrink = 0;
        }
        stats.count(result.state);
        run.progress.fetch_add(1, Ordering::Relaxed);
        if out.send(result).await.is_err() {
            break;
        }
    }
    stats
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

async fn attempt(probe: Probe, timeout: Duration, banner_timeout: Duration, banner_bytes: usize) -> (Probe, Attempt) {
    let target = SocketAddr::new(probe.addr, probe.port);
    let started = Instant::now();
    let outcome = match tokio::time::timeout(timeout, connect(target)).await {
        Err(_elapsed) => Attempt::Silent,
        // Connecting to a closed loopback port from the same port number "succeeds" by
        // TCP simultaneous open: the socket talks to itself. That is not a service.
        Ok(Ok(stream)) if stream.local_addr().ok() == Some(target) => {
            Attempt::Done(ProbeResult::new(probe.addr, probe.port, PortState::Closed, started.elapsed()))
        }
        Ok(Ok(mut stream)) => {
            let mut result = ProbeResult::new(probe.addr, probe.port, PortState::Open, started.elapsed());
            result.banner = read_banner_then_reset(&mut stream, banner_timeout, banner_bytes).await;
            Attempt::Done(result)
        }
        Ok(Err(err)) => match classify(&err) {
            Some(state) => {
                let r = ProbeResult::new(probe.addr, probe.port, state, started.elapsed());
                if err.raw_os_error() == Some(libc::ENETUNREACH) { Attempt::NoRoute(r) } else { Attempt::Done(r) }
            }
            None => Attempt::Exhausted(err),
        },
    };
    (probe, outcome)
}

/// Connects without the reactor when it can: on a fast path (loopback, a
/// local segment) the answer is often in before `connect(2)` returns, and a
/// refused port then costs three system calls instead of an epoll round
/// trip. Only connections still in progress are handed to tokio to wait on.
async fn connect(target: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(target), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    match socket.connect(&target.into()) {
        Ok(()) => return TcpStream::from_std(socket.into()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    if let Some(err) = socket.take_error()? {
        return Err(err);
    }
    let in_progress = matches!(socket.peer_addr(), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
    let stream = TcpStream::from_std(socket.into())?;
    if in_progress {
        stream.writable().await?;
        if let Some(err) = stream.take_error()? {
            return Err(err);
        }
    }
    Ok(stream)
}

/// Maps a connect error to a port state; `None` means the failure was ours
/// (a local resource ran out) and says nothing about the port.
fn classify(err: &io::Error) -> Option<PortState> {
    match err.raw_os_error() {
        Some(libc::ECONNREFUSED) => Some(PortState::Closed),
        // ICMP unreachable, administratively prohibited, or no route: something is in the way.
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES | libc::EPERM | libc::ETIMEDOUT) => {
            Some(PortState::Filtered)
        }
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL | libc::EAGAIN) => None,
        // A reset in the middle of the handshake still proves a live stack that refused us.
        Some(libc::ECONNRESET) => Some(PortState::Closed),
        _ => match err.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Some(PortState::Closed),
            _ => Some(PortState::Filtered),
        },
    }
}

#[cfg(test)]
mod tests;
