//! SYN scan: half-open probes with raw packets (needs CAP_NET_RAW; IPv4).
//!
//! Packets leave from a sender thread per scan and arrive at one receiver
//! thread per process; neither blocks the async runtime. No per-probe
//! connection state is kept: each SYN's sequence number is a keyed hash of
//! (target, port, source port), so a reply is ours exactly when its
//! acknowledgement number is that hash plus one. One bit per probe records
//! which were answered: it drives retransmission of the silent ones and
//! drops duplicates. The kernel, which never saw our SYNs, answers each
//! SYN-ACK with a RST; that closes the half-open connection on the target
//! and touches no result. Open ports are then visited with a full connect
//! for their banner.
//!
//! * [`packet`]: building SYNs, reading answers.
//! * [`state`]: what one scan's threads share.
//! * [`sender`]: passes and retransmissions.
//! * [`receiver`]: the process-wide raw receive socket.

pub mod packet;
pub mod receiver;
pub mod sender;
pub mod state;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use vantage_shared::PortState;

use super::banner::{greeting_wait, read_banner_then_reset};
use super::order::ProbeSpace;
use super::{EngineStats, ProbeResult, RunHandles};
use state::ScanState;

/// Settings of one SYN scan.
#[derive(Debug, Clone)]
pub struct SynConfig {
    /// The longest wait for an answer (the adaptive timeout's ceiling).
    pub timeout: Duration,
    /// Extra SYNs for probes that stayed silent.
    pub retries: u32,
    pub banner_timeout: Duration,
    pub banner_max_bytes: usize,
    /// See [`super::connect::ConnectConfig::listen_by_port`].
    pub listen_by_port: bool,
}

/// How often answers are collected from the receiver.
const ANSWER_TICK: Duration = Duration::from_millis(5);

/// Banner reads in flight at once after SYN-open answers.
const BANNER_CONCURRENCY: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SynError {
    #[error("raw sockets are not permitted (SYN mode needs CAP_NET_RAW): {0}")]
    NotPermitted(io::Error),
    #[error("cannot open a raw socket: {0}")]
    Socket(io::Error),
}

/// Whether this process may open raw sockets.
pub fn raw_sockets_allowed() -> bool {
    raw_socket().is_ok()
}

fn raw_socket() -> Result<Socket, SynError> {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => SynError::NotPermitted(e),
        _ => SynError::Socket(e),
    })
}

/// Scans `space` (IPv4 only), sending one result per probe to `out`.
pub async fn scan(
    cfg: &SynConfig,
    space: Arc<ProbeSpace>,
    permits: impl Fn(IpAddr) -> bool + Send + 'static,
    out: mpsc::Sender<ProbeResult>,
    run: &RunHandles,
) -> Result<EngineStats, SynError> {
    let receiver = receiver::shared()?;
    // IPPROTO_RAW: send-only. A raw TCP socket would also be handed a copy of
    // every TCP packet the host receives, and never read.
    let send_sock =
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(libc::IPPROTO_RAW))).map_err(SynError::Socket)?;
    // SYNs to hosts that do not answer ARP wait in the neighbour queue,
    // charged to this socket's send buffer: a small buffer would block every
    // send for the seconds ARP takes to give up.
    receiver::force_buffer(&send_sock, libc::SO_SNDBUFFORCE, 64 << 20);
    let (answers_tx, mut answers) = mpsc::channel(space.len().max(1) as usize);
    let (state, registration) =
        receiver.register(|sport| ScanState::new(space.clone(), sport, cfg.timeout, answers_tx));
    let sender = {
        let (state, retries, limits) = (state.clone(), cfg.retries, run.limits.clone());
        std::thread::Builder::new()
            .name("syn-send".into())
            .spawn(move || sender::run(&send_sock, &state, retries, &limits, permits))
            .map_err(SynError::Socket)?
    };

    let mut results = Results { stats: EngineStats::default(), banners: JoinSet::new(), cfg, out: &out, run };
    // Answers are collected on a short tick rather than awaited one by one:
    // at tens of thousands a second, a wake-up per answer costs more than
    // the answer itself.
    let mut tick = tokio::time::interval(ANSWER_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                while let Ok(answer) = answers.try_recv() {
                    results.take(answer).await;
                }
            }
            Some(Ok(r)) = results.banners.join_next(), if !results.banners.is_empty() => results.forward(r).await,
            _ = run.cancel.cancelled() => state.stop.store(true, Ordering::Relaxed),
        }
        if sender.is_finished() {
            break;
        }
    }
    // No answer reaches the scan after this; take what already arrived.
    drop(registration);
    while let Ok(answer) = answers.try_recv() {
        results.take(answer).await;
    }
    while let Some(joined) = results.banners.join_next().await {
        if let Ok(r) = joined {
            results.forward(r).await;
        }
    }
    let _ = sender.join();
    if !run.cancel.is_cancelled() {
        // Whatever stayed silent through every retransmission is filtered.
        for idx in (0..space.len()).filter(|&i| !state.is_settled(i)) {
            let (addr, port) = space.probe(idx).expect("index in range");
            results.forward(ProbeResult::new(addr, port, PortState::Filtered, state.timeout(cfg.retries))).await;
        }
    }
    let mut stats = results.stats;
    stats.packets = state.packets.load(Ordering::Relaxed);
    stats.unreachable = state.unroutable.load(Ordering::Relaxed);
    let errors = state.send_errors.load(Ordering::Relaxed);
    if errors > 0 {
        tracing::warn!(errors, "some SYN probes could not be sent; those ports count as filtered");
    }
    Ok(stats)
}

/// The async side's bookkeeping: banner follow-ups, counters, forwarding.
struct Results<'a> {
    stats: EngineStats,
    banners: JoinSet<ProbeResult>,
    cfg: &'a SynConfig,
    out: &'a mpsc::Sender<ProbeResult>,
    run: &'a RunHandles,
}

impl Results<'_> {
    async fn take(&mut self, r: ProbeResult) {
        let banner_wanted = self.cfg.banner_max_bytes > 0 && !self.cfg.banner_timeout.is_zero();
        if r.state != PortState::Open || !banner_wanted || self.run.quiet.contains(r.addr) {
            return self.forward(r).await;
        }
        while self.banners.len() >= BANNER_CONCURRENCY {
            if let Some(Ok(done)) = self.banners.join_next().await {
                self.forward(done).await;
            }
        }
        let cfg = self.cfg.clone();
        self.banners.spawn(async move { with_banner(r, &cfg).await });
    }

    async fn forward(&mut self, r: ProbeResult) {
        self.stats.count(r.state);
        self.run.progress.fetch_add(1, Ordering::Relaxed);
        let _ = self.out.send(r).await;
    }
}

/// Completes a SYN-open port with a connect and a banner read. The port
/// stays open even when the second visit fails: the SYN-ACK proved it.
async fn with_banner(mut r: ProbeResult, cfg: &SynConfig) -> ProbeResult {
    let target = SocketAddr::new(r.addr, r.port);
    if let Ok(Ok(mut stream)) = tokio::time::timeout(cfg.timeout, tokio::net::TcpStream::connect(target)).await {
        let wait = greeting_wait(r.port, cfg.banner_timeout, cfg.listen_by_port);
        r.banner = read_banner_then_reset(&mut stream, wait, cfg.banner_max_bytes).await;
    }
    r
}
