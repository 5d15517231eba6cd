//! TCP connect scan: a full handshake through the kernel, no privileges.
//!
//! A bounded window of probes is kept in flight and refilled from a lazy
//! iterator (no per-range buffering). The socket's answer decides the state:
//! a completed handshake is open, a RST is closed, silence or an ICMP
//! unreachable is filtered. Silent ports are tried again before they are
//! called filtered, so packet loss does not hide services. When the machine
//! runs out of descriptors or ephemeral ports the window shrinks and the
//! probe is requeued: running out of resources means slowing down, never a
//! wrong answer and never a panic.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vantage_shared::PortState;

use super::banner::read_banner;
use super::{EngineStats, ProbeResult};

/// Settings of one connect scan.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    pub timeout: Duration,
    /// Probes in flight at most (also capped by the descriptor budget).
    pub max_in_flight: usize,
    /// Extra attempts for a port that stayed silent.
    pub retries: u32,
    pub banner_timeout: Duration,
    pub banner_max_bytes: usize,
}

/// What one attempt saw.
enum Attempt {
    Done(ProbeResult),
    /// No answer within the timeout.
    Silent,
    /// A local resource ran out before a packet left.
    Exhausted(io::Error),
}

struct Probe {
    addr: IpAddr,
    port: u16,
    attempt: u32,
}

/// Runs every probe from `probes`, sending one result per probe to `out`.
///
/// `permits` is asked before each probe; an address it refuses is skipped
/// (counted by the caller), so scope is checked right before the packet.
/// Stops early, without error, when `cancel` fires or `out` is closed.
pub async fn scan(
    cfg: &ConnectConfig,
    probes: impl Iterator<Item = (IpAddr, u16)>,
    permits: impl Fn(IpAddr) -> bool,
    out: mpsc::Sender<ProbeResult>,
    progress: Arc<AtomicU64>,
    cancel: CancellationToken,
) -> EngineStats {
    let mut stats = EngineStats::default();
    let mut probes = probes.filter(|(addr, _)| permits(*addr));
    let mut retry: VecDeque<Probe> = VecDeque::new();
    let mut in_flight = FuturesUnordered::new();
    let max_window = cfg.max_in_flight.max(1);
    let mut window = max_window;
    let mut calm_since_shrink = 0usize;

    loop {
        while in_flight.len() < window {
            let next = retry.pop_front().or_else(|| probes.next().map(|(addr, port)| Probe { addr, port, attempt: 0 }));
            let Some(p) = next else { break };
            in_flight.push(attempt(cfg, p));
        }
        let (probe, outcome) = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            next = in_flight.next() => match next {
                Some(done) => done,
                None => break,
            },
        };
        let result = match outcome {
            Attempt::Done(r) => r,
            Attempt::Silent if probe.attempt < cfg.retries => {
                retry.push_back(Probe { attempt: probe.attempt + 1, ..probe });
                continue;
            }
            Attempt::Silent => ProbeResult {
                addr: probe.addr,
                port: probe.port,
                state: PortState::Filtered,
                rtt: cfg.timeout,
                banner: Vec::new(),
            },
            Attempt::Exhausted(err) => {
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
        progress.fetch_add(1, Ordering::Relaxed);
        if out.send(result).await.is_err() {
            break;
        }
    }
    stats
}

async fn attempt(cfg: &ConnectConfig, probe: Probe) -> (Probe, Attempt) {
    let target = SocketAddr::new(probe.addr, probe.port);
    let started = Instant::now();
    let outcome = match tokio::time::timeout(cfg.timeout, connect(target)).await {
        Err(_elapsed) => Attempt::Silent,
        // Connecting to a closed loopback port from the same port number "succeeds" by
        // TCP simultaneous open: the socket talks to itself. That is not a service.
        Ok(Ok(stream)) if stream.local_addr().ok() == Some(target) => {
            let rtt = started.elapsed();
            Attempt::Done(ProbeResult {
                addr: probe.addr,
                port: probe.port,
                state: PortState::Closed,
                rtt,
                banner: Vec::new(),
            })
        }
        Ok(Ok(mut stream)) => {
            let rtt = started.elapsed();
            let banner = read_banner(&mut stream, cfg.banner_timeout, cfg.banner_max_bytes).await;
            // Close with a RST: no TIME_WAIT left behind on either side.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            Attempt::Done(ProbeResult { addr: probe.addr, port: probe.port, state: PortState::Open, rtt, banner })
        }
        Ok(Err(err)) => match classify(&err) {
            Some(state) => Attempt::Done(ProbeResult {
                addr: probe.addr,
                port: probe.port,
                state,
                rtt: started.elapsed(),
                banner: Vec::new(),
            }),
            None => Attempt::Exhausted(err),
        },
    };
    (probe, outcome)
}

async fn connect(target: SocketAddr) -> io::Result<TcpStream> {
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_nodelay(true)?;
    socket.connect(target).await
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
mod tests {
    use std::collections::BTreeSet;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    fn cfg() -> ConnectConfig {
        ConnectConfig {
            timeout: Duration::from_millis(500),
            max_in_flight: 64,
            retries: 1,
            banner_timeout: Duration::from_millis(200),
            banner_max_bytes: 64,
        }
    }

    /// Binds `n` listeners on 127.0.0.1 and returns them with a closed port
    /// (bound, then released) next to them.
    async fn listeners(n: usize) -> (Vec<TcpListener>, u16) {
        let mut ls = Vec::new();
        for _ in 0..n {
            ls.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        (ls, closed)
    }

    async fn run(cfg: &ConnectConfig, probes: Vec<(IpAddr, u16)>) -> (Vec<ProbeResult>, EngineStats) {
        let (tx, mut rx) = mpsc::channel(16);
        let collector = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(r) = rx.recv().await {
                all.push(r);
            }
            all
        });
        let stats = scan(cfg, probes.into_iter(), |_| true, tx, Arc::default(), CancellationToken::new()).await;
        (collector.await.unwrap(), stats)
    }

    #[tokio::test]
    async fn open_and_closed_are_told_apart() {
        let (ls, closed) = listeners(3).await;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mut probes: Vec<_> = ls.iter().map(|l| (lo, l.local_addr().unwrap().port())).collect();
        probes.push((lo, closed));
        let (results, stats) = run(&cfg(), probes.clone()).await;
        assert_eq!(results.len(), 4);
        let open: BTreeSet<u16> = results.iter().filter(|r| r.state == PortState::Open).map(|r| r.port).collect();
        let want: BTreeSet<u16> = probes[..3].iter().map(|p| p.1).collect();
        assert_eq!(open, want);
        assert_eq!((stats.open, stats.closed, stats.filtered), (3, 1, 0));
    }

    #[tokio::test]
    async fn banner_is_captured() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"220 test ESMTP\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let (results, _) = run(&cfg(), vec![("127.0.0.1".parse().unwrap(), port)]).await;
        assert_eq!(results[0].banner, b"220 test ESMTP\r\n");
    }

    #[tokio::test]
    async fn refused_addresses_are_never_probed() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, mut rx) = mpsc::channel(4);
        let stats = scan(
            &cfg(),
            vec![("127.0.0.1".parse().unwrap(), port)].into_iter(),
            |_| false,
            tx,
            Arc::default(),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(stats.probes, 0);
        assert!(rx.recv().await.is_none());
    }

    #[test]
    fn resource_errors_are_not_port_states() {
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::EMFILE)), None);
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)), None);
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::ECONNREFUSED)), Some(PortState::Closed));
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)), Some(PortState::Filtered));
    }
}
