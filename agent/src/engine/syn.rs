//! SYN scan: half-open probes with raw packets (needs CAP_NET_RAW; IPv4).
//!
//! One thread sends, one receives; neither blocks the async runtime. The
//! scan keeps no per-probe connection state: each SYN's sequence number is a
//! keyed hash of (target, port, source port), so a reply is ours exactly
//! when its acknowledgement number is that hash plus one; anything else on
//! the wire is ignored. A bitmap over the shard's probe indices records which
//! probes were answered, so each later pass re-sends only the silent ones
//! (retransmission), and duplicates are dropped. The kernel, which never saw
//! our SYNs, answers each SYN-ACK with a RST; that only closes the half-open
//! connection on the target and does not touch the results. Open ports are
//! then visited with a full connect for their banner.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etherparse::{Ipv4Slice, TcpHeader, TcpOptionElement, TcpSlice};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::sync::mpsc;
use vantage_shared::PortState;

use super::banner::read_banner;
use super::order::{Permutation, ProbeSpace};
use super::{EngineStats, ProbeResult, RunHandles};

/// Settings of one SYN scan.
#[derive(Debug, Clone)]
pub struct SynConfig {
    /// How long to wait for late answers after each pass.
    pub timeout: Duration,
    /// Extra passes over the probes that stayed silent.
    pub retries: u32,
    pub banner_timeout: Duration,
    pub banner_max_bytes: usize,
}

/// Banner reads in flight at once after a SYN scan.
const BANNER_CONCURRENCY: usize = 256;
const RECV_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum SynError {
    #[error("raw sockets are not permitted (SYN mode needs CAP_NET_RAW): {0}")]
    NotPermitted(io::Error),
    #[error("cannot open a raw socket: {0}")]
    Socket(io::Error),
}

/// Whether this process may open raw sockets.
pub fn raw_sockets_allowed() -> bool {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).is_ok()
}

fn raw_socket() -> Result<Socket, SynError> {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => SynError::NotPermitted(e),
        _ => SynError::Socket(e),
    })
}

/// State shared by the sender and receiver threads of one scan.
struct Shared {
    space: Arc<ProbeSpace>,
    key: RandomState,
    sport: u16,
    /// One bit per probe index: answered (or skipped).
    answered: Vec<AtomicU64>,
    /// When each probe was last sent, in microseconds since `epoch`.
    sent_at: Vec<AtomicU32>,
    epoch: Instant,
    stop: AtomicBool,
    /// Probes answered (or skipped) so far.
    settled: AtomicU64,
    packets: AtomicU64,
    send_errors: AtomicU64,
    /// Probes whose target had no route.
    unroutable: AtomicU64,
}

impl Shared {
    fn cookie(&self, dst: Ipv4Addr, dport: u16) -> u32 {
        self.key.hash_one((u32::from(dst), dport, self.sport)) as u32
    }

    /// Marks a probe answered; false when it already was.
    fn mark(&self, idx: u64) -> bool {
        let bit = 1u64 << (idx % 64);
        let fresh = self.answered[(idx / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0;
        if fresh {
            self.settled.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    fn all_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed) >= self.space.len()
    }

    fn is_answered(&self, idx: u64) -> bool {
        self.answered[(idx / 64) as usize].load(Ordering::Relaxed) & (1u64 << (idx % 64)) != 0
    }
}

/// Scans `space` (IPv4 only), sending one result per probe to `out`.
pub async fn scan(
    cfg: &SynConfig,
    space: Arc<ProbeSpace>,
    permits: impl Fn(IpAddr) -> bool + Send + 'static,
    out: mpsc::Sender<ProbeResult>,
    run: &RunHandles,
) -> Result<EngineStats, SynError> {
    let send_sock = raw_socket()?;
    let recv_sock = raw_socket()?;
    recv_sock.set_read_timeout(Some(RECV_POLL)).map_err(SynError::Socket)?;
    grow_receive_buffer(&recv_sock);
    let n = space.len();
    let words = n.div_ceil(64) as usize;
    let shared = Arc::new(Shared {
        space,
        key: RandomState::new(),
        sport: rand::random_range(32_768..61_000),
        answered: (0..words).map(|_| AtomicU64::new(0)).collect(),
        sent_at: (0..n).map(|_| AtomicU32::new(0)).collect(),
        epoch: Instant::now(),
        stop: AtomicBool::new(false),
        settled: AtomicU64::new(0),
        packets: AtomicU64::new(0),
        send_errors: AtomicU64::new(0),
        unroutable: AtomicU64::new(0),
    });

    let (answers_tx, mut answers) = mpsc::channel::<ProbeResult>(1024);
    let receiver = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("syn-recv".into())
            .spawn(move || receive(&recv_sock, &shared, &answers_tx))
            .map_err(SynError::Socket)?
    };
    let sender = {
        let (shared, cfg, run) = (shared.clone(), cfg.clone(), run.clone());
        std::thread::Builder::new()
            .name("syn-send".into())
            .spawn(move || send_passes(&send_sock, &shared, &cfg, &run, permits))
            .map_err(SynError::Socket)?
    };

    let mut stats = EngineStats::default();
    let mut banners = tokio::task::JoinSet::new();
    let banner_wanted = cfg.banner_max_bytes > 0 && !cfg.banner_timeout.is_zero();
    let mut sender_done = false;
    loop {
        tokio::select! {
            answer = answers.recv() => match answer {
                Some(r) if r.state == PortState::Open && banner_wanted && !run.quiet.contains(r.addr) => {
                    while banners.len() >= BANNER_CONCURRENCY {
                        if let Some(Ok(r)) = banners.join_next().await {
                            forward(r, &mut stats, &out, run).await;
                        }
                    }
                    let cfg = cfg.clone();
                    banners.spawn(async move { with_banner(r, &cfg).await });
                }
                Some(r) => forward(r, &mut stats, &out, run).await,
                None => break,
            },
            Some(Ok(r)) = banners.join_next(), if !banners.is_empty() => forward(r, &mut stats, &out, run).await,
            _ = run.cancel.cancelled(), if !sender_done => {
                shared.stop.store(true, Ordering::Relaxed);
                sender_done = true;
            }
            _ = tokio::time::sleep(RECV_POLL), if !sender_done => {
                if sender.is_finished() {
                    // Every pass is sent and waited for: stop listening.
                    shared.stop.store(true, Ordering::Relaxed);
                    sender_done = true;
                }
            }
        }
    }
    while let Some(Ok(r)) = banners.join_next().await {
        forward(r, &mut stats, &out, run).await;
    }
    let _ = sender.join();
    let _ = receiver.join();
    if !run.cancel.is_cancelled() {
        // Whatever never answered, through every pass, is filtered.
        for idx in (0..n).filter(|&i| !shared.is_answered(i)) {
            let (addr, port) = shared.space.probe(idx).expect("index in range");
            forward(ProbeResult::new(addr, port, PortState::Filtered, cfg.timeout), &mut stats, &out, run).await;
        }
    }
    stats.packets = shared.packets.load(Ordering::Relaxed);
    stats.unreachable = shared.unroutable.load(Ordering::Relaxed);
    let errors = shared.send_errors.load(Ordering::Relaxed);
    if errors > 0 {
        tracing::warn!(errors, "some SYN probes could not be sent; those ports count as filtered");
    }
    Ok(stats)
}

async fn forward(r: ProbeResult, stats: &mut EngineStats, out: &mpsc::Sender<ProbeResult>, run: &RunHandles) {
    stats.count(r.state);
    run.progress.fetch_add(1, Ordering::Relaxed);
    let _ = out.send(r).await;
}

/// Completes a SYN-open port with a connect and a banner read. The port
/// stays open even when the second visit fails: the SYN-ACK proved it.
async fn with_banner(mut r: ProbeResult, cfg: &SynConfig) -> ProbeResult {
    let target = SocketAddr::new(r.addr, r.port);
    if let Ok(Ok(mut stream)) = tokio::time::timeout(cfg.timeout, tokio::net::TcpStream::connect(target)).await {
        r.banner = read_banner(&mut stream, cfg.banner_timeout, cfg.banner_max_bytes).await;
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    r
}

fn grow_receive_buffer(sock: &Socket) {
    let size: libc::c_int = 16 << 20;
    // SAFETY: setsockopt with a valid fd and an int option value of the right size.
    let forced = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        let _ = sock.set_recv_buffer_size(size as usize);
    }
}

/// The sender thread: pass after pass over the silent probes, in a fresh
/// random order each time, then a wait for late answers.
fn send_passes(sock: &Socket, shared: &Shared, cfg: &SynConfig, run: &RunHandles, permits: impl Fn(IpAddr) -> bool) {
    let mut sources: HashMap<Ipv4Addr, Option<Ipv4Addr>> = HashMap::new();
    let n = shared.space.len();
    for pass in 0..=cfg.retries {
        if shared.all_settled() {
            return;
        }
        let perm = Permutation::new(n);
        for i in 0..n {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let idx = perm.get(i);
            if shared.is_answered(idx) {
                continue;
            }
            let (addr, port) = shared.space.probe(idx).expect("index in range");
            let IpAddr::V4(dst) = addr else { continue };
            if !permits(addr) {
                // Never probed, never reported.
                shared.mark(idx);
                continue;
            }
            let Some(src) = *sources.entry(dst).or_insert_with(|| route_source(dst)) else {
                // No route: the probe ends filtered, counted once as unreachable.
                if pass == 0 {
                    shared.unroutable.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            run.limits.acquire_blocking(addr);
            let packet = syn_packet(src, dst, shared.sport, port, shared.cookie(dst, port));
            shared.sent_at[idx as usize].store(shared.epoch.elapsed().as_micros() as u32, Ordering::Relaxed);
            send(sock, &packet, dst, shared);
        }
        wait(cfg.timeout, shared);
        if run.limits.is_unlimited() {
            continue;
        }
        run.limits.shrink();
    }
}

fn send(sock: &Socket, packet: &[u8], dst: Ipv4Addr, shared: &Shared) {
    let to = SockAddr::from(SocketAddr::new(IpAddr::V4(dst), 0));
    for _ in 0..100 {
        match sock.send_to(packet, &to) {
            Ok(_) => {
                shared.packets.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // The interface queue is full: slow down, never drop the probe.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(_) => break,
        }
    }
    shared.send_errors.fetch_add(1, Ordering::Relaxed);
}

/// Waits for late answers, until every probe is settled or `d` has passed.
fn wait(d: Duration, shared: &Shared) {
    let until = Instant::now() + d;
    while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) && !shared.all_settled() {
        std::thread::sleep(Duration::from_millis(5).min(until.saturating_duration_since(Instant::now())));
    }
}

/// The local address the kernel would use to reach `dst`.
fn route_source(dst: Ipv4Addr) -> Option<Ipv4Addr> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.connect((dst, 9)).ok()?;
    match sock.local_addr().ok()?.ip() {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// A SYN with an MSS option (as real stacks send; some filters drop bare SYNs).
pub fn syn_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut tcp = TcpHeader::new(sport, dport, seq, 1024);
    tcp.syn = true;
    tcp.set_options(&[TcpOptionElement::MaximumSegmentSize(1460)]).expect("one option fits");
    tcp.checksum = tcp.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &[]).expect("no payload");
    tcp.to_bytes().to_vec()
}

/// The receiver thread: every TCP packet the host gets passes by; keep the
/// answers to our probes.
fn receive(sock: &Socket, shared: &Shared, out: &mpsc::Sender<ProbeResult>) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    let mut reader: &Socket = sock;
    while !shared.stop.load(Ordering::Relaxed) {
        // SAFETY: `read` only ever writes initialised bytes into the buffer.
        let bytes = unsafe { &mut *(&mut buf as *mut [MaybeUninit<u8>] as *mut [u8]) };
        let len = match reader.read(bytes) {
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "raw receive failed; stopping the receiver");
                return;
            }
        };
        if let Some(result) = parse_answer(&bytes[..len], shared)
            && out.blocking_send(result).is_err()
        {
            return;
        }
    }
}

fn parse_answer(packet: &[u8], shared: &Shared) -> Option<ProbeResult> {
    let ip = Ipv4Slice::from_slice(packet).ok()?;
    let tcp = TcpSlice::from_slice(ip.payload().payload).ok()?;
    if tcp.destination_port() != shared.sport {
        return None;
    }
    let src = ip.header().source_addr();
    let port = tcp.source_port();
    if tcp.acknowledgment_number() != shared.cookie(src, port).wrapping_add(1) || !tcp.ack() {
        return None;
    }
    let state = match (tcp.syn(), tcp.rst()) {
        (true, false) => PortState::Open,
        (false, true) => PortState::Closed,
        _ => return None,
    };
    let idx = shared.space.index_of(IpAddr::V4(src), port)?;
    if !shared.mark(idx) {
        return None;
    }
    let sent = shared.sent_at[idx as usize].load(Ordering::Relaxed);
    let now = shared.epoch.elapsed().as_micros() as u32;
    Some(ProbeResult::new(IpAddr::V4(src), port, state, Duration::from_micros(u64::from(now.saturating_sub(sent)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_packets_carry_the_cookie_and_a_valid_checksum() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 1, 7));
        let bytes = syn_packet(src, dst, 40_000, 443, 0xdead_beef);
        let tcp = TcpSlice::from_slice(&bytes).unwrap();
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!((tcp.source_port(), tcp.destination_port(), tcp.sequence_number()), (40_000, 443, 0xdead_beef));
        assert_eq!(tcp.calc_checksum_ipv4(src.octets(), dst.octets()).unwrap(), tcp.checksum());
    }
}
