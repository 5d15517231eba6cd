//! The sender thread of one SYN scan: a pass over every probe in random
//! order, then passes over the silent ones in the same order, each probe
//! re-sent only once its previous SYN has had its timeout to be answered.
//! Retransmissions thus overlap with the first sends instead of waiting for
//! a whole pass to drain, and a scan ends one timeout after its last SYN.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};

use super::packet;
use super::state::ScanState;
use crate::engine::order::Permutation;
use crate::engine::rate::{Deferred, Denied, RateLimits};

/// Probes held back by their host's cap, at most.
const DEFERRED: usize = 4096;

pub fn run(sock: &Socket, state: &ScanState, retries: u32, limits: &RateLimits, permits: impl Fn(IpAddr) -> bool) {
    let n = state.space.len();
    let perm = Permutation::new(n);
    let mut sources: HashMap<Ipv4Addr, Option<Ipv4Addr>> = HashMap::new();
    let mut pacer = Pacer { sock, state, limits, deferred: Deferred::new(DEFERRED) };
    for attempt in 0..=retries {
        if state.all_settled() {
            return;
        }
        let wait = state.timeout(attempt.saturating_sub(1));
        let pass_started = Instant::now();
        let sent_before = state.packets.load(Ordering::Relaxed);
        for i in 0..n {
            if state.stop.load(Ordering::Relaxed) {
                return;
            }
            let idx = perm.get(i);
            if state.is_settled(idx) {
                continue;
            }
            let (addr, port) = state.space.probe(idx).expect("index in range");
            let IpAddr::V4(dst) = addr else { continue };
            if attempt == 0 && !permits(addr) {
                // Never probed, never reported.
                state.mark(idx);
                continue;
            }
            let Some(src) = *sources.entry(dst).or_insert_with(|| route_source(dst)) else {
                if attempt == 0 {
                    state.unroutable.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            };
            if attempt > 0 && !sleep_until_due(state, idx, wait) {
                continue;
            }
            pacer.offer(Syn { idx, src, dst, port });
        }
        pacer.drain();
        if !limits.is_unlimited() {
            limits.shrink();
        }
        tracing::debug!(
            attempt,
            sent = state.packets.load(Ordering::Relaxed) - sent_before,
            took = ?pass_started.elapsed(),
            wait = ?wait,
            "SYN pass done"
        );
    }
    // Late answers to the last SYNs.
    let deadline = Instant::now() + state.timeout(retries);
    while Instant::now() < deadline && !state.all_settled() && !state.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One SYN ready to go.
struct Syn {
    idx: u64,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    port: u16,
}

/// Sends SYNs as the caps allow: a probe whose host is at its cap waits in
/// `deferred` while probes to other hosts go on.
struct Pacer<'a> {
    sock: &'a Socket,
    state: &'a ScanState,
    limits: &'a RateLimits,
    deferred: Deferred<Syn>,
}

impl Pacer<'_> {
    fn offer(&mut self, syn: Syn) {
        self.release_ready();
        self.try_send(syn);
    }

    fn try_send(&mut self, syn: Syn) {
        loop {
            match self.limits.try_acquire(IpAddr::V4(syn.dst)) {
                Ok(()) => return self.transmit(&syn),
                Err(Denied::Host(wait)) if !self.deferred.is_full() => {
                    return self.deferred.push(Instant::now() + wait, syn);
                }
                Err(denied) => {
                    if self.state.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(denied.wait().max(Duration::from_micros(50)));
                }
            }
        }
    }

    fn release_ready(&mut self) {
        while let Some(syn) = self.deferred.pop_ready(Instant::now()) {
            self.try_send(syn);
        }
    }

    /// Sends everything still held back, waiting for each one's cap.
    fn drain(&mut self) {
        while let Some(at) = self.deferred.next_ready() {
            if self.state.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            self.release_ready();
        }
    }

    fn transmit(&self, syn: &Syn) {
        let state = self.state;
        state.record_send(syn.idx);
        let packet = packet::ipv4_syn(syn.src, syn.dst, state.sport, syn.port, state.cookie(syn.dst, syn.port));
        send(self.sock, &packet, syn.dst, state);
    }
}

/// Waits until the probe's last SYN is `wait` old; false when it got its
/// answer (or the scan stopped) meanwhile.
fn sleep_until_due(state: &ScanState, idx: u64, wait: Duration) -> bool {
    let due = u64::from(state.sent_at(idx)) + wait.as_micros() as u64;
    loop {
        let now = u64::from(state.now_micros());
        if now >= due {
            return !state.is_settled(idx);
        }
        if state.is_settled(idx) || state.stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_micros((due - now).min(2_000)));
    }
}

fn send(sock: &Socket, packet: &[u8], dst: Ipv4Addr, state: &ScanState) {
    let to = SockAddr::from(SocketAddr::new(IpAddr::V4(dst), 0));
    for _ in 0..1_000 {
        match sock.send_to(packet, &to) {
            Ok(_) => {
                state.packets.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // The interface queue is full: slow down, never drop the probe.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) => {
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(_) => break,
        }
    }
    state.send_errors.fetch_add(1, Ordering::Relaxed);
}

/// The local address the kernel would use to reach `dst`, if it has a route.
fn route_source(dst: Ipv4Addr) -> Option<Ipv4Addr> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.connect((dst, 9)).ok()?;
    match sock.local_addr().ok()?.ip() {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}
